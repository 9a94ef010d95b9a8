"""Scoring a model on a dataset outside the training step: predictions, the task's metrics, the
validation loss, the mean over modality subsets (``train.monitor_subsets``), the monitor check,
and the all-missing fallback from the training targets."""

from __future__ import annotations

import torch
from torch import nn

from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import all_subsets, keep_subset
from robustfusion.metrics import compute_metrics
from robustfusion.models.base import target_fallback
from robustfusion.robustness import metric_options

__all__ = ["check_monitor", "evaluate_dataset", "predict_dataset", "set_fallback_from_targets", "subset_mean_metric",
           "validation_loss"]


def set_fallback_from_targets(model: nn.Module, train: MultimodalDataset) -> None:
    """The all-missing prediction of ``model`` from ``train``'s targets
    (:func:`robustfusion.models.base.target_fallback`)."""
    model.set_fallback(target_fallback(train.task, train.targets, model.num_outputs))


@torch.no_grad()
def predict_dataset(model: nn.Module, dataset: MultimodalDataset, batch_size: int = 256,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """``[N, K]`` predictions of ``model`` on ``dataset`` (all its modalities as stored)."""
    preds = [model.predict(b.to(device)).cpu() for b in dataset.batches(batch_size)]
    return torch.cat(preds)


def evaluate_dataset(model: nn.Module, dataset: MultimodalDataset, batch_size: int = 256,
                     device: torch.device | str = "cpu") -> dict[str, float]:
    """The task's metrics (:func:`robustfusion.metrics.compute_metrics`) on ``dataset``."""
    return compute_metrics(dataset.task, predict_dataset(model, dataset, batch_size, device), dataset.targets,
                           **metric_options(dataset))


@torch.no_grad()
def validation_loss(model: nn.Module, dataset: MultimodalDataset, batch_size: int = 256,
                    device: torch.device | str = "cpu") -> float:
    """The model's training objective on ``dataset`` in eval mode, averaged over samples (the
    ``val_loss`` that GMC's learning-rate schedule watches)."""
    model.eval()
    total, n = 0.0, 0
    for batch in dataset.batches(batch_size):
        out = model(batch.to(device))
        if out.loss is None:
            raise ValueError("train.scheduler=plateau watches the validation loss, but the model returned no loss")
        total += float(out.loss) * len(batch)
        n += len(batch)
    return total / max(n, 1)


def subset_mean_metric(model: nn.Module, dataset: MultimodalDataset, metric: str, batch_size: int = 256,
                       device: torch.device | str = "cpu") -> float:
    """``metric`` averaged over every non-empty modality subset of ``dataset`` (the selection
    rule of ``train.monitor_subsets``: one model that must serve every subset)."""
    values = []
    for subset in all_subsets(dataset.modalities):
        preds = torch.cat([model.predict(keep_subset(b, subset).to(device)).cpu() for b in dataset.batches(batch_size)])
        values.append(float(compute_metrics(dataset.task, preds, dataset.targets, **metric_options(dataset))[metric]))
    return sum(values) / len(values)


@torch.no_grad()
def check_monitor(model: nn.Module, valid: MultimodalDataset, monitor: str, device: torch.device) -> None:
    """Refuse, before the first epoch, a ``train.monitor`` that the task's metrics do not include
    (the names come from the metrics of an untrained prediction on a few validation samples)."""
    batch = next(iter(valid.batches(64)))
    names = compute_metrics(valid.task, model.predict(batch.to(device)).cpu(), batch.targets.cpu(),
                            **metric_options(valid))
    if monitor not in names:
        raise ValueError(f"train.monitor={monitor!r} is not a validation metric of a {valid.task} task; "
                         f"available: {sorted(names)}")
