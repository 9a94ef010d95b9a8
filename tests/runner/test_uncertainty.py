"""train.calibrators with conformal_intervals / temperature_sets: fitted on valid, saved with the
run, scored by the evaluator on every condition, with VRR under subsets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustfusion.calibration import CalibratedModel
from robustfusion.runner.api import evaluate_run, load_run, train_run
from robustfusion.runner.config import load_config
from tests.test_cli import FAST_EVAL
from tests.test_cli import TINY as CLI_TINY

ROOT = Path(__file__).resolve().parents[2]
TINY = [*CLI_TINY, "train.device=cpu", *FAST_EVAL]
SUBSETS = {"text", "audio", "vision", "text+audio", "text+vision", "audio+vision", "text+audio+vision"}
EMOTION = ["data.options.target=emotion", "train.calibrate_subsets=false", "train.calibrate_fusion=false"]


def _run(tmp_path, extra):
    cfg = load_config(ROOT / "configs" / "synthetic" / "gmc_pf.yaml", [*TINY, *extra])
    run = train_run(cfg, run_dir=tmp_path / "run")
    _, rows = evaluate_run(run.dir)
    return run, rows


def test_regression_intervals_on_every_condition_never_narrow_when_a_modality_goes(tmp_path):
    run, rows = _run(tmp_path, ["train.calibrators=[{name: conformal_intervals, level: 0.8}]"])
    assert set(run.final["calibrators"][-1]) == SUBSETS  # after the read-out, one fit per subset
    cover = {r["subset"]: r["value"] for r in rows if r["protocol"] == "subsets" and r["metric"] == "PI_coverage"}
    assert set(cover) == SUBSETS and all(0.0 <= v <= 1.0 for v in cover.values())
    sweep = [r["level"] for r in rows if r["protocol"] == "sample_rate" and r["metric"] == "PI_width"]
    assert [lv for lv in sweep if isinstance(lv, float)] == [0.0, 0.5, 1.0]
    vrr = [r for r in rows if r["metric"] == "VRR"]
    assert len(vrr) == 1 and vrr[0]["value"] == 0.0 and vrr[0]["protocol"] == "subsets"
    model = load_run(run.dir).model  # saved with the run and loaded back
    assert isinstance(model, CalibratedModel) and model.calibrators[-1].level == 0.8
    out = model.calibrated(next(iter(load_run(run.dir).data.splits["test"].batches(8))))
    assert out.lower.shape == out.prediction.shape and bool((out.upper > out.lower).all())


def test_classification_probabilities_and_sets_with_monotone_confidence(tmp_path):
    run, rows = _run(tmp_path, [*EMOTION, "train.calibrators=[{name: temperature_sets}]"])
    full = {r["metric"]: r["value"] for r in rows if r["protocol"] == "subsets" and r["subset"] == "text+audio+vision"}
    assert {"ECE", "NLL", "Brier", "Set_coverage", "Set_size"} <= set(full)
    assert 1.0 <= full["Set_size"] <= 6.0 and 0.0 <= full["ECE"] <= 1.0
    assert [r["value"] for r in rows if r["metric"] == "VRR"] == [0.0]
    model = load_run(run.dir).model
    batch = next(iter(load_run(run.dir).data.splits["test"].batches(16)))
    plain, mono = model.calibrated(batch), model.calibrated(batch, monotone=True)
    assert torch.equal(plain.probabilities.argmax(1), mono.probabilities.argmax(1))
    assert bool((mono.probabilities.max(1).values >= plain.probabilities.max(1).values - 1e-9).all())
    assert bool(mono.sets.gather(1, mono.probabilities.argmax(1, keepdim=True)).all())


def test_an_interval_calibrator_on_a_classification_task_is_refused_before_training(tmp_path):
    cfg = load_config(ROOT / "configs" / "synthetic" / "gmc_pf.yaml",
                      [*TINY, *EMOTION, "train.calibrators=[{name: conformal_intervals}]"])
    with pytest.raises(ValueError, match="train.calibrators"):
        train_run(cfg, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
