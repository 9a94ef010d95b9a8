"""Mask helpers every layer shares: masked temporal pooling and zero-filling by selection.

"Missing" is a mask, never a magic value (CONTRIBUTING.md, conventions): a frame mask ``[B, T]`` (True = observed
frame) or a presence mask ``[B, M]`` (True = modality present). Every helper here *selects*
(``torch.where``) instead of multiplying by the mask, so whatever an unobserved frame or an
absent modality holds -- even NaN or inf -- never reaches the result.

This is a core module: it imports only ``torch``, so encoders, fusion layers, models and the
evaluation code can all use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = [
    "POOLINGS",
    "check_frame_mask",
    "key_padding_mask",
    "last_observed",
    "masked_last",
    "masked_mean",
    "zero_absent",
    "zero_fill_concat",
    "zero_fill_sequences",
    "zero_unobserved",
]

#: Temporal poolings of the sequence encoders (``"flatten"`` keeps every frame, zeroed if unobserved).
POOLINGS = ("mean", "last", "flatten")


def _zero(x: Tensor) -> Tensor:
    return torch.zeros((), dtype=x.dtype, device=x.device)


def check_frame_mask(x: Tensor, mask: Tensor | None) -> None:
    """Raise a ``ValueError`` unless ``mask`` is ``None`` or ``[B, T]`` for ``x`` ``[B, T, ...]``."""
    if mask is not None and tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"frame mask: expected shape {tuple(x.shape[:2])} for input of shape "
                         f"{tuple(x.shape)}, found {tuple(mask.shape)}")


def zero_unobserved(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x`` ``[B, T, D]`` with the frames where ``mask`` ``[B, T]`` is False set to 0."""
    if mask is None:
        return x
    check_frame_mask(x, mask)
    return torch.where(mask.bool().unsqueeze(-1), x, _zero(x))


def masked_mean(h: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``h`` ``[B, T, H]`` over the frames where ``mask`` ``[B, T]`` is True -> ``[B, H]``.

    A sequence with no observed frame pools to zeros (not NaN).
    """
    if mask is None:
        return h.mean(dim=1)
    check_frame_mask(h, mask)
    m = mask.bool().unsqueeze(-1)
    total = torch.where(m, h, _zero(h)).sum(dim=1)
    return total / m.sum(dim=1).clamp_min(1).to(h.dtype)


def last_observed(mask: Tensor) -> Tensor:
    """``[B, T]`` observed-frame mask -> ``[B]`` index of each sequence's last observed frame
    (-1 where none is observed)."""
    mask = mask.bool()
    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask, pos, torch.full_like(pos, -1)).max(dim=1).values


def masked_last(h: Tensor, mask: Tensor | None) -> Tensor:
    """``h[b, t_b]`` ``[B, H]`` for the last observed frame ``t_b`` of each sequence (zeros if none)."""
    if mask is None:
        return h[:, -1]
    check_frame_mask(h, mask)
    last = last_observed(mask)
    out = h[torch.arange(h.shape[0], device=h.device), last.clamp_min(0)]
    return torch.where((last >= 0).unsqueeze(-1), out, _zero(h))


def key_padding_mask(mask: Tensor | None) -> Tensor | None:
    """``[B, T]`` observed-frame mask -> attention ``key_padding_mask`` ``[B, T]`` (True = ignore).

    A row with no observed frame attends to every frame instead of producing NaN (its frames
    must have been zeroed, and its pooled output is zero or ignored downstream).
    """
    if mask is None:
        return None
    mask = mask.bool()
    empty = ~mask.any(dim=1, keepdim=True)
    return ~(mask | empty)


def zero_absent(h: Tensor, present: Tensor) -> Tensor:
    """``h`` with the entries of absent modalities set to 0.

    ``present`` is a bool mask whose shape leads ``h``'s: ``[B]`` or ``[B, 1]`` for one
    modality's ``h`` ``[B, H]``, ``[B, M]`` for stacked features ``[B, M, H]``.
    """
    p = present.bool()
    p = p.reshape(*p.shape, *([1] * (h.dim() - p.dim())))
    return torch.where(p, h, _zero(h))


def zero_fill_concat(features: Mapping[str, Tensor], present: Tensor, append_mask: bool = False) -> Tensor:
    """``[present_1 * h_1; ...; present_M * h_M]`` ``[B, sum_m H_m]`` by selection; with
    ``append_mask`` the presence mask itself is appended (``[B, sum_m H_m + M]``), so a layer that
    reads it can tell "absent" from "present with a zero vector".

    Args:
        features: ``{name: [B, H_m]}`` in modality order.
        present: ``[B, M]`` bool in the same order.
    """
    p = present.bool()
    parts = [zero_absent(h, p[:, i]) for i, h in enumerate(features.values())]
    if append_mask:
        parts.append(p.to(parts[0].dtype))
    return torch.cat(parts, dim=-1)


def zero_fill_sequences(inputs: Mapping[str, Tensor], present: Tensor,
                        frame_masks: Mapping[str, Tensor | None] | None = None
                        ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The zero-filling rule for sequences of possibly absent modalities.

    Args:
        inputs: ``{name: [B, T_m, D_m] or [B, D_m]}``.
        present: ``[B, M]`` bool, columns in the order of ``inputs``.
        frame_masks: optional ``{name: [B, T_m]}`` (True = observed frame).

    Returns:
        ``(sequences, masks)``: ``[B, T_m, D_m]`` inputs (``[B, D]`` becomes ``T = 1``) where
        absent modalities and unobserved frames are 0, and ``[B, T_m]`` masks where an absent
        modality counts as a fully observed all-zero sequence (so a model sees the same zeros
        whatever was stored there).
    """
    frame_masks = frame_masks or {}
    seqs, masks = {}, {}
    for i, (m, x) in enumerate(inputs.items()):
        if x.dim() == 2:
            x = x.unsqueeze(1)
        b, t, _ = x.shape
        fm = frame_masks.get(m)
        fm = torch.ones(b, t, dtype=torch.bool, device=x.device) if fm is None else fm.bool()
        here = present[:, i : i + 1]
        keep = fm & here
        seqs[m] = torch.where(keep.unsqueeze(-1), x, torch.zeros_like(x))
        masks[m] = torch.where(here, fm, torch.ones_like(fm))
    return seqs, masks
