"""`MultimodalDataset`: in-memory named modality arrays that yield `MultimodalBatch` objects.

Every loader (MulT pickles, MMSA pickles, MOSI utterance npz, the synthetic benchmark) returns
these, so the runner, the evaluator and user code share one way to iterate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from robustfusion.batch import MultimodalBatch
from robustfusion.tasks import TASKS

__all__ = ["MultimodalDataset"]


def _tensor(a, dtype=None) -> Tensor:
    t = a if isinstance(a, Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    return t.to(dtype) if dtype is not None else t


def _checked_features(features: Mapping[str, object]) -> dict[str, Tensor]:
    """The modality arrays as float32 tensors, checked for shape, dtype and finiteness."""
    raw = {k: _tensor(v) for k, v in features.items()}
    if not raw:
        raise ValueError("MultimodalDataset: expected at least one modality, found none")
    n = next(iter(raw.values())).shape[0] if next(iter(raw.values())).dim() > 0 else -1
    for k, v in raw.items():
        if v.dim() not in (2, 3):
            raise ValueError(f"modality {k!r}: expected [N, D] or [N, T, D], found shape {tuple(v.shape)}")
        if v.shape[0] != n:
            raise ValueError(f"modality {k!r}: expected {n} samples, found shape {tuple(v.shape)}")
        if v.dtype == torch.bool or v.is_complex():
            raise ValueError(f"modality {k!r}: expected real-valued features, found dtype {v.dtype}")
        if v.dim() == 3 and v.shape[1] == 0:
            raise ValueError(f"modality {k!r}: expected sequences of at least one frame (T >= 1), found shape "
                             f"{tuple(v.shape)}")
        if v.shape[-1] == 0:
            raise ValueError(f"modality {k!r}: expected a feature size >= 1, found shape {tuple(v.shape)}")
    out = {k: v.to(torch.float32) for k, v in raw.items()}
    for k, v in out.items():
        finite = torch.isfinite(v)
        if not bool(finite.all()):
            raise ValueError(f"modality {k!r}: expected finite features, found {int((~finite).sum())} "
                             "NaN/inf values; clean them with robustfusion.replace_nonfinite (or the "
                             "loader's nonfinite option)")
    return out


def _checked_targets(targets, task: str, n: int) -> Tensor:
    """The targets as long class indices (classification) or float32 values, checked against ``n``."""
    raw_targets = _tensor(targets)
    if raw_targets.dim() == 0 or raw_targets.shape[0] != n:
        raise ValueError(f"targets: expected {n} samples, found shape {tuple(raw_targets.shape)}")
    if task == "classification":
        if raw_targets.dim() != 1:
            raise ValueError(f"classification targets: expected class indices of shape ({n},), "
                             f"found {tuple(raw_targets.shape)}")
        if raw_targets.dtype.is_floating_point and not bool((raw_targets == raw_targets.round()).all()):
            raise ValueError("classification targets: expected integer class indices, found "
                             "non-integer values")
        out = raw_targets.to(torch.long)
        if n > 0 and int(out.min()) < 0:
            raise ValueError(f"classification targets: expected classes >= 0, found {int(out.min())}")
        return out
    out = raw_targets.to(torch.float32)
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"{task} targets: expected finite values, found NaN or inf")
    return out


def _checked_num_outputs(num_outputs: int | None, targets: Tensor, task: str, n: int) -> int:
    """The prediction size: ``num_outputs`` or one inferred from the targets, checked against them."""
    if num_outputs is None:
        if task == "classification":
            num_outputs = int(targets.max()) + 1
        elif task == "multilabel" or (targets.dim() == 2):
            num_outputs = int(targets.shape[1]) if targets.dim() == 2 else 1
        else:
            num_outputs = 1
    num_outputs = int(num_outputs)
    if task == "classification" and n > 0 and int(targets.max()) >= num_outputs:
        raise ValueError(f"classification targets: expected classes in [0, {num_outputs - 1}], "
                         f"found {int(targets.max())}")
    return num_outputs


def _checked_frame_masks(frame_masks: Mapping[str, object] | None,
                         features: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The frame masks as bool tensors, each matching its sequence modality's ``[N, T]``."""
    out = {}
    for k, v in (frame_masks or {}).items():
        if k not in features:
            raise ValueError(f"frame mask given for unknown modality {k!r}; expected one of {list(features)}")
        x = features[k]
        if x.dim() != 3:
            raise ValueError(f"frame mask of {k!r}: modality is not a sequence (shape {tuple(x.shape)})")
        fm = _tensor(v)
        if tuple(fm.shape) != tuple(x.shape[:2]):
            raise ValueError(f"frame mask of {k!r}: expected shape {tuple(x.shape[:2])}, found {tuple(fm.shape)}")
        out[k] = fm.bool()
    return out


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
        groups: optional group of each sample (``N`` strings: the video, dialogue or speaker that
            samples share and splits must not). Confidence intervals resample whole groups;
            default: each sample its own group.
        name: dataset name used in result rows.
        meta: free-form extra information (label names, provenance).
    """

    def __init__(self, features: Mapping[str, object], targets, task: str = "regression",
                 num_outputs: int | None = None, frame_masks: Mapping[str, object] | None = None,
                 present=None, ids: Sequence[str] | None = None, name: str = "dataset",
                 meta: Mapping[str, object] | None = None, groups: Sequence[str] | None = None) -> None:
        if task not in TASKS:
            raise ValueError(f"task: expected one of {TASKS}, found {task!r}")
        self.features = _checked_features(features)
        n = next(iter(self.features.values())).shape[0]
        self.targets = _checked_targets(targets, task, n)
        self.task = task
        self.num_outputs = _checked_num_outputs(num_outputs, self.targets, task, n)
        self.frame_masks = _checked_frame_masks(frame_masks, self.features)
        self.present = None
        if present is not None:
            pm = _tensor(present)
            if tuple(pm.shape) != (n, len(self.features)):
                raise ValueError(f"present: expected shape ({n}, {len(self.features)}) for modalities "
                                 f"{list(self.features)}, found {tuple(pm.shape)}")
            self.present = pm.bool()
        self.ids = list(ids) if ids is not None else [str(i) for i in range(n)]
        if len(self.ids) != n:
            raise ValueError(f"ids: expected {n} identifiers, found {len(self.ids)}")
        self.groups = list(groups) if groups is not None else list(self.ids)
        if len(self.groups) != n:
            raise ValueError(f"groups: expected {n} group ids (one per sample), found {len(self.groups)}")
        self.name = name
        self.meta = dict(meta or {})

    # ------------------------------------------------------------------ description
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.features)

    @property
    def modality_dims(self) -> dict[str, int]:
        return {k: int(v.shape[-1]) for k, v in self.features.items()}

    @property
    def label_names(self) -> list[str] | None:
        """Class / label names (``meta["label_names"]``) when the loader gives them, else ``None``."""
        names = self.meta.get("label_names")
        return None if names is None else [str(n) for n in names]

    @property
    def oracle(self) -> Any:
        """The reference predictor of the data's generating process (``predict(batch) -> [B, K]``;
        the synthetic benchmark's Bayes-optimal :class:`~robustfusion.data.synthetic.SyntheticOracle`,
        kept in ``meta["oracle"]``), or ``None`` for real data."""
        return self.meta.get("oracle")

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
            [self.groups[i] for i in idx.tolist()],
        )

    def select_modalities(self, modalities: Iterable[str]) -> MultimodalDataset:
        """The same samples with only ``modalities`` (in this dataset's order).

        Raises:
            ValueError: a name that is not a modality of this dataset, or an empty selection.
        """
        wanted = set(modalities)
        unknown = sorted(wanted - set(self.modalities))
        if unknown or not wanted:
            raise ValueError(f"select_modalities: expected a non-empty subset of {list(self.modalities)}, "
                             f"found {sorted(wanted)}")
        mods = [m for m in self.modalities if m in wanted]
        cols = [self.modalities.index(m) for m in mods]
        return MultimodalDataset({m: self.features[m] for m in mods}, self.targets, self.task, self.num_outputs,
                                 {m: v for m, v in self.frame_masks.items() if m in wanted},
                                 None if self.present is None else self.present[:, cols], self.ids, self.name,
                                 self.meta, self.groups)

    # torch DataLoader compatibility: items are indices, `collate` builds the batch
    def __getitem__(self, i: int) -> int:
        return int(i)

    def collate(self, indices: Sequence[int]) -> MultimodalBatch:
        return self.get_batch(list(indices))
