"""train.calibrate_uncertainty: a per-pattern calibrator fitted on valid, stored in final.json,
scored by the evaluator on every condition, with VRR under subsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustfusion.runner.api import evaluate_run, train_run
from robustfusion.runner.config import ConfigError, load_config
from tests.test_cli import FAST_EVAL
from tests.test_cli import TINY as CLI_TINY

ROOT = Path(__file__).resolve().parents[2]
TINY = [*CLI_TINY, "train.device=cpu", *FAST_EVAL, "train.calibrate_uncertainty=true"]
SUBSETS = {"text", "audio", "vision", "text+audio", "text+vision", "audio+vision", "text+audio+vision"}


def _rows(tmp_path, preset, extra=()):
    cfg = load_config(ROOT / "configs" / "synthetic" / f"{preset}.yaml", [*TINY, *extra])
    run = train_run(cfg, run_dir=tmp_path / "run")
    _, rows = evaluate_run(run.dir)
    return run, rows


def test_regression_runs_report_intervals_on_every_condition_and_never_narrow_them(tmp_path):
    run, rows = _rows(tmp_path, "gmc_pf")
    state = run.final["uncertainty"]
    assert state["kind"] == "conformal_intervals" and state["level"] == 0.9
    assert set(state["half_width"]) == SUBSETS | {""}  # every subset, and nothing present
    cover = {r["subset"]: r["value"] for r in rows if r["protocol"] == "subsets" and r["metric"] == "PI_coverage"}
    assert set(cover) == SUBSETS and all(0.0 <= v <= 1.0 for v in cover.values())
    sweep = [r for r in rows if r["protocol"] == "sample_rate" and r["metric"] == "PI_width"]
    assert [r["level"] for r in sweep if isinstance(r["level"], float)] == [0.0, 0.5, 1.0]
    vrr = [r for r in rows if r["metric"] == "VRR"]
    assert len(vrr) == 1 and vrr[0]["value"] == 0.0 and vrr[0]["protocol"] == "subsets"


def test_classification_runs_report_calibration_and_sets(tmp_path):
    run, rows = _rows(tmp_path, "gmc_pf", ["data.options.target=emotion", "train.calibrate_subsets=false",
                                           "train.calibrate_fusion=false"])
    assert run.final["uncertainty"]["kind"] == "temperature_sets"
    full = {r["metric"]: r["value"] for r in rows
            if r["protocol"] == "subsets" and r["subset"] == "text+audio+vision"}
    assert {"ECE", "NLL", "Brier", "Set_coverage", "Set_size"} <= set(full)
    assert 1.0 <= full["Set_size"] <= 6.0 and 0.0 <= full["ECE"] <= 1.0
    assert [r["value"] for r in rows if r["metric"] == "VRR"] == [0.0]


def test_a_bad_level_is_a_config_error():
    with pytest.raises(ConfigError, match="uncertainty_level"):
        load_config(ROOT / "configs" / "synthetic" / "gmc.yaml", ["train.uncertainty_level=1.5"])
