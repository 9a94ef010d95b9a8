"""Presence patterns as integer codes (:func:`~robustfusion.calibration.presence_codes`: bit ``i``
set when modality ``i`` is present) and the subset order between them, for per-pattern tables
of ``2^M`` rows."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["by_code", "superset_max"]


def by_code(codes: Tensor) -> dict[int, Tensor]:
    """``{code: row indices}`` in the order the codes first appear."""
    return {c: torch.nonzero(codes == c).flatten() for c in dict.fromkeys(codes.tolist())}


def superset_max(table: Tensor, fitted: Tensor) -> Tensor:
    """``out[t] = max over fitted codes s with s ⊇ t of table[s]`` (row-wise over ``[2^M, K]``);
    a code with no fitted superset keeps its row. ``fitted``: ``[2^M]`` bool."""
    out = table.clone()
    codes = torch.nonzero(fitted).flatten().tolist()
    for t in range(table.shape[0]):
        sup = [s for s in codes if s & t == t]
        if sup:
            out[t] = table[sup].max(dim=0).values
    return out
