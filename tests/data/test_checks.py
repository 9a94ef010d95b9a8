"""Load-time data checks: ids repeated, groups shared between splits, empty splits, bytes text,
file-for-folder slips and non-zip npz files, each refused in one line naming file, key and count."""

from __future__ import annotations

import numpy as np
import pytest

from robustfusion.data import load_dataset, load_mosi_utterance
from robustfusion.data.checks import (
    check_disjoint_groups,
    check_nonempty,
    check_unique_ids,
    decode_text_array,
    read_npz,
    require_directory,
    require_file,
)
from robustfusion.data.mosi_utterance import carve_video_splits, min_carvable_videos


def _edit(path, **changes):
    d = dict(np.load(path))
    d.update(changes)
    np.savez(path, **d)
    return d


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------- the helpers, against brute force

def test_check_unique_ids_counts_ids_and_repeated_rows():
    ids = ["a", "b", "a", "c", "a", "b"]
    with pytest.raises(ValueError) as err:
        check_unique_ids("f.npz", "segment_id", ids)
    msg = _one_line(err)
    dup = {i for i in ids if ids.count(i) > 1}
    assert f"{len(dup)} ids appear more than once" in msg and f"({len(ids) - len(set(ids))} repeated rows" in msg
    assert "f.npz" in msg and "'segment_id'" in msg
    check_unique_ids("f.npz", "segment_id", ["a", "b"])


def test_check_disjoint_groups_names_both_files_the_count_and_the_option():
    groups = {"train": ["v1", "v2", "v3", "v1"], "valid": ["v3", "v1", "v9"], "test": ["v7"]}
    with pytest.raises(ValueError) as err:
        check_disjoint_groups(groups, {"train": "a/train.npz", "valid": "a/valid.npz", "test": "a/t.npz"}, "video_id")
    msg = _one_line(err)
    shared = set(groups["train"]) & set(groups["valid"])
    assert f"{len(shared)} values are in both 'train' and 'valid'" in msg
    assert "a/train.npz" in msg and "a/valid.npz" in msg and "data.options.allow_shared_groups=true" in msg
    check_disjoint_groups(groups, {}, "video_id", allow=True)
    with pytest.raises(ValueError) as err:
        check_disjoint_groups({"train": ["s1"], "test": ["s1"]}, {"train": "x", "test": "x"}, "segment_id", option=None)
    assert "allow_shared_groups" not in _one_line(err)


def test_check_nonempty():
    with pytest.raises(ValueError, match=r"v\.npz: split 'valid' has 0 samples"):
        check_nonempty("v.npz", "valid", 0)
    check_nonempty("v.npz", "valid", 1)


def test_decode_text_array_decodes_utf8_bytes_and_refuses_the_rest():
    words = ["café", "naïve", "plain"]
    assert decode_text_array(np.array([w.encode() for w in words]), "f", "transcript") == words
    assert decode_text_array(np.array(words), "f", "transcript") == words
    assert decode_text_array(np.array([b"x", "y", 3], dtype=object), "f", "id", allow_numbers=True) == ["x", "y", "3"]
    assert decode_text_array(np.array([7, 8]), "f", "segment_id", allow_numbers=True) == ["7", "8"]
    with pytest.raises(ValueError) as err:
        decode_text_array(np.array([b"\xff\xfe caf\xe9", b"ok", b"\xe9"]), "d/train.npz", "transcript")
    msg = _one_line(err)
    assert "d/train.npz" in msg and "'transcript'" in msg and "2 of 3 entries" in msg and "row 0" in msg
    with pytest.raises(ValueError, match="expected strings, found dtype float"):
        decode_text_array(np.array([1.0]), "f", "transcript")


def test_require_directory_and_require_file_name_the_slip(tmp_path):
    f = tmp_path / "train.npz"
    f.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match=rf"found a file; pass its folder {tmp_path}"):
        require_directory(f, "npz files")
    with pytest.raises(FileNotFoundError, match="found no such directory"):
        require_directory(tmp_path / "no", "npz files")
    with pytest.raises(IsADirectoryError, match=r"found a directory \(holding 'train.npz'\); hint"):
        require_file(tmp_path, "a .pkl file", "hint")
    assert require_file(f, "x") == f


def test_read_npz_refuses_a_non_zip_file_without_pickle_advice(tmp_path):
    p = tmp_path / "train.npz"
    p.write_bytes(b"\x80\x04 not a zip at all")
    with pytest.raises(ValueError) as err:
        read_npz(p)
    msg = _one_line(err)
    assert "not a zip archive" in msg and "allow_pickle" not in msg
    np.savez(p, a=np.array([object()], dtype=object))
    with pytest.raises(ValueError) as err:
        read_npz(p)
    msg = _one_line(err)
    assert "'a'" in msg and "not loaded" in msg and "allow_pickle" not in msg


# ---------------------------------------------------------------- the MOSI utterance loader

def test_duplicate_segment_ids_are_refused(tmp_path, rng, build):
    p = build.mosi_npz(tmp_path / "train.npz", rng, n_videos=10)
    segs = np.load(p)["segment_id"].copy()
    segs[5:8] = segs[0]
    _edit(p, segment_id=segs)
    with pytest.raises(ValueError) as err:
        load_mosi_utterance(tmp_path)
    assert "train.npz: 'segment_id': 1 ids appear more than once (3 repeated rows" in _one_line(err)


def test_a_valid_file_sharing_videos_with_train_is_refused_unless_allowed(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng, n_videos=10)
    build.mosi_npz(tmp_path / "valid.npz", rng, n_videos=3, video_prefix="v", seg_start=50)  # v000-v002 again
    with pytest.raises(ValueError) as err:
        load_mosi_utterance(tmp_path)
    msg = _one_line(err)
    assert "'video_id': 3 values are in both 'train' and 'valid'" in msg and "allow_shared_groups=true" in msg
    data = load_dataset("mosi_utterance", tmp_path, allow_shared_groups=True)
    assert set(data["valid"].meta["video_id"]) <= set(data["train"].meta["video_id"]) | set(
        data["test"].meta["video_id"])


def test_a_segment_in_two_files_is_refused_even_when_groups_may_be_shared(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng, n_videos=10)
    build.mosi_npz(tmp_path / "valid.npz", rng, n_videos=2)
    with pytest.raises(ValueError, match="'segment_id': 6 values are in both 'train' and 'valid'"):
        load_mosi_utterance(tmp_path, allow_shared_groups=True)


def test_bytes_transcripts_are_decoded_or_refused(tmp_path, rng, build):
    p = build.mosi_npz(tmp_path / "train.npz", rng)
    d = dict(np.load(p))
    texts = ["c'est un café"] * len(d["sentiment"])
    _edit(p, transcript=np.array([t.encode() for t in texts]), video_id=np.char.encode(d["video_id"]))
    data = load_mosi_utterance(tmp_path)
    assert data["train"].meta["transcript"][0] == texts[0]
    assert all(not v.startswith("b'") for v in data["train"].meta["video_id"])
    bad = np.array([t.encode("utf-16") for t in texts])
    _edit(p, transcript=bad)
    with pytest.raises(ValueError) as err:
        load_mosi_utterance(tmp_path)
    assert f"'transcript': {len(texts)} of {len(texts)} entries are bytes that are not valid UTF-8" in _one_line(err)


def test_zero_row_files_are_refused_by_name(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng)
    v = build.mosi_npz(tmp_path / "valid.npz", rng, n_videos=2, video_prefix="w")
    d = {k: a[:0] for k, a in np.load(v).items()}
    np.savez(v, **d)
    with pytest.raises(ValueError) as err:
        load_mosi_utterance(tmp_path)
    assert "valid.npz: split 'valid' has 0 samples" in _one_line(err)
    np.savez(tmp_path / "train.npz", **d)
    with pytest.raises(ValueError, match=r"train\.npz: split 'train' has 0 samples"):
        load_mosi_utterance(tmp_path)


def test_a_split_file_given_as_the_directory_names_its_folder(tmp_path, rng, build):
    p = build.mosi_npz(tmp_path / "train.npz", rng)
    with pytest.raises(NotADirectoryError) as err:
        load_dataset("mosi_utterance", p)
    assert f"found a file; pass its folder {tmp_path}" in _one_line(err)


def test_an_npz_folder_given_to_the_pickle_loaders(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng)
    for name in ("mosi_mult", "mosi_mmsa"):
        with pytest.raises(IsADirectoryError) as err:
            load_dataset(name, tmp_path)
        msg = _one_line(err)
        assert "expected a dataset pickle file (.pkl), found a directory" in msg and "mosi_utterance" in msg


def test_a_non_zip_train_npz_gets_no_pickle_advice(tmp_path):
    (tmp_path / "train.npz").write_bytes(b"just text, not an archive\n" * 4)
    with pytest.raises(ValueError) as err:
        load_mosi_utterance(tmp_path)
    msg = _one_line(err)
    assert "train.npz" in msg and "not a zip archive" in msg and "allow_pickle" not in msg


def test_carving_errors_name_the_file_and_the_minimum(tmp_path, rng, build):
    with pytest.raises(ValueError) as err:
        carve_video_splits(np.array(["a", "b"]), ("test",), test_fraction=0.2, source="d/train.npz")
    msg = _one_line(err)
    need = min_carvable_videos(("test",), test_fraction=0.2)
    assert need == 3  # round(0.2 * 3) = 1 video for test, 2 stay: brute force below
    assert all(round(0.2 * n) < 1 or round(0.2 * n) >= n for n in range(1, need))
    assert "d/train.npz: cannot carve 'test'" in msg and f"at least {need} distinct videos" in msg
    assert "from 2 distinct training videos with test_fraction=0.2" in msg
    with pytest.raises(ValueError, match="test_fraction=0.0 carves no video from any number of videos"):
        carve_video_splits(np.array(["a", "b", "c"]), ("test",), test_fraction=0.0)
    build.mosi_npz(tmp_path / "train.npz", rng, n_videos=2)
    with pytest.raises(ValueError, match=r"train\.npz: cannot carve 'test' \(test\.npz is absent\) from 2"):
        load_mosi_utterance(tmp_path)


def test_split_seed_and_synthetic_sizes_name_the_key():
    with pytest.raises(ValueError, match=r"data\.split_seed: expected an integer >= 0 .* found -1"):
        load_dataset("synthetic", split_seed=-1)
    with pytest.raises(ValueError, match=r"data\.options\.n_valid: expected a sample count >= 1, found 0"):
        load_dataset("synthetic", n_valid=0)


@pytest.mark.data
def test_the_real_mosi_files_pass_every_check(mosi_dir):
    data = load_mosi_utterance(mosi_dir)
    ids = [i for s in data.values() for i in s.ids]
    assert len(ids) == len(set(ids))
    videos = {s: set(d.meta["video_id"]) for s, d in data.items()}
    assert not (videos["train"] & videos["valid"]) and not (videos["train"] & videos["test"])
