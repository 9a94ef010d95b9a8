"""Small batches shared by the model tests: every modality subset (plus an all-absent row) on
tiny sequence or utterance inputs."""

from __future__ import annotations

import torch

from robustfusion import MultimodalBatch
from robustfusion.dropping import all_subsets

DIMS = {"text": 5, "audio": 3, "vision": 2}
T = 4


def every_subset_present(dims=DIMS) -> torch.Tensor:
    """One row per non-empty subset, plus an all-absent row: ``[2^M, M]``."""
    rows = [[m in s for m in dims] for s in all_subsets(dims)] + [[False] * len(dims)]
    return torch.tensor(rows)


def make_batch(present: torch.Tensor, seed: int = 0, targets: bool = True, frame_masks: bool = False,
               utterance: bool = False, dims=DIMS, frames: int = T) -> MultimodalBatch:
    g = torch.Generator().manual_seed(seed)
    b = present.shape[0]
    inputs = {m: torch.randn(*((b, d) if utterance else (b, frames, d)), generator=g) for m, d in dims.items()}
    fm = None
    if frame_masks and not utterance:
        fm = {m: torch.rand(b, frames, generator=g) > 0.4 for m in dims}
        for v in fm.values():
            v[:, 0] = True
    y = torch.randn(b, generator=g) if targets else None
    return MultimodalBatch(inputs, present=present, frame_masks=fm, targets=y)
