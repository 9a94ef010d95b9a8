"""IEMOCAP (MulT's ``iemocap_data.pkl``, 4 emotions, multilabel) end to end through the command:
``robustfusion train configs/iemocap_mult/<method>.yaml data.path=FILE`` then ``robustfusion evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustfusion.cli import main
from robustfusion.data.mult import write_example_mult_pickle
from robustfusion.metrics import IEMOCAP_EMOTIONS
from robustfusion.results import read_rows_csv

ROOT = Path(__file__).resolve().parents[2]
PER_EMOTION = {f"{e}_{m}" for e in IEMOCAP_EMOTIONS for m in ("acc", "F1")}
SUBSETS = {"text", "audio", "vision", "text+audio", "text+vision", "audio+vision", "text+audio+vision"}


@pytest.fixture(scope="module")
def iemocap_file(tmp_path_factory):
    return write_example_mult_pickle(tmp_path_factory.mktemp("iemocap") / "iemocap_data.pkl", sizes=(24, 12, 12))


@pytest.mark.parametrize("method", ["gmc_pf", "late_fusion"])
def test_iemocap_preset_trains_and_evaluates_through_the_cli(method, iemocap_file, tmp_path, capsys):
    config = ROOT / "configs" / "iemocap_mult" / f"{method}.yaml"
    assert main(["train", str(config), f"data.path={iemocap_file}", "train.epochs=1", "train.batch_size=12",
                 "model.params.hidden_dim=8", "train.progress=false", "train.num_threads=1",
                 "--out", str(tmp_path / "runs")]) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert run_dir.name == f"iemocap_mult-{method}-seed0"
    final = json.loads((run_dir / "final.json").read_text())
    assert PER_EMOTION | {"Avg_acc", "Avg_F1"} <= set(final["test"])

    assert main(["evaluate", str(run_dir), "eval.levels=[0.0,0.5,1.0]"]) == 0
    csv = Path(capsys.readouterr().out.strip().splitlines()[-1])
    rows = read_rows_csv(csv)
    assert {r["dataset"] for r in rows} == {"iemocap_mult"} and {r["model"] for r in rows} == {method}
    assert {r["protocol"] for r in rows} >= {"subsets", "sample_rate", "frame_rate"}
    subset_rows = [r for r in rows if r["protocol"] == "subsets"]
    assert {r["subset"] for r in subset_rows} == SUBSETS
    for subset in SUBSETS:  # MulT's per-emotion binary accuracy / weighted F1 on every subset
        metrics = {r["metric"]: r["value"] for r in subset_rows if r["subset"] == subset}
        assert PER_EMOTION | {"Avg_acc", "Avg_F1"} <= set(metrics), subset
        assert all(0.0 <= metrics[m] <= 1.0 for m in PER_EMOTION)
    # the evaluator scores the model that training scored: same numbers with all three modalities
    full = {r["metric"]: r["value"] for r in subset_rows if r["subset"] == "text+audio+vision"}
    for m in PER_EMOTION:
        assert full[m] == pytest.approx(final["test"][m], abs=1e-6), m
