"""Load-time checks of a dataset's files: what a loader must refuse before a model sees the data.

Each check raises a one-line ``ValueError`` (``FileNotFoundError`` / ``NotADirectoryError`` /
``IsADirectoryError`` for paths) naming the file, the key and the count, so a user learns what to
fix in which file:

* :func:`check_unique_ids`: an id (``segment_id``, ``utterance_id``) twice in a file;
* :func:`check_disjoint_groups`: a group (video, dialogue, speaker) or a sample id in two splits,
  the leak a missing-modality evaluation must avoid; a loader accepts shared groups only when
  the user says so (``data.options.allow_shared_groups=true``, :data:`ALLOW_SHARED_GROUPS`);
* :func:`check_nonempty`: a split with no sample;
* :func:`decode_text_array`: transcripts or ids stored as bytes are decoded as UTF-8 (never turned
  into the string ``"b'...'"``), undecodable ones refused;
* :func:`require_directory` / :func:`require_file`: a file where a folder is expected, or the reverse;
* :func:`read_npz`: an ``.npz`` that is not a zip archive, or holds pickled objects, is refused
  without numpy's advice to load it with ``allow_pickle`` (a pickle can run code).

Loaders call them in this order: paths, :func:`read_npz`, per-file checks (ids, text, rows), then
the cross-split checks on the assembled splits.
"""

from __future__ import annotations

import itertools
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "ALLOW_SHARED_GROUPS",
    "check_disjoint_groups",
    "check_nonempty",
    "check_unique_ids",
    "decode_text_array",
    "read_npz",
    "read_table_npz",
    "require_directory",
    "require_file",
]

#: The loader option (``data.options.<this>``) that accepts groups shared between splits.
ALLOW_SHARED_GROUPS = "allow_shared_groups"


def _examples(values: Sequence[object], k: int = 3) -> str:
    return ", ".join(repr(v) for v in list(values)[:k]) + (", ..." if len(values) > k else "")


def require_directory(path: str | Path, what: str) -> Path:
    """``path`` must be an existing directory; a file gets a message naming its folder (the usual
    slip: ``train.npz`` given where its folder is expected)."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.exists():
        raise NotADirectoryError(f"{path}: expected a directory holding {what}, found a file; pass its folder "
                                 f"{path.parent} instead")
    raise FileNotFoundError(f"{path}: expected a directory holding {what}, found no such directory")


def require_file(path: str | Path, what: str, hint: str = "") -> Path:
    """``path`` must be an existing file; a directory gets a message listing a few of its entries
    (and ``hint``, e.g. the dataset that reads such a folder)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        entries = sorted(p.name for p in path.iterdir())
        raise IsADirectoryError(f"{path}: expected {what}, found a directory (holding "
                                f"{_examples(entries, 4) or 'nothing'}){'; ' + hint if hint else ''}")
    raise FileNotFoundError(f"{path}: expected {what}, found no such file")


def read_npz(path: str | Path, what: str = "an .npz archive") -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, read with ``allow_pickle=False``.

    A file that is not a zip archive (every ``.npz`` is one), a truncated archive, or one holding
    object arrays (pickled) is a ``ValueError`` naming the file; object arrays are never loaded.
    """
    path = require_file(path, what)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: expected {what} (a zip archive written by numpy.savez), found a file that is not "
                         f"a zip archive ({path.stat().st_size} bytes): it is truncated or in another format")
    data: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                try:
                    data[key] = z[key]
                except ValueError as err:
                    if "pickle" not in str(err):
                        raise
                    raise ValueError(f"{path}: key {key!r}: expected a plain array (numbers or fixed-width "
                                     f"strings), found Python objects stored with pickle, which are not loaded "
                                     f"(a pickle can run code); save it as numpy strings, e.g. "
                                     f"np.asarray(values, dtype=str)") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(f"{path}: expected {what}, but it could not be read: {err}") from None
    return data


def read_table_npz(path: str | Path, what: str, keys: Sequence[str], rows_of: str) -> dict[str, np.ndarray]:
    """:func:`read_npz` of ``path`` (``what`` names the layout in messages), which must hold every
    one of ``keys``, each with as many rows as ``keys``' ``rows_of``."""
    data = read_npz(path, f"{what} (keys {list(keys)})")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{path}: expected keys {list(keys)}, missing {missing} (found {sorted(data)})")
    n = data[rows_of].shape[0]
    for k in keys:
        if data[k].shape[:1] != (n,):
            raise ValueError(f"{path}: {k!r}: expected {n} rows (as {rows_of!r}), found shape {data[k].shape}")
    return data


def decode_text_array(values: object, path: str | Path, key: str, *, allow_numbers: bool = False) -> list[str]:
    """``values`` (an ``[N]`` array) as ``N`` Python strings.

    Unicode strings are kept; bytes (numpy ``S`` arrays, or bytes inside an object array) are
    decoded as UTF-8; numbers are written with ``str`` when ``allow_numbers`` (ids), else refused.
    Bytes that are not UTF-8 are refused with their count and the first row.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{path}: {key!r}: expected a 1-d array of strings, found shape {arr.shape}")
    if arr.dtype.kind == "U":
        return arr.tolist()
    if arr.dtype.kind in "biuf" and allow_numbers:
        return [str(v) for v in arr.tolist()]
    if arr.dtype.kind not in "SO":
        raise ValueError(f"{path}: {key!r}: expected strings, found dtype {arr.dtype}")
    out: list[str] = []
    bad: list[int] = []
    for i, v in enumerate(arr.tolist()):
        if isinstance(v, (bytes, bytearray)):
            try:
                v = bytes(v).decode("utf-8")
            except UnicodeDecodeError:
                bad.append(i)
                v = ""
        elif isinstance(v, np.str_):
            v = str(v)
        elif not isinstance(v, str):
            if not (allow_numbers and isinstance(v, (int, float, np.integer, np.floating))):
                raise ValueError(f"{path}: {key!r}: expected strings, found {type(v).__name__} at row {i} ({v!r})")
            v = str(v)
        out.append(v)
    if bad:
        first = arr[bad[0]]
        raise ValueError(f"{path}: {key!r}: {len(bad)} of {len(out)} entries are bytes that are not valid UTF-8 "
                         f"(first at row {bad[0]}: {bytes(first)[:24]!r}); store the text as unicode strings "
                         f"(e.g. decoded with its real encoding)")
    return out


def check_unique_ids(path: str | Path, key: str, ids: Sequence[object]) -> None:
    """Every id in ``ids`` (the ``key`` column of ``path``) once."""
    counts = Counter(ids)
    dup = [v for v, c in counts.items() if c > 1]
    if dup:
        extra = sum(counts[v] - 1 for v in dup)
        raise ValueError(f"{path}: {key!r}: {len(dup)} ids appear more than once ({extra} repeated rows; e.g. "
                         f"{_examples(dup)}); expected each sample once")


def check_nonempty(path: str | Path, split: str, n: int) -> None:
    """Split ``split`` (read from ``path``) must hold at least one sample."""
    if n < 1:
        raise ValueError(f"{path}: split {split!r} has 0 samples; expected at least 1 (an empty file, or a "
                         "filter that kept nothing)")


def check_disjoint_groups(groups: Mapping[str, Sequence[object]], sources: Mapping[str, str | Path], key: str,
                          allow: bool = False, option: str | None = ALLOW_SHARED_GROUPS) -> None:
    """No value of ``key`` (a video, dialogue or speaker id; or a sample id) in two splits.

    Args:
        groups: ``{split: the key's value of every sample}``.
        sources: ``{split: the file it was read from}`` (named in the message).
        key: the column's name (``video_id``, ``dialogue_id``, ``speaker``, ``segment_id``).
        allow: accept shared values (the user's explicit ``option=true``).
        option: the loader option that sets ``allow`` (named in the message); ``None``: the check
            cannot be switched off (sample ids).
    """
    if allow:
        return
    sets = {s: set(v) for s, v in groups.items()}
    for a, b in itertools.combinations(sets, 2):
        shared = sorted(sets[a] & sets[b], key=str)
        if shared:
            where = (f"{sources[a]} ({a!r})" if str(sources[a]) == str(sources[b])
                     else f"{sources[a]} ({a!r}) and {sources[b]} ({b!r})")
            fix = (f"; if that is intended, pass data.options.{option}=true" if option else "")
            raise ValueError(f"{where}: {key!r}: {len(shared)} values are in both {a!r} and {b!r} (e.g. "
                             f"{_examples(shared)}); expected disjoint splits (a shared {key} leaks between "
                             f"training and evaluation){fix}")
