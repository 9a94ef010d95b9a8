"""One ``seed_everything`` and the per-epoch seeds that make resumed runs bit-identical."""

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
