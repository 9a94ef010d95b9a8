"""The restricted unpickler: plain containers and numpy only, clear errors otherwise."""

import collections
import os
import pickle

import numpy as np
import pytest

from robustfusion.data.safe_pickle import UnsafePickleError, safe_load_pickle, safe_loads_pickle


def _payload():
    return {
        "train": {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "ids": np.array(["a", "bb"], dtype=object),
                  "u": np.array(["x", "yz"]), "i": np.arange(3, dtype=np.int64), "s": np.float32(1.5),
                  "nested": [1, (2.0, "three"), {4}, frozenset({5})], "b": b"raw", "none": None},
        "od": collections.OrderedDict(a=1),
    }


def _assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all()
    else:
        assert a == b


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_roundtrip_containers_and_numpy(tmp_path, protocol):
    obj = _payload()
    p = tmp_path / "ok.pkl"
    p.write_bytes(pickle.dumps(obj, protocol=protocol))
    _assert_same(safe_load_pickle(p), obj)


@pytest.mark.parametrize("old, new", [(b"numpy._core.multiarray", b"numpy.core.multiarray"),
                                      (b"numpy.core.multiarray", b"numpy._core.multiarray")])
def test_numpy_1x_and_2x_module_names(old, new):
    """Pickles written by numpy 1.x name numpy.core.*, numpy 2.x numpy._core.*: both load."""
    arr = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    data = pickle.dumps({"a": arr, "s": np.float64(2.5)}, protocol=2)  # GLOBAL opcodes are text
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray") if old.startswith(b"numpy._") else data
    data = data.replace(old, new)
    assert new in data
    out = safe_loads_pickle(data)
    np.testing.assert_array_equal(out["a"], arr)
    assert out["s"] == 2.5


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def test_refuses_code_execution_and_names_file_and_global(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps({"train": {"text": _Evil(str(marker))}}))
    with pytest.raises(UnsafePickleError) as exc:
        safe_load_pickle(p)
    msg = str(exc.value)
    assert str(p) in msg and "makedirs" in msg and ("os." in msg or "posix." in msg)
    assert not marker.exists()


class Custom:
    pass


def test_refuses_arbitrary_classes(tmp_path):
    p = tmp_path / "custom.pkl"
    p.write_bytes(pickle.dumps({"a": Custom()}))
    with pytest.raises(UnsafePickleError, match=r"Custom"):
        safe_load_pickle(p)
    # an unsafe global is also a ValueError (one except clause catches every bad-file error)
    assert issubclass(UnsafePickleError, ValueError)


def test_truncated_file(tmp_path):
    p = tmp_path / "trunc.pkl"
    p.write_bytes(pickle.dumps(_payload(), protocol=4)[:100])
    with pytest.raises(ValueError, match=r"trunc\.pkl.*truncated, corrupt or not a pickle"):
        safe_load_pickle(p)


def test_not_a_pickle(tmp_path):
    p = tmp_path / "notes.pkl"
    p.write_text("this is a text file, not a pickle\n")
    with pytest.raises(ValueError, match=r"notes\.pkl"):
        safe_load_pickle(p)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pkl"):
        safe_load_pickle(tmp_path / "nope.pkl")


def _sbs(b: bytes) -> bytes:
    return b"U" + bytes([len(b)]) + b  # SHORT_BINSTRING: a Python-2 str


def test_python2_pickle_of_numpy_array(tmp_path):
    """Python-2 pickles store array bytes as py2 str: decoded with the latin1 fallback."""
    raw = np.array([1.5, -2.0, 3.25], dtype="<f4").tobytes()  # contains bytes >= 0x80
    data = (b"\x80\x02}" + _sbs(b"x")
            + b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _sbs(b"b") + b"\x87R"
            + b"(K\x01K\x03\x85cnumpy\ndtype\n" + _sbs(b"f4") + b"K\x00K\x01\x87R"
            + b"(K\x03" + _sbs(b"<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
            + b"\x89" + _sbs(raw) + b"tbs.")
    out = safe_loads_pickle(data, "py2.pkl")
    np.testing.assert_array_equal(out["x"], np.array([1.5, -2.0, 3.25], dtype=np.float32))
    (tmp_path / "py2.pkl").write_bytes(data)  # streamed from a file: the retry rewinds it
    np.testing.assert_array_equal(safe_load_pickle(tmp_path / "py2.pkl")["x"], out["x"])
