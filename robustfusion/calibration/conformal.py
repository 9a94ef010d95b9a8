"""Split-conformal prediction intervals per presence pattern (``conformal_intervals``).

Split conformal (Lei et al., JASA 2018, arXiv 1604.04173): with ``n`` exchangeable calibration
residuals, ``y_hat ± q`` with ``q`` their ``ceil((n + 1) * level)``-th smallest covers a new target
with probability at least ``level``. Zaffran et al. (ICML 2023, arXiv 2306.02732) show that one
quantile over all missingness patterns keeps the overall coverage but under-covers some patterns,
and restore it per pattern by calibrating on samples "masked so that it has the same missing
pattern as the test point": here one quantile per presence pattern, each from the whole
validation set predicted with that pattern's modalities (:func:`~robustfusion.calibration.fit_on_subsets`).

With ``monotone`` (default) the half-widths are made non-increasing along the subset order,
``q'(T) = max over fitted S ⊇ T of q(S)`` (this library's way to meet CML's principle, arXiv
2306.01265, for intervals): removing a modality never narrows an interval, and every pattern keeps
at least its nominal coverage. A pattern that was not fitted (nothing present) gets the widest
fitted half-width.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from robustfusion.calibration.base import (
    Calibrated,
    CoverageCalibrator,
    presence_codes,
    register_calibrator,
)
from robustfusion.calibration.patterns import by_code, superset_max
from robustfusion.uncertainty import conformal_quantile

__all__ = ["ConformalIntervals"]


@register_calibrator("conformal_intervals")
class ConformalIntervals(CoverageCalibrator):
    """``prediction ± half_width[pattern]`` (module docstring). Buffer ``half_width`` ``[2^M, K]``.

    Args:
        num_modalities, num_outputs: ``M``, ``K``.
        level: nominal coverage in (0, 1).
        monotone: make the half-widths non-increasing along the subset order.
    """

    tasks = ("regression",)
    def __init__(self, num_modalities: int, num_outputs: int, level: float = 0.9, monotone: bool = True) -> None:
        super().__init__(num_modalities, num_outputs, level, monotone)
        self.register_buffer("half_width", torch.full((2 ** num_modalities, num_outputs), float("inf")))

    def apply(self, output: Calibrated, present: Tensor) -> Calibrated:
        """Bounds in float64, so that equal half-widths give equal widths to the last bit (a float32
        ``(p + w) - (p - w)`` differs from sample to sample and would count as a VRR violation)."""
        w = self.half_width[presence_codes(present)].double()
        p = output.prediction.double()
        return output.with_fields(lower=p - w, upper=p + w)

    @torch.no_grad()
    def fit(self, predictions: Tensor, targets: Tensor, present: Tensor, *, task: str = "regression",
            latents: Tensor | None = None) -> dict[int, dict[str, Any]]:
        """One quantile per pattern of ``present`` from its rows' absolute residuals. Returns
        ``{code: {"n", "half_width"}}`` (after the monotone step)."""
        self.check_task(task)
        p = predictions.double().reshape(len(predictions), -1)
        y = targets.double().reshape(len(targets), -1)
        groups = {c: rows for c, rows in by_code(presence_codes(present.cpu())).items() if c != 0}
        if not groups:
            raise ValueError("conformal_intervals: expected predictions under at least one non-empty pattern, found none")
        table = torch.zeros(2 ** self.num_modalities, self.num_outputs, dtype=torch.float64)
        fitted = torch.zeros(2 ** self.num_modalities, dtype=torch.bool)
        for code, rows in groups.items():
            res = (y[rows] - p[rows]).abs()
            table[code] = torch.tensor([conformal_quantile(res[:, k], self.level) for k in range(res.shape[1])])
            fitted[code] = True
        if self.monotone:
            table = superset_max(table, fitted)
        widest = table[fitted].max(dim=0).values
        table[~fitted] = widest
        self.half_width.copy_(table.to(self.half_width))
        return {c: {"n": len(rows), "half_width": table[c].tolist()} for c, rows in groups.items()}
