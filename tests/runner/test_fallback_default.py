"""The all-missing rule as the README states it: trained through the runner, a model predicts the
training-set target mean for a sample with no modality present; built with ``create_model``
alone it predicts zeros until ``set_fallback`` is called."""

from __future__ import annotations

import torch

from robustfusion.batch import MultimodalBatch
from robustfusion.models.registry import create_model
from robustfusion.runner.api import train_run
from robustfusion.runner.presets import GRIDS, method_config

TINY = ["data.options.n_train=64", "data.options.n_valid=32", "data.options.n_test=32", "train.epochs=1",
        "train.progress=false", "model.params.hidden_dim=8", "train.calibrate_fusion=false",
        "train.calibrate_subsets=false"]


def _nothing_present(dims: dict[str, int], n: int = 3) -> MultimodalBatch:
    return MultimodalBatch({m: torch.randn(n, d) for m, d in dims.items()},
                           present=torch.zeros(n, len(dims), dtype=torch.bool))


def test_a_runner_trained_model_predicts_the_training_target_mean_with_no_modality(tmp_path):
    cfg = method_config(GRIDS.get("synthetic"), "late_fusion", 0, overrides=TINY)
    run = train_run(cfg, run_dir=tmp_path / "run")
    train = run.data.splits["train"]
    mean = float(train.targets.float().mean())
    dims = {m: d for m, d in train.modality_dims.items()}
    pred = run.model.eval().predict(_nothing_present({m: dims[m] for m in run.model.modalities}))
    torch.testing.assert_close(pred, torch.full((3, 1), mean))
    assert abs(mean) > 1e-3  # the check above could not pass with the zeros default


def test_create_model_alone_predicts_zeros_until_set_fallback():
    model = create_model("late_fusion", modality_dims={"a": 3, "b": 2}, hidden_dim=8).eval()
    assert torch.equal(model.predict(_nothing_present({"a": 3, "b": 2})), torch.zeros(3, 1))
    model.set_fallback(0.25)
    assert torch.equal(model.predict(_nothing_present({"a": 3, "b": 2})), torch.full((3, 1), 0.25))
