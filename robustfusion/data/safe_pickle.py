"""A restricted unpickler for third-party dataset pickles (MulT, MMSA).

Users download ``mosi_data.pkl`` / ``aligned_50.pkl`` from file hosts; a plain ``pickle.load``
would run any code such a file names. :func:`safe_load_pickle` only rebuilds plain containers
(dict, list, tuple, set, ``collections.OrderedDict``), Python scalars and strings, and numpy
arrays, dtypes and scalars. Any other global is refused with an :class:`UnsafePickleError`
that names the file and the global.

numpy moved its private modules from ``numpy.core`` (1.x) to ``numpy._core`` (2.x); pickles
written by either major version name the reconstruct functions by the writer's module path,
so both spellings are accepted and mapped to the running numpy.
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path

import numpy as np

__all__ = ["ALLOWED_GLOBALS", "UnsafePickleError", "safe_load_pickle", "safe_loads_pickle"]

_NUMPY_INTERNAL = {
    ("multiarray", "_reconstruct"),
    ("multiarray", "scalar"),
    ("numeric", "_frombuffer"),
}

#: ``(module, name)`` pairs the unpickler resolves, besides the numpy-internal reconstruct
#: functions listed in ``_NUMPY_INTERNAL`` (under ``numpy.core.*`` or ``numpy._core.*``).
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "complex"): complex,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "str"): str,
    ("builtins", "bool"): bool,
    ("__builtin__", "set"): set,  # Python 2 pickles
    ("__builtin__", "frozenset"): frozenset,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): None,  # protocol-2 bytes: _codecs.encode(str, "latin1"); resolved below
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class UnsafePickleError(ValueError):
    """A pickle names a global outside the allow-list (it could run arbitrary code)."""


def _numpy_internal(module: str, name: str):
    """Resolve ``numpy.core.<sub>.<name>`` / ``numpy._core.<sub>.<name>`` for the running numpy."""
    for prefix in ("numpy.core.", "numpy._core."):
        if module.startswith(prefix):
            sub = module[len(prefix):]
            if (sub, name) in _NUMPY_INTERNAL:
                import importlib

                for root in ("numpy._core", "numpy.core"):
                    try:
                        mod = importlib.import_module(f"{root}.{sub}")
                    except ImportError:
                        continue
                    if hasattr(mod, name):
                        return getattr(mod, name)
    return None


def _latin1_encode(obj: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    if encoding.lower() not in ("latin1", "latin-1", "iso-8859-1"):
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r}: only latin1 is allowed")
    return obj.encode(encoding, errors)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str, **kwargs) -> None:
        super().__init__(file, **kwargs)
        self._source = source

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        fn = _numpy_internal(module, name)
        if fn is not None:
            return fn
        if module == "numpy" and isinstance(getattr(np, name, None), type) and issubclass(
            getattr(np, name), np.generic
        ):
            return getattr(np, name)  # numpy scalar types, e.g. numpy.float32
        raise UnsafePickleError(
            f"{self._source}: refusing to unpickle global '{module}.{name}'; robustfusion only loads "
            "plain containers (dict/list/tuple/set), strings, numbers and numpy arrays/dtypes/scalars "
            "from dataset pickles, because a pickle can run arbitrary code. Convert the file to plain "
            "numpy arrays if it is trusted."
        )


def _load(fobj, source: str):
    try:
        return _RestrictedUnpickler(fobj, source).load()
    except UnicodeDecodeError:
        # Python-2 pickles of numpy arrays need latin1 for their byte strings.
        fobj.seek(0)
        return _RestrictedUnpickler(fobj, source, encoding="latin1").load()


_READ_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                OverflowError, MemoryError, UnicodeDecodeError)


def _bad_file(source: str, err: Exception) -> ValueError:
    return ValueError(
        f"{source}: expected a complete pickle file (a dict of numpy arrays), but it could not be "
        f"read: {type(err).__name__}: {err} (the file is truncated, corrupt or not a pickle)"
    )


def safe_loads_pickle(data: bytes, source: str = "<bytes>"):
    """Unpickle ``data`` with the restricted allow-list (see module docstring)."""
    try:
        return _load(io.BytesIO(data), source)
    except UnsafePickleError:
        raise
    except _READ_ERRORS as err:
        raise _bad_file(source, err) from err


def safe_load_pickle(path: str | Path):
    """Load a dataset pickle from ``path`` refusing any global outside the allow-list.

    The file is streamed (not read into memory first), so peak memory is about the size of the
    arrays it holds.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
        IsADirectoryError: ``path`` is a folder (the message lists a few of its entries).
        UnsafePickleError: the pickle names a disallowed global (message names file and global).
        ValueError: the file is truncated, corrupt or not a pickle (message names the file).
    """
    from robustfusion.data.checks import require_file

    p = Path(path)
    hint = ("a folder of <split>.npz files is read by the utterance loaders (data.name=mosi_utterance)"
            if p.is_dir() and (p / "train.npz").is_file() else "pass the .pkl file inside it")
    require_file(p, "a dataset pickle file (.pkl)", hint)
    with open(p, "rb") as f:
        try:
            return _load(f, str(p))
        except UnsafePickleError:
            raise
        except _READ_ERRORS as err:
            raise _bad_file(str(p), err) from err
