"""How good an uncertainty is: interval coverage and width, ECE / NLL / Brier of probabilities,
coverage and size of prediction sets. Long-format metric names as the evaluator writes them.

* ``PI_coverage``: share of samples with ``lo <= y <= hi``; ``PI_width``: mean ``hi - lo``;
* ``ECE``: expected calibration error of the top-class confidence over 15 equal-width bins
  (Naeini et al., AAAI 2015; Guo et al., arXiv 1706.04599): ``sum_b |B_b|/n * |acc(B_b) - conf(B_b)|``,
  computed by torchmetrics' ``multiclass_calibration_error(norm="l1")``;
* ``NLL``: mean ``-log p_y``; ``Brier``: mean over samples of ``sum_c (p_c - 1[y = c])^2``;
* ``Set_coverage``: share of samples whose set holds the label; ``Set_size``: mean set size.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["interval_scores", "probability_scores", "set_scores"]


def _labels(labels, n: int, num_classes: int) -> Tensor:
    y = torch.as_tensor(labels).long().reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"labels: expected {n} samples, found {y.shape[0]}")
    if bool((y < 0).any()) or bool((y >= num_classes).any()):
        raise ValueError(f"labels: expected classes in [0, {num_classes - 1}], found [{int(y.min())}, {int(y.max())}]")
    return y


def interval_scores(lo: Tensor, hi: Tensor, targets: Tensor) -> dict[str, float]:
    """``{"PI_coverage", "PI_width"}`` of intervals ``[lo, hi]`` (each ``[N]``) for ``targets`` ``[N]``."""
    lo, hi, y = (torch.as_tensor(t, dtype=torch.float64).reshape(-1) for t in (lo, hi, targets))
    if not lo.shape == hi.shape == y.shape:
        raise ValueError(f"lo/hi/targets: expected equal lengths, found {lo.shape[0]}, {hi.shape[0]}, {y.shape[0]}")
    if bool((hi < lo).any()):
        raise ValueError("intervals: expected lo <= hi, found an interval with hi < lo")
    return {"PI_coverage": float(((lo <= y) & (y <= hi)).double().mean()), "PI_width": float((hi - lo).mean())}


def probability_scores(probs: Tensor, labels: Tensor, n_bins: int = 15) -> dict[str, float]:
    """``{"ECE", "NLL", "Brier"}`` of class probabilities ``probs`` ``[N, C]`` (rows sum to 1)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    p = torch.as_tensor(probs, dtype=torch.float64)
    if p.dim() != 2:
        raise ValueError(f"probs: expected [N, C] probabilities, found shape {tuple(p.shape)}")
    if not torch.allclose(p.sum(dim=1), torch.ones(p.shape[0], dtype=p.dtype), atol=1e-4):
        raise ValueError("probs: expected rows that sum to 1 (probabilities, not logits)")
    y = _labels(labels, p.shape[0], p.shape[1])
    ece = multiclass_calibration_error(p.float(), y, num_classes=p.shape[1], n_bins=n_bins, norm="l1")
    nll = -p.gather(1, y[:, None]).clamp_min(1e-12).log().mean()
    brier = ((p - torch.nn.functional.one_hot(y, p.shape[1]).double()) ** 2).sum(dim=1).mean()
    return {"ECE": float(ece), "NLL": float(nll), "Brier": float(brier)}


def set_scores(sets: Tensor, labels: Tensor) -> dict[str, float]:
    """``{"Set_coverage", "Set_size"}`` of boolean prediction sets ``sets`` ``[N, C]``."""
    s = torch.as_tensor(sets).bool()
    if s.dim() != 2:
        raise ValueError(f"sets: expected [N, C] booleans, found shape {tuple(s.shape)}")
    y = _labels(labels, s.shape[0], s.shape[1])
    return {"Set_coverage": float(s.gather(1, y[:, None]).double().mean()),
            "Set_size": float(s.sum(dim=1).double().mean())}
