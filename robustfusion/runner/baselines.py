"""Training glue for the per-subset reference predictors of :mod:`robustfusion.baselines`:
a registered model trained on one subset's modalities through the runner's loop."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from robustfusion.baselines import ModelSpecialist, SubsetRouter
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import all_subsets, as_subset, check_subset
from robustfusion.metrics import primary_metric
from robustfusion.models.base import target_fallback
from robustfusion.models.registry import create_model
from robustfusion.runner.config import TrainConfig
from robustfusion.runner.fit import fit
from robustfusion.runner.scoring import set_fallback_from_targets

__all__ = ["train_model_specialists", "train_subset_model"]


def train_subset_model(model_name: str, train: MultimodalDataset, val: MultimodalDataset,
                       subset: str | Iterable[str], *, seed: int = 0, epochs: int = 30, lr: float = 1e-3,
                       weight_decay: float = 0.0, batch_size: int = 32, patience: int = 5,
                       device: str | torch.device = "cpu", **model_kwargs) -> ModelSpecialist:
    """Train ``create_model(model_name, modality_dims=<subset only>, ...)`` with Adam through the
    runner's loop (:func:`robustfusion.runner.fit.fit`).

    Early stopping: after every epoch the validation primary metric (MAE for regression) is
    computed; training stops after ``patience`` epochs without improvement and the best
    weights are restored. The fallback is the training target mean (regression), log class
    frequencies (classification) or label-frequency logits (multilabel).

    Raises:
        ValueError: an unknown or empty subset, ``epochs < 1``.
    """
    subset = as_subset(subset)
    check_subset(subset, train.modalities)
    if epochs < 1:
        raise ValueError(f"epochs: expected >= 1, found {epochs}")
    tr, va = train.select_modalities(subset), val.select_modalities(subset)
    torch.manual_seed(seed)
    model = create_model(model_name, modality_dims=tr.modality_dims, task=tr.task, num_outputs=tr.num_outputs,
                         **model_kwargs)
    set_fallback_from_targets(model, tr)
    metric = primary_metric(tr.task)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer="adam", lr=lr, weight_decay=weight_decay,
                      scheduler="none", grad_clip=0.0, selection="best", monitor=metric, patience=patience,
                      device=str(device), progress=False)
    result = fit(model, tr, va, cfg, seed)
    model.eval()
    history = [float(h[f"valid/{metric}"]) for h in result.history]
    return ModelSpecialist(tuple(tr.modalities), model, result.selected_epoch - 1, float(result.best_value), history)


def train_model_specialists(model_name: str, train: MultimodalDataset, val: MultimodalDataset,
                            subsets: Iterable[str | Iterable[str]] | None = None, **train_kwargs) -> SubsetRouter:
    """One :func:`train_subset_model` per subset (default: every non-empty subset), behind a
    :class:`robustfusion.baselines.SubsetRouter`."""
    chosen = [as_subset(s) for s in subsets] if subsets is not None else all_subsets(train.modalities)
    specs = {s: train_subset_model(model_name, train, val, s, **train_kwargs) for s in chosen}
    return SubsetRouter(specs, train.modalities, target_fallback(train.task, train.targets, train.num_outputs))
