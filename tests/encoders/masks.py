"""The frame mask the encoder tests share: every kind of observed/unobserved pattern in one batch."""

from __future__ import annotations

import torch

#: Batch size, frames, feature size, output size, context size of the encoder tests.
B, T, D, OUT, K = 5, 6, 4, 7, 3


def frame_mask() -> torch.Tensor:
    """``[B, T]``. Sample 0: all observed; 1: padding at the end; 2: holes inside; 3: one frame; 4: none."""
    m = torch.ones(B, T, dtype=torch.bool)
    m[1, 4:] = False
    m[2, [0, 2, 3]] = False
    m[3, :] = False
    m[3, 2] = True
    m[4, :] = False
    return m
