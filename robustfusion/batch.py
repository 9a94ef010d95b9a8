"""`MultimodalBatch`: named modality tensors plus the masks that say what is missing.

"Missing" is always a mask, never a magic value inside the features (DESIGN.md, data model):

* ``present`` ``[B, M]`` bool: sample ``b`` has modality ``modalities[m]``;
* ``frame_masks[name]`` ``[B, T]`` bool (sequences only, optional): frame ``t`` is observed
  (``False`` for padding or for a frame dropped at test time);
* ``targets`` (optional): ``[B]`` / ``[B, K]`` regression or multilabel targets, or ``[B]``
  integer class indices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["MultimodalBatch", "replace_nonfinite"]


def replace_nonfinite(features: Tensor, value: float = 0.0) -> Tensor:
    """Return a copy of ``features`` with NaN, +inf and -inf replaced by ``value``.

    CMU-MOSEI's COVAREP audio features contain ``-inf`` (log of zero energy). Loaders that opt
    in (``nonfinite="zero"``) call this before building a batch; everything else refuses
    non-finite features with a ``ValueError`` so a silent NaN never reaches a model.
    """
    return torch.nan_to_num(features, nan=value, posinf=value, neginf=value)


def _as_bool(t: Tensor, what: str) -> Tensor:
    if t.dtype == torch.bool:
        return t
    if t.dtype.is_floating_point or t.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        uniq = torch.unique(t)
        if not bool(((uniq == 0) | (uniq == 1)).all()):
            raise ValueError(f"{what}: expected a boolean mask (or 0/1 values), found values {uniq[:8].tolist()}")
        return t.bool()
    raise ValueError(f"{what}: expected a boolean mask, found dtype {t.dtype}")


@dataclass(frozen=True, eq=False)
class MultimodalBatch:
    """A batch of named modalities with a presence mask, optional frame masks and targets.

    Args:
        inputs: ``{name: Tensor}``; each ``[B, D]`` (utterance vector) or ``[B, T, D]``
            (sequence). Insertion order fixes the modality order of ``present``.
        present: ``None`` (every modality present), a ``[B, M]`` bool tensor in the order of
            ``inputs``, or ``{name: [B] bool}`` (names not given default to present).
        frame_masks: optional ``{name: [B, T] bool}`` for sequence modalities; ``True`` =
            observed frame.
        targets: optional tensor with leading dimension ``B``.
        validate: check shapes, masks and finiteness (default ``True``).

    Raises:
        ValueError: naming the modality, the expected and the found shape or value, for an
            empty ``inputs``, mismatched batch sizes, ranks other than 2 or 3, NaN/inf in
            features, a presence mask whose shape or names do not match ``inputs``, or a
            frame mask that does not match its sequence.
    """

    inputs: Mapping[str, Tensor]
    present: Tensor | Mapping[str, Tensor] | None = None
    frame_masks: Mapping[str, Tensor] | None = None
    targets: Tensor | None = None
    validate: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        inputs = dict(self.inputs)
        if not inputs:
            raise ValueError("MultimodalBatch: expected at least one modality in `inputs`, found none")
        for name, x in inputs.items():
            if not isinstance(x, Tensor):
                raise ValueError(f"modality {name!r}: expected a torch.Tensor, found {type(x).__name__}")  # noqa: TRY004
            # ranks first: the batch size below is read from the first modality
            if x.dim() not in (2, 3, 5):
                raise ValueError(
                    f"modality {name!r}: expected [B, D], [B, T, D] or raw frames [B, T, C, H, W], "
                    f"found shape {tuple(x.shape)}"
                )
        names = tuple(inputs)
        first = next(iter(inputs.values()))
        b = first.shape[0]
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "present", self._normalise_present(self.present, names, b, first.device))
        fm = {} if self.frame_masks is None else dict(self.frame_masks)
        fm = {k: _as_bool(torch.as_tensor(v), f"frame mask of {k!r}") for k, v in fm.items()}
        object.__setattr__(self, "frame_masks", fm)
        if self.validate:
            self._check()

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _normalise_present(present, names: tuple[str, ...], b: int, device) -> Tensor:
        m = len(names)
        if present is None:
            return torch.ones(b, m, dtype=torch.bool, device=device)
        if isinstance(present, Mapping):
            unknown = sorted(set(present) - set(names))
            if unknown:
                raise ValueError(
                    f"presence mask names unknown modalities {unknown}; expected a subset of {list(names)}"
                )
            cols = []
            for n in names:
                if n in present:
                    col = _as_bool(torch.as_tensor(present[n]), f"presence mask of {n!r}")
                    if col.shape != (b,):
                        raise ValueError(
                            f"presence mask of {n!r}: expected shape ({b},), found {tuple(col.shape)}"
                        )
                    cols.append(col.to(device))
                else:
                    cols.append(torch.ones(b, dtype=torch.bool, device=device))
            return torch.stack(cols, dim=1)
        present = _as_bool(torch.as_tensor(present), "presence mask")
        if present.shape != (b, m):
            raise ValueError(
                f"presence mask: expected shape [B, M] = ({b}, {m}) for modalities {list(names)}, "
                f"found {tuple(present.shape)}"
            )
        return present.to(device)

    def _check(self) -> None:
        b = self.batch_size
        for name, x in self.inputs.items():
            if x.shape[0] != b:
                raise ValueError(
                    f"modality {name!r}: expected batch size {b} (from {self.modalities[0]!r}), "
                    f"found shape {tuple(x.shape)}"
                )
            if not x.dtype.is_floating_point:
                raise ValueError(f"modality {name!r}: expected floating-point features, found dtype {x.dtype}")
            finite = torch.isfinite(x)
            if not bool(finite.all()):
                bad = (~finite).nonzero()[0].tolist()
                raise ValueError(
                    f"modality {name!r}: expected finite features, found {x[tuple(bad)].item()} at index "
                    f"{bad} ({int((~finite).sum())} non-finite values); clean them with "
                    "robustfusion.replace_nonfinite or the loader's nonfinite option"
                )
        for name, fm in self.frame_masks.items():
            if name not in self.inputs:
                raise ValueError(f"frame mask given for unknown modality {name!r}; expected one of {list(self.modalities)}")
            x = self.inputs[name]
            if x.dim() < 3:
                raise ValueError(
                    f"frame mask of {name!r}: modality is not a sequence (shape {tuple(x.shape)}); "
                    "frame masks need [B, T, D] or [B, T, C, H, W] inputs"
                )
            if fm.shape != x.shape[:2]:
                raise ValueError(
                    f"frame mask of {name!r}: expected shape {tuple(x.shape[:2])}, found {tuple(fm.shape)}"
                )
        if self.targets is not None and (self.targets.dim() == 0 or self.targets.shape[0] != b):
            raise ValueError(
                f"targets: expected leading dimension {b}, found shape {tuple(self.targets.shape)}"
            )
        if self.targets is not None and self.targets.dtype.is_floating_point and not bool(torch.isfinite(self.targets).all()):
            raise ValueError("targets: expected finite values, found NaN or inf")

    # ------------------------------------------------------------------ accessors
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.inputs)

    @property
    def batch_size(self) -> int:
        return next(iter(self.inputs.values())).shape[0]

    @property
    def device(self) -> torch.device:
        return next(iter(self.inputs.values())).device

    def index(self, name: str) -> int:
        """Column of modality ``name`` in ``present``."""
        try:
            return self.modalities.index(name)
        except ValueError:
            raise KeyError(f"unknown modality {name!r}; this batch has {list(self.modalities)}") from None

    def present_mask(self, name: str) -> Tensor:
        """``[B]`` bool: which samples have modality ``name``."""
        return self.present[:, self.index(name)]

    def frame_mask(self, name: str) -> Tensor | None:
        """``[B, T]`` bool of observed frames of ``name`` (``None``: all observed or not a sequence)."""
        return self.frame_masks.get(name)

    def all_present(self) -> Tensor:
        """``[B]`` bool: the sample has every modality."""
        return self.present.all(dim=1)

    # ------------------------------------------------------------------ derived batches
    def replace(self, **changes) -> MultimodalBatch:
        """A new batch with some fields replaced (no re-validation of unchanged features)."""
        kw = {"inputs": self.inputs, "present": self.present, "frame_masks": self.frame_masks,
              "targets": self.targets, "validate": False}
        kw.update(changes)
        return MultimodalBatch(**kw)

    def with_present(self, present: Tensor | Mapping[str, Tensor]) -> MultimodalBatch:
        """The same batch with another presence mask."""
        return self.replace(present=present)

    def with_frame_masks(self, frame_masks: Mapping[str, Tensor]) -> MultimodalBatch:
        """The same batch with other frame masks (names not given keep theirs)."""
        merged = dict(self.frame_masks)
        merged.update(frame_masks)
        return self.replace(frame_masks=merged)

    def to(self, device: torch.device | str) -> MultimodalBatch:
        return MultimodalBatch(
            inputs={k: v.to(device) for k, v in self.inputs.items()},
            present=self.present.to(device),
            frame_masks={k: v.to(device) for k, v in self.frame_masks.items()},
            targets=None if self.targets is None else self.targets.to(device),
            validate=False,
        )

    def select(self, idx: Tensor | Sequence[int] | slice) -> MultimodalBatch:
        """The sub-batch of the given sample indices."""
        return MultimodalBatch(
            inputs={k: v[idx] for k, v in self.inputs.items()},
            present=self.present[idx],
            frame_masks={k: v[idx] for k, v in self.frame_masks.items()},
            targets=None if self.targets is None else self.targets[idx],
            validate=False,
        )

    def __len__(self) -> int:
        return self.batch_size
