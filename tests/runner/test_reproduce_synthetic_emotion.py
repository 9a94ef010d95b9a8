"""`reproduce("synthetic_emotion")`: the synthetic benchmark's 6-class emotion target end to end."""

from __future__ import annotations

import torch

from robustfusion.comparisons import read_comparisons_csv
from robustfusion.data.synthetic import EMOTION_NAMES, load_synthetic
from robustfusion.runner.presets import GRIDS, method_config
from robustfusion.runner.reproduce import (
    REFERENCES,
    SPECIALISTS_LOGISTIC,
    SPECIALISTS_RIDGE,
    reproduce,
)
from robustfusion.runner.scoring import check_monitor, evaluate_dataset

TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=48", "train.epochs=1"]


def test_emotion_grid_is_classification_without_the_regression_readout():
    grid = GRIDS.get("synthetic_emotion")
    assert grid.oracle and grid.seeds == [0, 1, 2]
    assert grid.methods == GRIDS.get("synthetic").methods
    for method in grid.methods:
        cfg = method_config(grid, method, 0)
        assert cfg.data.options.target == "emotion"
        assert not cfg.train.calibrate_subsets
    # the sentiment grid keeps its read-out
    assert method_config(GRIDS.get("synthetic"), "gmc_pf", 0).train.calibrate_subsets
    # gmc_pf's emotion settings (chosen on valid) stay out of gmc and of the sentiment grid
    params = method_config(grid, "gmc_pf", 0).model.params
    assert (params.unimodal_weight, params.contrastive_weight) == (2.0, 0.3)
    assert "contrastive_weight" not in method_config(grid, "gmc", 0).model.params
    assert "contrastive_weight" not in method_config(GRIDS.get("synthetic"), "gmc_pf", 0).model.params


def test_references_are_a_registry_fitted_ridge_first():
    assert REFERENCES.ordered() == [SPECIALISTS_RIDGE, SPECIALISTS_LOGISTIC]  # the order of their rows
    assert REFERENCES.get(SPECIALISTS_LOGISTIC).tasks == ("classification",)
    assert "regression" in REFERENCES.get(SPECIALISTS_RIDGE).tasks


def test_reproduce_synthetic_emotion_quick_end_to_end(tmp_path):
    result = reproduce("synthetic_emotion", quick=True, out=tmp_path, overrides=TINY, log=lambda m: None)
    rows = result["rows"]
    models = {r["model"] for r in rows}
    assert {"gmc", "gmc_pf", "late_fusion", "oracle", "specialists_ridge", "specialists_logistic"} <= models
    full = [r for r in rows if r["protocol"] == "subsets" and r["subset"] == "text+audio+vision"]
    for model in models:
        metrics = {r["metric"]: r["value"] for r in full if r["model"] == model}
        expected = {"Acc", "F1_weighted", "F1_macro", "NLL", *(f"{n}_F1" for n in EMOTION_NAMES)}
        assert expected <= set(metrics), model
        assert 0.0 <= metrics["Acc"] <= 1.0 and metrics["NLL"] > 0.0
    oracle = {r["metric"]: r["value"] for r in full if r["model"] == "oracle"}
    assert oracle["Acc"] > 1 / 6
    comparisons = read_comparisons_csv(tmp_path / "comparisons.csv")  # against the logistic specialists
    assert comparisons and {r["reference"] for r in comparisons if r["protocol"] == "subsets"} == {"specialists_logistic"}
    assert {r["model"] for r in comparisons} == {"gmc", "gmc_pf", "late_fusion", "specialists_ridge"}
    assert all(r["ci_low"] <= r["delta"] <= r["ci_high"] for r in comparisons if r["protocol"] == "subsets")
    assert any(r["ci_high"] > r["ci_low"] for r in comparisons)
    assert "Differences with 95% intervals" in (tmp_path / "table.md").read_text()


class _Uniform:
    def predict(self, batch):
        return torch.zeros(batch.batch_size, 6)


def test_training_metrics_use_the_emotion_names():
    valid = load_synthetic(n_train=12, n_valid=30, n_test=12, target="emotion")["valid"]
    check_monitor(_Uniform(), valid, "happy_F1", torch.device("cpu"))  # a valid monitor
    metrics = evaluate_dataset(_Uniform(), valid)
    assert {f"{n}_F1" for n in EMOTION_NAMES} <= set(metrics) and "class0_F1" not in metrics
