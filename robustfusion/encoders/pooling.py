"""Masked temporal pooling shared by the sequence encoders."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["POOLINGS", "check_frame_mask", "masked_last", "masked_mean", "zero_unobserved"]

POOLINGS = ("mean", "last", "flatten")


def check_frame_mask(x: Tensor, mask: Tensor | None) -> None:
    """Raise a ``ValueError`` unless ``mask`` is ``None`` or ``[B, T]`` for ``x`` ``[B, T, ...]``."""
    if mask is not None and tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"frame mask: expected shape {tuple(x.shape[:2])} for input of shape "
                         f"{tuple(x.shape)}, found {tuple(mask.shape)}")


def zero_unobserved(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x`` ``[B, T, D]`` with the frames where ``mask`` ``[B, T]`` is False set to 0.

    A select, not a multiplication, so even NaN/inf stored in unobserved frames cannot leak.
    """
    if mask is None:
        return x
    check_frame_mask(x, mask)
    return torch.where(mask.bool().unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_mean(h: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``h`` ``[B, T, H]`` over the frames where ``mask`` ``[B, T]`` is True.

    A sequence with no observed frame pools to zeros (not NaN); values stored in unobserved
    frames never reach the result (not even NaN/inf).
    """
    if mask is None:
        return h.mean(dim=1)
    check_frame_mask(h, mask)
    m = mask.bool().unsqueeze(-1)
    total = torch.where(m, h, torch.zeros((), dtype=h.dtype, device=h.device)).sum(dim=1)
    return total / m.sum(dim=1).clamp_min(1).to(h.dtype)


def masked_last(h: Tensor, mask: Tensor | None) -> Tensor:
    """``h[b, t_b]`` for the last observed frame ``t_b`` of each sequence (zeros if none)."""
    if mask is None:
        return h[:, -1]
    check_frame_mask(h, mask)
    t = h.shape[1]
    mask = mask.bool()
    pos = torch.arange(t, device=h.device).expand_as(mask)
    last = torch.where(mask, pos, torch.full_like(pos, -1)).max(dim=1).values
    out = h[torch.arange(h.shape[0], device=h.device), last.clamp_min(0)]
    return torch.where((last >= 0).unsqueeze(-1), out, torch.zeros((), dtype=h.dtype, device=h.device))
