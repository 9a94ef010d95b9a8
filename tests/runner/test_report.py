"""``evaluate`` keeps its predictions and ``report`` turns them into ``comparisons.csv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustfusion.cli import main
from robustfusion.comparisons import COMPARISON_FIELDS, read_comparisons_csv
from robustfusion.results import read_rows_csv
from robustfusion.runner import load_config, train_run
from robustfusion.runner.predictions_file import (
    PREDICTIONS_FILE,
    read_predictions,
    write_predictions,
)
from robustfusion.runner.report import report_comparisons

ROOT = Path(__file__).resolve().parents[2]
TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=64", "train.epochs=2",
        "train.batch_size=32", "model.params.hidden_dim=8", "train.progress=false",
        "eval.protocols=[subsets,missing_rate]", "eval.levels.missing_rate=[0.0,0.5]"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """Two methods x two seeds, trained and evaluated on the test split: the eval folders."""
    root = tmp_path_factory.mktemp("runs")
    folders = []
    for method in ("gmc", "late_fusion"):
        for seed in (0, 1):
            cfg = load_config(str(ROOT / "configs" / "synthetic" / f"{method}.yaml"), [*TINY, f"seed={seed}"])
            run = train_run(cfg, out=root / f"{method}-{seed}").dir
            assert main(["evaluate", str(run)]) == 0
            folders.append(run / "eval" / "test")
    return folders


def test_evaluate_keeps_the_predictions_its_table_was_computed_from(evaluated):
    folder = evaluated[0]
    kept = read_predictions(folder / PREDICTIONS_FILE)
    assert (kept.model, kept.seed, kept.split, kept.task) == ("gmc", 0, "test", "regression")
    assert len(kept.groups) == kept.targets.shape[0] == 64
    rows = read_rows_csv(folder / "robustness.csv")
    mae = {(r["protocol"], r["subset"]): r["value"] for r in rows
           if r["metric"] == "MAE" and r["protocol"] == "subsets"}
    assert {("subsets", c[2]) for c in kept.predictions if c[0] == "subsets"} == set(mae)
    for (protocol, level, subset), pred in kept.predictions.items():
        if protocol == "subsets":
            recomputed = np.abs(pred[:, 0] - kept.targets.reshape(-1)).mean()
            assert recomputed == pytest.approx(mae[(protocol, subset)], abs=1e-5)


def test_report_writes_comparisons_with_intervals(evaluated, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", *map(str, evaluated), "--out", str(out)]) == 0
    rows = read_comparisons_csv(out / "comparisons.csv")
    assert (out / "comparisons.csv").read_text().splitlines()[0] == ",".join(COMPARISON_FIELDS)
    subsets = [r for r in rows if r["protocol"] == "subsets" and r["metric"] == "MAE"]
    assert {r["subset"] for r in subsets} >= {"text", "text+audio+vision"}
    # late fusion is the reference where no specialists were evaluated (COMPARISON_REFERENCES)
    assert {r["model"] for r in subsets} == {"gmc"} and {r["reference"] for r in subsets} == {"late_fusion"}
    assert all(r["ci_low"] <= r["delta"] <= r["ci_high"] and r["ci_high"] > r["ci_low"] for r in subsets)
    assert any(r["level"] == "auilc" for r in rows)
    assert "Differences with 95% intervals" in (out / "table.md").read_text()


def test_report_says_why_it_has_no_comparisons(evaluated, tmp_path, capsys):
    one_model = [f for f in evaluated if "gmc-" in str(f)]
    assert main(["report", *map(str, one_model), "--out", str(tmp_path / "r1")]) == 0
    assert "only one model" in capsys.readouterr().err
    assert not (tmp_path / "r1" / "comparisons.csv").exists()
    assert (tmp_path / "r1" / "table.md").is_file()


def test_comparisons_refuse_mixed_test_sets_and_repeated_seeds(evaluated, tmp_path):
    a, b = (read_predictions(evaluated[i] / PREDICTIONS_FILE) for i in (0, 2))
    shorter = tmp_path / PREDICTIONS_FILE
    write_predictions(shorter, {c: p[:10] for c, p in b.predictions.items()}, b.targets[:10], b.groups[:10],
                      dataset=b.dataset, task=b.task, model=b.model, seed=b.seed, split=b.split)
    rows, why = report_comparisons([a, read_predictions(shorter)])
    assert rows == [] and "different test sets" in why
    rows, why = report_comparisons([a, a, b])
    assert rows == [] and "two evaluations with seed 0" in why


def test_a_foreign_npz_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="expected a robustfusion predictions file"):
        read_predictions(tmp_path / "x.npz")
