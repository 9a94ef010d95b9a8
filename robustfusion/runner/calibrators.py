"""The post-hoc calibrators of a run: ``train.calibrate_subsets`` (the per-subset affine read-out,
:class:`~robustfusion.calibration.PresenceAffine`) and the ``train.calibrators`` list
(``[{name: <calibrator>, <param>: <value>}]``), built from :mod:`robustfusion.calibration`'s
registry, checked against the task before training and fitted on validation after it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from robustfusion.calibration import CalibratedModel, Calibrator, create_calibrator, fit_on_subsets
from robustfusion.data.dataset import MultimodalDataset

__all__ = ["fit_run_calibrators", "run_calibrators"]


def run_calibrators(train_cfg: Any, model: nn.Module, task: str) -> list[Calibrator]:
    """Unfitted calibrators ``train_cfg`` asks for, in order; ``ValueError`` for an unknown name or
    parameter, or a calibrator that cannot be fitted for ``task`` (raised before any training)."""
    sizes = {"num_modalities": len(model.modalities), "num_outputs": model.num_outputs}
    specs: list[dict[str, Any]] = []
    if train_cfg.calibrate_subsets:
        specs.append({"name": "presence_affine", "loss": model.regression_loss})
    specs += [dict(s) for s in OmegaConf.to_container(OmegaConf.create(list(train_cfg.calibrators)))]
    out = []
    for spec in specs:
        cal = create_calibrator(str(spec.pop("name")), **sizes, **spec)
        try:
            cal.check_task(task)
        except ValueError as err:
            key = "train.calibrate_subsets" if len(out) == 0 and train_cfg.calibrate_subsets else "train.calibrators"
            raise ValueError(f"{key}: {err}") from None
        out.append(cal)
    return out


def fit_run_calibrators(calibrators: Sequence[Calibrator], model: nn.Module, valid: MultimodalDataset, *,
                        batch_size: int, device: torch.device) -> list[dict[str, Any]]:
    """Fit each calibrator on ``valid`` (the model's predictions on every subset; a later one sees
    the earlier ones' output) and move it to ``device``. Returns each one's report
    (``{subset name: ...}``)."""
    reports = []
    for i, cal in enumerate(calibrators):
        before = CalibratedModel(model, list(calibrators[:i])) if i else model
        reports.append(fit_on_subsets(cal, before, valid, batch_size=batch_size, device=device))
        cal.to(device)
    return reports
