"""Seeds: one ``seed_everything``, and :func:`derived_seed`, the one rule that turns a run seed and
labels into a stable seed (per-epoch training randomness, test-time drop patterns)."""

from __future__ import annotations

import random
import zlib

import numpy as np
import torch

__all__ = ["derived_seed", "seed_everything"]


def derived_seed(seed: int, *parts: object) -> int:
    """A stable seed from ``seed`` and labels (e.g. ``("epoch", 3)``); no Python ``hash``."""
    key = "|".join([str(int(seed)), *map(str, parts)]).encode()
    return (zlib.crc32(key) * 2654435761 + int(seed)) % (2**31 - 1)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
