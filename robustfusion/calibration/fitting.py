"""Fitting a calibrator on a validation split: the model's predictions on every modality subset."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustfusion.calibration.base import Calibrator, presence_codes
from robustfusion.dropping import all_subsets, keep_subset, subset_name

__all__ = ["fit_on_subsets"]


@torch.no_grad()
def fit_on_subsets(calibrator: Calibrator, model: nn.Module, dataset, *, batch_size: int = 256,
                   device: torch.device | str = "cpu") -> dict[str, dict[str, Any]]:
    """Fit ``calibrator`` on ``model``'s predictions for every non-empty modality subset of
    ``dataset`` (:func:`robustfusion.dropping.keep_subset`), all weights frozen. The samples of a
    subset are fitted as the presence pattern of that subset (so each pattern's map is fitted on
    every validation sample, as the evaluator's subsets table scores them). Deterministic.

    Returns ``{subset name: report}`` (the calibrator's report of that subset's pattern).
    """
    calibrator.check_task(dataset.task)
    device = torch.device(device)
    model.to(device).eval()
    targets = dataset.targets.float().reshape(len(dataset), -1)
    order = torch.tensor([m in dataset.modalities for m in model.modalities])
    preds, ys, present, names = [], [], [], {}
    for subset in all_subsets(dataset.modalities):
        p = torch.cat([model.predict(keep_subset(b, subset).to(device)).cpu().float()
                       for b in dataset.batches(batch_size)])
        row = torch.tensor([m in subset for m in model.modalities]) & order
        names[int(presence_codes(row.reshape(1, -1))[0])] = subset_name(subset)
        preds.append(p)
        ys.append(targets)
        present.append(row.expand(len(p), -1))
    report = calibrator.fit(torch.cat(preds), torch.cat(ys), torch.cat(present), task=dataset.task)
    return {names[code]: value for code, value in report.items()}
