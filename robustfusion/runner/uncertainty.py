"""Fit a run's uncertainty calibrator on the validation split (``train.calibrate_uncertainty``).

The validation set is predicted once per presence pattern (every non-empty modality subset, and
nothing present: the model's fallback), as Zaffran et al. (ICML 2023, arXiv 2306.02732) prescribe
for per-pattern coverage, and :class:`~robustfusion.uncertainty.ConformalIntervals` (regression) or
:class:`~robustfusion.uncertainty.TemperatureSets` (classification) is fitted on those predictions.
The fit runs after every other post-hoc fit (partial fusion, presence read-out), on the
predictions the run will report. Its state goes into ``final.json`` under ``"uncertainty"``.
"""

from __future__ import annotations

import torch

from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import all_subsets, keep_subset
from robustfusion.uncertainty import ConformalIntervals, TemperatureSets

__all__ = ["fit_uncertainty", "subset_predictions"]


def subset_predictions(predictor, dataset: MultimodalDataset, batch_size: int = 256,
                       device: torch.device | str = "cpu") -> tuple[dict[tuple[str, ...], torch.Tensor], torch.Tensor]:
    """``({pattern: [N, K] predictions}, targets)`` of ``dataset`` under every subset and ``()``."""
    patterns = [*all_subsets(dataset.modalities), ()]
    preds: dict[tuple[str, ...], list[torch.Tensor]] = {p: [] for p in patterns}
    targets = []
    was_training = predictor.training
    predictor.to(device).eval()
    try:
        with torch.no_grad():
            for batch in dataset.batches(batch_size):
                targets.append(batch.targets.cpu())
                clean = batch.replace(targets=None).to(device)
                for p in patterns:
                    out = torch.as_tensor(predictor.predict(keep_subset(clean, p))).detach().cpu()
                    preds[p].append(out.unsqueeze(1) if out.dim() == 1 else out)
    finally:
        predictor.train(was_training)
    return {p: torch.cat(v) for p, v in preds.items()}, torch.cat(targets)


def fit_uncertainty(predictor, dataset: MultimodalDataset, *, level: float = 0.9, monotone: bool = True,
                    batch_size: int = 256, device: torch.device | str = "cpu") -> ConformalIntervals | TemperatureSets:
    """The calibrator of ``predictor`` fitted on ``dataset`` (the validation split).

    Raises:
        ValueError: a multilabel task (no calibrator yet), or a bad ``level``.
    """
    if dataset.task not in ("regression", "classification"):
        raise ValueError(f"train.calibrate_uncertainty: expected a regression or classification task, "
                         f"found {dataset.task!r}")
    preds, y = subset_predictions(predictor, dataset, batch_size, device)
    cls = ConformalIntervals if dataset.task == "regression" else TemperatureSets
    return cls.fit(preds, y, dataset.modalities, level=level, monotone=monotone)
