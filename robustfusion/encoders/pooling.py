"""Masked temporal pooling shared by the sequence encoders."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["masked_mean", "masked_last", "POOLINGS"]

POOLINGS = ("mean", "last", "flatten")


def masked_mean(h: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``h`` ``[B, T, H]`` over the frames where ``mask`` ``[B, T]`` is True.

    A sequence with no observed frame pools to zeros (not NaN).
    """
    if mask is None:
        return h.mean(dim=1)
    w = mask.to(h.dtype).unsqueeze(-1)
    return (h * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


def masked_last(h: Tensor, mask: Tensor | None) -> Tensor:
    """``h[b, t_b]`` for the last observed frame ``t_b`` of each sequence (zeros if none)."""
    if mask is None:
        return h[:, -1]
    t = h.shape[1]
    pos = torch.arange(t, device=h.device).expand_as(mask)
    last = torch.where(mask, pos, torch.full_like(pos, -1)).max(dim=1).values
    out = h[torch.arange(h.shape[0], device=h.device), last.clamp_min(0)]
    return out * (last >= 0).to(h.dtype).unsqueeze(-1)
