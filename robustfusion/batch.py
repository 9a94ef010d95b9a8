"""`MultimodalBatch`: named modality tensors plus the masks that say what is missing.

"Missing" is always a mask, never a magic value inside the features (CONTRIBUTING.md, conventions):

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

    Feature dtypes are kept (a registered model casts floating features to its own dtype on
    entry). A sample whose frame mask of a modality is all
    ``False`` (no observed frame, e.g. every frame dropped) has that modality marked absent in
    ``present``, so every model applies its missing-modality rule to it.

    Validation happens here and in :meth:`replace` when it is given new ``inputs``; writing into
    a batch's tensors in place after construction is the caller's responsibility (re-validate
    with ``batch.replace(inputs=dict(batch.inputs))``).

    Raises:
        ValueError: naming the modality, the expected and the found shape or value, for an
            empty ``inputs``, mismatched batch sizes, ranks other than 2 or 3, a sequence of
            length 0, a feature size of 0, non-floating features, NaN/inf in
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
        self._absent_without_frames()

    def _absent_without_frames(self) -> None:
        """Mark a modality absent for the samples whose frame mask has no observed frame."""
        present = self.present
        for name, fm in self.frame_masks.items():
            if name not in self.inputs or fm.dim() != 2 or fm.shape[0] != present.shape[0] or fm.shape[1] == 0:
                continue  # malformed masks are reported by _check
            seen = fm.any(dim=1).to(present.device)
            if not bool(seen.all()):
                if present is self.present:
                    present = present.clone()
                i = self.modalities.index(name)
                present[:, i] &= seen
        if present is not self.present:
            object.__setattr__(self, "present", present)

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

    def _observed(self, name: str, x: Tensor) -> Tensor:
        """Bool tensor broadcastable to ``x``: entries of present samples and observed frames."""
        seen = self.present_mask(name).to(x.device)
        fm = self.frame_masks.get(name)
        if x.dim() >= 3 and fm is not None and fm.shape == x.shape[:2]:
            seen = seen[:, None] & fm.to(x.device)
        return seen.reshape(*seen.shape, *([1] * (x.dim() - seen.dim())))

    def _check(self, observed_only: bool = False) -> None:
        b = self.batch_size
        for name, x in self.inputs.items():
            if x.shape[0] != b:
                raise ValueError(
                    f"modality {name!r}: expected batch size {b} (from {self.modalities[0]!r}), "
                    f"found shape {tuple(x.shape)}"
                )
            if not x.dtype.is_floating_point:
                raise ValueError(f"modality {name!r}: expected floating-point features, found dtype {x.dtype}")
            if x.dim() >= 3 and x.shape[1] == 0:
                raise ValueError(f"modality {name!r}: expected at least one frame (T >= 1), found shape "
                                 f"{tuple(x.shape)}; mark a sample without frames absent in `present` instead")
            feat = x.shape[2] if x.dim() == 5 else x.shape[-1]
            if feat == 0:
                raise ValueError(f"modality {name!r}: expected a feature size >= 1, found shape {tuple(x.shape)}")
            finite = torch.isfinite(x)
            if observed_only:  # junk where nothing is observed is allowed (it is never read)
                finite = finite | ~self._observed(name, x)
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
        """A new batch with some fields replaced. New ``inputs`` are validated (shapes, dtype,
        and finiteness wherever a value is observed: NaN or inf in a present modality's observed
        frames is refused; junk in absent modalities or unobserved frames is allowed, as it is
        never read); unchanged features are not checked again."""
        kw = {"inputs": self.inputs, "present": self.present, "frame_masks": self.frame_masks,
              "targets": self.targets, "validate": False}
        kw.update(changes)
        out = MultimodalBatch(**kw)
        if "inputs" in changes and not changes.get("validate", False):
            out._check(observed_only=True)
        return out

    def with_present(self, present: Tensor | Mapping[str, Tensor]) -> MultimodalBatch:
        """The same batch with another presence mask."""
        return self.replace(present=present)

    def with_frame_masks(self, frame_masks: Mapping[str, Tensor]) -> MultimodalBatch:
        """The same batch with other frame masks (names not given keep theirs)."""
        merged = dict(self.frame_masks)
        merged.update(frame_masks)
        return self.replace(frame_masks=merged)

    def select_modalities(self, names: Sequence[str]) -> MultimodalBatch:
        """The same samples with only the modalities ``names`` (in that order), e.g. for a
        model trained on a subset of this batch's modalities (models refuse unknown ones)."""
        unknown = [n for n in names if n not in self.inputs]
        if unknown:
            raise ValueError(f"select_modalities: unknown modalities {unknown}; this batch has {list(self.modalities)}")
        return MultimodalBatch(
            inputs={n: self.inputs[n] for n in names},
            present=self.present[:, [self.index(n) for n in names]],
            frame_masks={n: v for n, v in self.frame_masks.items() if n in names},
            targets=self.targets,
            validate=False,
        )

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
