"""Presence-aware read-out: one affine output map per presence pattern, fitted after training.

A model trained once serves every modality subset, but how far its output can be trusted is not
the same for every subset: a prediction from a weak modality alone should stay close to the
training mean, one from the strong modalities may use its full range. A model trained on one
training set learns a single scale for all of them, and when features of unseen speakers are
noisier than the training features (CMU-MOSI's bc-LSTM text and vision extractors were trained on
the training videos), every subset's predictions are overconfident by a different amount.

:class:`PresenceReadout` holds, for each of the ``2^M`` presence patterns ``s``, a scale ``a_s``
and a shift ``b_s`` (``[K]`` each) and maps a prediction ``p`` of a sample with pattern ``s`` to
``a_s * p + b_s``. It is the identity until fitted, so training is unchanged; the runner fits it on
the validation split (``train.calibrate_subsets``) with every other weight frozen, by
:func:`fit_affine`: for the L1 loss the exact minimiser over a grid of scales (for a fixed scale
the best shift is the median residual), for MSE ordinary least squares with the scale clipped to
``[0, max_scale]``. With ``a_s = 0`` a subset whose predictions carry nothing on validation
falls back to a constant, as a per-subset ridge model with a large penalty does.

This is this library's addition (neither GMC nor Progressive Fusion has it); regression only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["PresenceReadout", "fit_affine", "presence_codes"]

#: Largest number of modalities a read-out table is built for (``2^M`` rows).
MAX_MODALITIES = 12


def presence_codes(present: Tensor) -> Tensor:
    """``[B]`` integer code of each row of a ``[B, M]`` presence mask: ``sum_i present_i * 2^i``."""
    weights = 2 ** torch.arange(present.shape[1], device=present.device)
    return (present.long() * weights).sum(dim=1)


class PresenceReadout(nn.Module):
    """``a_s * prediction + b_s`` per presence pattern ``s`` (module docstring).

    Args:
        num_modalities: ``M`` (at most :data:`MAX_MODALITIES`).
        num_outputs: ``K``.

    Buffers ``scale`` and ``shift`` are ``[2^M, K]``, initialised to 1 and 0 (identity); they are
    saved with the model's weights.
    """

    def __init__(self, num_modalities: int, num_outputs: int) -> None:
        super().__init__()
        if not 1 <= num_modalities <= MAX_MODALITIES:
            raise ValueError(f"PresenceReadout: expected 1 to {MAX_MODALITIES} modalities, found {num_modalities}")
        self.register_buffer("scale", torch.ones(2 ** num_modalities, num_outputs))
        self.register_buffer("shift", torch.zeros(2 ** num_modalities, num_outputs))

    def forward(self, prediction: Tensor, present: Tensor) -> Tensor:
        """``[B, K]`` prediction and ``[B, M]`` presence mask -> ``[B, K]``."""
        code = presence_codes(present)
        return prediction * self.scale[code].to(prediction.dtype) + self.shift[code].to(prediction.dtype)

    def set_pattern(self, present_row: Tensor, scale: Tensor, shift: Tensor) -> None:
        """Set the affine map of the pattern ``present_row`` (``[M]`` bool)."""
        code = int(presence_codes(present_row.reshape(1, -1))[0])
        self.scale[code] = scale.to(self.scale)
        self.shift[code] = shift.to(self.shift)

    def reset(self) -> None:
        """Back to the identity for every pattern."""
        self.scale.fill_(1.0)
        self.shift.zero_()


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
