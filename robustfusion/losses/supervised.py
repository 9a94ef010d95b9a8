"""Supervised losses for the three task kinds of affect datasets."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from robustfusion.tasks import TASKS

__all__ = ["TASKS", "check_targets", "supervised_loss"]


def check_targets(prediction: Tensor, target: Tensor, task: str) -> Tensor:
    """Validate ``target`` against ``prediction`` ``[B, K]`` and return it in the loss's layout."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, found {task!r}")
    b, k = prediction.shape
    if task == "classification":
        if target.dtype.is_floating_point or target.shape != (b,):
            raise ValueError(f"classification targets: expected integer class indices of shape ({b},), "
                             f"found {tuple(target.shape)} {target.dtype}")
        if bool((target < 0).any()) or bool((target >= k).any()):
            raise ValueError(f"classification targets: expected classes in [0, {k - 1}], "
                             f"found range [{int(target.min())}, {int(target.max())}]")
        return target.long()
    target = target.reshape(b, -1).to(prediction.dtype)
    if target.shape != (b, k):
        raise ValueError(f"{task} targets: expected shape ({b}, {k}) (or ({b},) when K=1), found {tuple(target.shape)}")
    return target


def supervised_loss(prediction: Tensor, target: Tensor, task: str = "regression",
                    regression_loss: str = "l1") -> Tensor:
    """L1 (GMC, MulT) or MSE for regression, cross-entropy for classification,
    binary cross-entropy on logits for multilabel. ``prediction`` is ``[B, K]``."""
    target = check_targets(prediction, target, task)
    if task == "classification":
        return F.cross_entropy(prediction, target)
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(prediction, target)
    if regression_loss == "l1":
        return F.l1_loss(prediction, target)
    if regression_loss == "mse":
        return F.mse_loss(prediction, target)
    raise ValueError(f"regression_loss: expected 'l1' or 'mse', found {regression_loss!r}")
