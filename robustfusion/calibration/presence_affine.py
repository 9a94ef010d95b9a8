"""Presence-aware affine read-out: one affine output map per presence pattern, fitted on validation.

A model trained once serves every modality subset, but how far its output can be trusted is not
the same for every subset: a prediction from a weak modality alone should stay close to the
training mean, one from the strong modalities may use its full range. A model trained on one
training set learns a single scale for all of them, and when features of unseen speakers are
noisier than the training features (CMU-MOSI's bc-LSTM text and vision extractors were trained on
the training videos), every subset's predictions are overconfident by a different amount.

:class:`PresenceAffine` holds, for each of the ``2^M`` presence patterns ``s``, a scale ``a_s`` and a
shift ``b_s`` (``[K]`` each) and maps a prediction ``p`` of a sample with pattern ``s`` to
``a_s * p + b_s``. It is the identity until fitted; the runner fits it on the validation split
(``train.calibrate_subsets``) by :func:`fit_affine`: for the L1 loss the exact minimiser over a
grid of scales (for a fixed scale the best shift is the median residual), for MSE ordinary least
squares with the scale clipped to ``[0, max_scale]``. With ``a_s = 0`` a subset whose predictions
carry nothing on validation falls back to a constant, as a per-subset ridge model with a large
penalty does. The all-missing pattern (code 0) is never fitted: the model's own fallback stands.

This is this library's addition (neither GMC nor Progressive Fusion has it); regression only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from robustfusion.calibration.base import (
    Calibrated,
    Calibrator,
    presence_codes,
    register_calibrator,
)

__all__ = ["PresenceAffine", "fit_affine"]


@register_calibrator("presence_affine")
class PresenceAffine(Calibrator):
    """``a_s * prediction + b_s`` per presence pattern ``s`` (module docstring).

    Args:
        num_modalities: ``M``.
        num_outputs: ``K``.
        loss: ``"l1"`` or ``"mse"``, the loss :func:`fit_affine` minimises (the model's
            ``regression_loss``).
        max_scale: the largest scale fitted.

    Buffers ``scale`` and ``shift`` are ``[2^M, K]``, initialised to 1 and 0 (identity).
    """

    tasks = ("regression",)

    def __init__(self, num_modalities: int, num_outputs: int, loss: str = "l1", max_scale: float = 2.0) -> None:
        super().__init__(num_modalities, num_outputs)
        if loss not in ("l1", "mse"):
            raise ValueError(f"PresenceAffine: loss expected 'l1' or 'mse', found {loss!r}")
        self.loss, self.max_scale = loss, float(max_scale)
        self.register_buffer("scale", torch.ones(2 ** num_modalities, num_outputs))
        self.register_buffer("shift", torch.zeros(2 ** num_modalities, num_outputs))

    def params(self) -> dict[str, Any]:
        return {**super().params(), "loss": self.loss, "max_scale": self.max_scale}

    def apply(self, output: Calibrated, present: Tensor) -> Calibrated:
        code = presence_codes(present)
        p = output.prediction
        return output.with_fields(prediction=p * self.scale[code].to(p.dtype) + self.shift[code].to(p.dtype))

    def set_pattern(self, present_row: Tensor, scale: Tensor, shift: Tensor) -> None:
        """Set the affine map of the pattern ``present_row`` (``[M]`` bool)."""
        code = int(presence_codes(present_row.reshape(1, -1))[0])
        self.scale[code] = scale.to(self.scale)
        self.shift[code] = shift.to(self.shift)

    def reset(self) -> None:
        """Back to the identity for every pattern."""
        self.scale.fill_(1.0)
        self.shift.zero_()

    def _cost(self, p: Tensor, y: Tensor) -> float:
        return float(((p - y).abs() if self.loss == "l1" else (p - y) ** 2).mean())

    @torch.no_grad()
    def fit(self, predictions: Tensor, targets: Tensor, present: Tensor, *, task: str = "regression",
            latents: Tensor | None = None) -> dict[int, dict[str, Any]]:
        """Fit each presence pattern in ``present`` (not the empty one) on its samples, in the order
        the patterns first appear; every other pattern is reset to the identity. Returns
        ``{code: {"scale", "shift", "loss_before", "loss_after"}}``."""
        self.check_task(task)
        if present.shape != (len(predictions), self.num_modalities):
            raise ValueError(f"PresenceAffine.fit: expected present [{len(predictions)}, {self.num_modalities}], "
                             f"found {tuple(present.shape)}")
        self.reset()
        preds = predictions.float().reshape(len(predictions), -1)
        y = targets.float().reshape(len(targets), -1)
        codes = presence_codes(present.cpu())
        out: dict[int, dict[str, Any]] = {}
        for code in dict.fromkeys(codes.tolist()):
            if code == 0:
                continue
            rows = codes == code
            scale, shift = fit_affine(preds[rows], y[rows], loss=self.loss, max_scale=self.max_scale)
            self.scale[code], self.shift[code] = scale.to(self.scale), shift.to(self.shift)
            out[code] = {"scale": scale.tolist(), "shift": shift.tolist(), "loss_before": self._cost(preds[rows], y[rows]),
                         "loss_after": self._cost(preds[rows] * scale + shift, y[rows])}
        return out


def fit_affine(prediction: Tensor, target: Tensor, loss: str = "l1", max_scale: float = 2.0,
               grid: int = 401) -> tuple[Tensor, Tensor]:
    """``(a, b)`` (``[K]`` each) minimising the mean ``loss`` of ``a * prediction + b`` against
    ``target`` (both ``[N, K]``), with ``0 <= a <= max_scale``.

    ``loss="l1"``: exact over ``grid`` evenly spaced scales (for each, the optimal ``b`` is the
    median of ``target - a * prediction``); ``"mse"``: least squares, ``a`` clipped to the range
    and ``b`` refitted. Computed in float64.
    """
    if prediction.shape != target.shape or prediction.dim() != 2 or len(prediction) == 0:
        raise ValueError(f"fit_affine: expected two equal [N, K] tensors with N >= 1, found "
                         f"{tuple(prediction.shape)} and {tuple(target.shape)}")
    if loss not in ("l1", "mse"):
        raise ValueError(f"fit_affine: loss expected 'l1' or 'mse', found {loss!r}")
    p, y = prediction.double(), target.double()
    if loss == "mse":
        pc, yc = p - p.mean(0), y - y.mean(0)
        a = ((pc * yc).sum(0) / (pc * pc).sum(0).clamp_min(1e-12)).clamp(0.0, max_scale)
        return a.float(), (y.mean(0) - a * p.mean(0)).float()
    scales = torch.linspace(0.0, max_scale, grid, dtype=torch.float64)  # [G]
    resid = y.unsqueeze(0) - scales.view(-1, 1, 1) * p.unsqueeze(0)  # [G, N, K]
    shifts = resid.median(dim=1).values  # [G, K] (a median minimises the L1 loss)
    cost = (resid - shifts.unsqueeze(1)).abs().mean(dim=1)  # [G, K]
    best = cost.argmin(dim=0)  # [K]; the smallest scale among equals
    k = torch.arange(p.shape[1])
    return scales[best].float(), shifts[best, k].float()
