"""Checks shared by the published-format loaders (MulT, MMSA, MOSI utterance npz).

Every error names the file, the split and what was expected, so a user who downloaded the
wrong file (or a truncated one) learns which.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "NONFINITE_OPTIONS",
    "SPLITS",
    "as_float_array",
    "as_str_ids",
    "check_feature_widths",
    "check_label_range",
    "handle_nonfinite",
    "length_mask",
    "require_keys",
    "require_splits",
    "zero_frame_mask",
]

SPLITS = ("train", "valid", "test")
NONFINITE_OPTIONS = ("zero", "error")


def _require(container: object, wanted: tuple[str, ...], where: str, what: str, kind: str) -> None:
    """``container`` must be a mapping holding every name in ``wanted`` (``ValueError`` otherwise)."""
    if not isinstance(container, Mapping):
        raise ValueError(f"{where}: expected {kind}, found {type(container).__name__}")  # noqa: TRY004
    missing = [k for k in wanted if k not in container]
    if missing:
        raise ValueError(f"{where}: expected {what} {list(wanted)}, missing {missing} "
                         f"(found keys {sorted(map(str, container))})")


def require_splits(data: object, source: str, splits: tuple[str, ...] = SPLITS) -> None:
    """``data`` must be a dict holding every split in ``splits``."""
    _require(data, splits, source, "splits", f"a dict with splits {list(splits)}")


def load_split_pickle(path, splits: tuple[str, ...] = SPLITS) -> tuple[str, dict]:
    """``(source, data)``: the pickle at ``path`` read safely
    (:func:`robustfusion.data.safe_pickle.safe_load_pickle`), which must hold every split in ``splits``."""
    from robustfusion.data.safe_pickle import safe_load_pickle

    data = safe_load_pickle(path)
    require_splits(data, str(path), splits)
    return str(path), data


def require_keys(split: object, keys: tuple[str, ...], source: str, split_name: str) -> None:
    """Split ``split_name`` of ``source`` must be a dict holding every key in ``keys``."""
    _require(split, keys, f"{source}: split {split_name!r}", "keys", "a dict of arrays")


def as_float_array(x: object, source: str, where: str, ndim: tuple[int, ...] = (3,)) -> np.ndarray:
    """``x`` as a float array of one of the ranks ``ndim`` (the error names file and field)."""
    try:
        a = np.asarray(x)
        if a.dtype == object:
            a = a.astype(np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: {where}: expected a numeric array, found {type(x).__name__} ({err})") from err
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise ValueError(f"{source}: {where}: expected a numeric array, found dtype {a.dtype}")
    if a.ndim not in ndim:
        expect = " or ".join(f"{d}-d" for d in ndim)
        raise ValueError(f"{source}: {where}: expected a {expect} array, found shape {a.shape}")
    return a.astype(np.float32, copy=False)


def handle_nonfinite(a: np.ndarray, mode: str, source: str, where: str) -> tuple[np.ndarray, int]:
    """Apply the ``nonfinite`` option: ``"zero"`` replaces NaN/±inf by 0, ``"error"`` raises.

    Returns the array and the number of replaced values.
    """
    if mode not in NONFINITE_OPTIONS:
        raise ValueError(f"nonfinite: expected one of {list(NONFINITE_OPTIONS)}, found {mode!r}")
    bad = ~np.isfinite(a)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return a, 0
    if mode == "error":
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{source}: {where}: expected finite features, found {n_bad} non-finite values "
            f"(first {a[idx]} at index {idx}); pass nonfinite='zero' to replace them by 0"
        )
    a = a.copy()
    a[bad] = 0.0
    return a, n_bad


def check_label_range(y: np.ndarray, low: float, high: float, source: str, where: str) -> None:
    if not np.isfinite(y).all():
        raise ValueError(f"{source}: {where}: expected finite labels, found NaN or inf")
    if y.size and (y.min() < low or y.max() > high):
        raise ValueError(
            f"{source}: {where}: expected labels in [{low}, {high}], found values in "
            f"[{float(y.min())}, {float(y.max())}]"
        )


def zero_frame_mask(x: np.ndarray) -> np.ndarray:
    """``[N, T]`` bool: frame ``t`` holds a non-zero value (zero frames are padding)."""
    return (x != 0).any(axis=-1)


def length_mask(lengths: object, t: int, n: int, source: str, where: str) -> np.ndarray:
    """``[N, T]`` bool mask ``t < length`` from an array of ``N`` integer lengths in ``[0, T]``."""
    lens = np.asarray(lengths).reshape(-1)
    if lens.shape[0] != n:
        raise ValueError(f"{source}: {where}: expected {n} lengths, found shape {np.asarray(lengths).shape}")
    if not np.issubdtype(lens.dtype, np.number):
        raise ValueError(f"{source}: {where}: expected integer lengths, found dtype {lens.dtype}")
    if lens.size and (lens.min() < 0 or lens.max() > t or not np.all(lens == np.round(lens))):
        raise ValueError(
            f"{source}: {where}: expected integer lengths in [0, {t}] (the padded sequence length), "
            f"found values in [{lens.min()}, {lens.max()}]"
        )
    return np.arange(t)[None, :] < lens.astype(np.int64)[:, None]


def as_str_ids(ids: object, n: int) -> list[str]:
    """``N`` string identifiers (bytes decoded; nested MulT id arrays joined with ``_``)."""
    if ids is None:
        return [str(i) for i in range(n)]
    arr = np.asarray(ids, dtype=object)
    out = []
    for i in range(n):
        v = arr[i] if arr.shape and arr.shape[0] == n else i
        if isinstance(v, np.ndarray):
            v = "_".join(x.decode() if isinstance(x, bytes) else str(x) for x in v.reshape(-1))
        elif isinstance(v, bytes):
            v = v.decode(errors="replace")
        out.append(str(v))
    return out


def check_feature_widths(data: dict) -> None:
    """Every split must have the training split's modalities and feature sizes; a mismatch names
    the file, the split, the modality, the expected and the found size."""
    ref_split = "train" if "train" in data else next(iter(data), None)
    if ref_split is None:
        return
    ref = data[ref_split].modality_dims
    for split, ds in data.items():
        dims = ds.modality_dims
        source = ds.meta.get("source", "?") if isinstance(ds.meta, dict) else "?"
        if set(dims) != set(ref):
            raise ValueError(f"{source}: split {split!r}: expected the modalities of {ref_split!r} {sorted(ref)}, "
                             f"found {sorted(dims)}")
        for m, d in ref.items():
            if dims[m] != d:
                raise ValueError(f"{source}: split {split!r}: modality {m!r}: expected feature size {d} "
                                 f"(as in split {ref_split!r}), found {dims[m]}")

