"""`MultimodalDataset`: in-memory named modality arrays that yield `MultimodalBatch` objects.

Every loader (MulT pickles, MMSA pickles, MOSI utterance npz, the synthetic benchmark) returns
these, so the runner, the evaluator and user code share one way to iterate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from robustfusion.batch import MultimodalBatch

__all__ = ["MultimodalDataset"]


def _tensor(a, dtype=None) -> Tensor:
    t = a if isinstance(a, Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    return t.to(dtype) if dtype is not None else t


class MultimodalDataset(torch.utils.data.Dataset):
    """Named modality arrays ``[N, D]`` or ``[N, T, D]``, targets, optional frame masks.

    Args:
        features: ``{name: array}``; float features (converted to float32).
        targets: ``[N]`` float (regression), ``[N]`` int (classification) or ``[N, K]``
            float 0/1 (multilabel).
        task: ``"regression"``, ``"classification"`` or ``"multilabel"``.
        num_outputs: prediction size ``K`` (default: 1, the number of classes, or ``K``).
        frame_masks: optional ``{name: [N, T] bool}`` (True = real frame, False = padding).
        present: optional ``[N, M]`` bool presence (default: all present).
        ids: optional sample identifiers (``N`` strings).
        name: dataset name used in result rows.
        meta: free-form extra information (label names, provenance).
    """

    def __init__(self, features: Mapping[str, object], targets, task: str = "regression",
                 num_outputs: int | None = None, frame_masks: Mapping[str, object] | None = None,
                 present=None, ids: Sequence[str] | None = None, name: str = "dataset",
                 meta: Mapping[str, object] | None = None) -> None:
        self.features = {k: _tensor(v, torch.float32) for k, v in features.items()}
        if not self.features:
            raise ValueError("MultimodalDataset: expected at least one modality, found none")
        n = next(iter(self.features.values())).shape[0]
        for k, v in self.features.items():
            if v.shape[0] != n:
                raise ValueError(f"modality {k!r}: expected {n} samples, found shape {tuple(v.shape)}")
        tdtype = torch.long if task == "classification" else torch.float32
        self.targets = _tensor(targets, tdtype)
        if self.targets.shape[0] != n:
            raise ValueError(f"targets: expected {n} samples, found shape {tuple(self.targets.shape)}")
        self.task = task
        if num_outputs is None:
            if task == "classification":
                num_outputs = int(self.targets.max()) + 1
            elif task == "multilabel" or (self.targets.dim() == 2):
                num_outputs = int(self.targets.shape[1]) if self.targets.dim() == 2 else 1
            else:
                num_outputs = 1
        self.num_outputs = int(num_outputs)
        self.frame_masks = {k: _tensor(v).bool() for k, v in (frame_masks or {}).items()}
        self.present = None if present is None else _tensor(present).bool()
        self.ids = list(ids) if ids is not None else [str(i) for i in range(n)]
        self.name = name
        self.meta = dict(meta or {})

    # ------------------------------------------------------------------ description
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.features)

    @property
    def modality_dims(self) -> dict[str, int]:
        return {k: int(v.shape[-1]) for k, v in self.features.items()}

    def __len__(self) -> int:
        return next(iter(self.features.values())).shape[0]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape[1:])}" for k, v in self.features.items())
        return f"MultimodalDataset({self.name!r}, n={len(self)}, {shapes}, task={self.task!r})"

    # ------------------------------------------------------------------ batches
    def get_batch(self, indices: Tensor | Sequence[int] | slice, validate: bool = False) -> MultimodalBatch:
        """The samples at ``indices`` as one :class:`MultimodalBatch`."""
        if not isinstance(indices, slice):
            indices = torch.as_tensor(indices, dtype=torch.long)
        return MultimodalBatch(
            inputs={k: v[indices] for k, v in self.features.items()},
            present=None if self.present is None else self.present[indices],
            frame_masks={k: v[indices] for k, v in self.frame_masks.items()},
            targets=self.targets[indices],
            validate=validate,
        )

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[MultimodalBatch]:
        """Iterate over batches (a fixed order unless ``shuffle``; shuffling uses ``generator``)."""
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, found {batch_size}")
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            if drop_last and len(idx) < batch_size:
                break
            yield self.get_batch(idx)

    def full_batch(self) -> MultimodalBatch:
        return self.get_batch(slice(None))

    def subset(self, indices: Sequence[int] | Tensor, name: str | None = None) -> MultimodalDataset:
        """A new dataset holding only ``indices``."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return MultimodalDataset(
            {k: v[idx] for k, v in self.features.items()}, self.targets[idx], self.task, self.num_outputs,
            {k: v[idx] for k, v in self.frame_masks.items()},
            None if self.present is None else self.present[idx],
            [self.ids[i] for i in idx.tolist()], name or self.name, self.meta,
        )

    # torch DataLoader compatibility: items are indices, `collate` builds the batch
    def __getitem__(self, i: int) -> int:
        return int(i)

    def collate(self, indices: Sequence[int]) -> MultimodalBatch:
        return self.get_batch(list(indices))
