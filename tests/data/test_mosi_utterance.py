"""MOSI utterance npz loader: miniature directories, the video-grouped carving rule, real data."""

import numpy as np
import pytest

from robustfusion.data import carve_video_splits, load_dataset, load_mosi_utterance


def _videos(ds):
    return set(ds.meta["video_id"])


def test_carves_valid_and_test_grouped_by_video(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng, n_videos=20, per_video=3)
    data = load_mosi_utterance(tmp_path, split_seed=0)
    tr, va, te = data["train"], data["valid"], data["test"]
    assert (len(_videos(te)), len(_videos(va)), len(_videos(tr))) == (4, 3, 13)  # round(.2*20), round(.15*20)
    assert not (_videos(tr) & _videos(va)) and not (_videos(tr) & _videos(te)) and not (_videos(va) & _videos(te))
    assert len(tr) + len(va) + len(te) == 60
    assert te.meta["carved"] and va.meta["carved"]
    # the documented rule, recomputed by hand
    order = np.array(sorted({f"v{i:03d}" for i in range(20)}))[np.random.default_rng(0).permutation(20)]
    assert _videos(te) == set(order[:4]) and _videos(va) == set(order[4:7])
    # ids are segment ids, each sample's video matches its segment
    assert all(i.rsplit("_", 1)[0] == v for i, v in zip(te.ids, te.meta["video_id"]))


def test_carving_deterministic_per_seed(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng)
    a, b = load_mosi_utterance(tmp_path, split_seed=3), load_mosi_utterance(tmp_path, split_seed=3)
    c = load_mosi_utterance(tmp_path, split_seed=4)
    assert a["test"].ids == b["test"].ids
    assert a["test"].ids != c["test"].ids


def test_reads_present_split_files(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng, n_videos=10)
    build.mosi_npz(tmp_path / "test.npz", rng, n_videos=5, video_prefix="t")
    data = load_mosi_utterance(tmp_path)
    assert _videos(data["test"]) == {f"t{i:03d}" for i in range(5)} and not data["test"].meta["carved"]
    assert data["valid"].meta["carved"]
    assert len(_videos(data["valid"])) == 2 and len(_videos(data["train"])) == 8  # test not carved


def test_crossfit_deals_validation_videos_into_folds(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng, n_videos=10)
    build.mosi_npz(tmp_path / "valid.npz", rng, n_videos=6, video_prefix="w")  # other videos than train's
    folds = [load_mosi_utterance(tmp_path, split_seed=2, crossfit_folds=3, crossfit_fold=k) for k in range(3)]
    order = np.array(sorted(f"w{i:03d}" for i in range(6)))[np.random.default_rng(2).permutation(6)]
    for k, data in enumerate(folds):  # the documented rule, by hand: fold k = positions k, k + 3
        assert _videos(data["test"]) == set(order[k::3])
        assert _videos(data["valid"]) == set(order) - set(order[k::3])
        assert len(_videos(data["train"])) == 10 and data["test"].meta["crossfit"] == [k, 3]
    assert set().union(*(_videos(d["test"]) for d in folds)) == set(order)
    with pytest.raises(ValueError, match=r"crossfit_fold: expected 0 <= fold < 3, found 3"):
        load_mosi_utterance(tmp_path, crossfit_folds=3, crossfit_fold=3)
    with pytest.raises(ValueError, match=r"crossfit_folds: expected 2 <= folds <= 6.*found 7"):
        load_mosi_utterance(tmp_path, crossfit_folds=7)
    (tmp_path / "valid.npz").unlink()
    with pytest.raises(ValueError, match=r"expected valid\.npz and no test\.npz, found \['train\.npz'\]"):
        load_mosi_utterance(tmp_path, crossfit_folds=2)


def test_standardised_with_train_statistics_only(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng)
    data = load_mosi_utterance(tmp_path)
    tr = data["train"].features["audio"].numpy()
    np.testing.assert_allclose(tr.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(tr.std(0), 1, atol=1e-3)
    raw = load_mosi_utterance(tmp_path, standardize=False)
    st = data["train"].meta["standardize"]["audio"]
    np.testing.assert_allclose(data["test"].features["audio"].numpy(),
                               (raw["test"].features["audio"].numpy() - st["mean"]) / st["std"], rtol=1e-5, atol=1e-5)
    assert data["test"].modality_dims == {"text": 100, "audio": 73, "vision": 100}
    assert data["test"].features["text"].dim() == 2 and data["test"].frame_masks == {}


def test_errors(tmp_path, rng, build):
    with pytest.raises(FileNotFoundError, match=r"expected a directory"):
        load_mosi_utterance(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"expected train\.npz"):
        load_mosi_utterance(tmp_path)
    p = build.mosi_npz(tmp_path / "train.npz", rng)
    d = dict(np.load(p))
    d["sentiment"][0] = -3.2
    np.savez(p, **d)
    with pytest.raises(ValueError, match=r"train\.npz.*'sentiment'.*\[-3\.0, 3\.0\]"):
        load_mosi_utterance(tmp_path)
    del d["vision"]
    np.savez(p, **d)
    with pytest.raises(ValueError, match=r"train\.npz.*missing \['vision'\]"):
        load_mosi_utterance(tmp_path)
    p.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(ValueError, match=r"train\.npz.*not a zip archive"):
        load_mosi_utterance(tmp_path)
    d["vision"] = np.array([object()] * len(d["sentiment"]), dtype=object)  # pickled objects are refused
    np.savez(p, **d)
    with pytest.raises(ValueError, match=r"train\.npz"):
        load_mosi_utterance(tmp_path)


def test_carve_fraction_errors():
    with pytest.raises(ValueError, match=r"test_fraction"):
        carve_video_splits(np.array(["a", "b"]), ("test",), test_fraction=1.5)
    with pytest.raises(ValueError, match=r"cannot carve 'test' .*from 2 distinct training videos"):
        carve_video_splits(np.array(["a", "b"]), ("test",), test_fraction=0.1)


@pytest.mark.data
def test_real_mosi_bclstm(mosi_dir):
    """train.npz (1447 segments, 62 videos) and the leak-free valid.npz (255 segments, 10 other
    videos); test is carved from train.npz by video."""
    data = load_dataset("mosi_utterance", mosi_dir, split_seed=0)
    assert sum(len(d) for d in data.values()) == 1447 + 255
    assert len(data["valid"]) == 255 and not data["valid"].meta["carved"] and data["test"].meta["carved"]
    vids = {s: _videos(d) for s, d in data.items()}
    assert len(vids["valid"]) == 10 and len(vids["train"]) + len(vids["test"]) == 62
    assert len(set().union(*vids.values())) == 72  # no video in two splits
    for d in data.values():
        assert d.modality_dims == {"text": 100, "audio": 73, "vision": 100}
        assert d.name == "mosi_utterance"
        assert d.targets.abs().max() <= 3
        d.full_batch()  # validated: finite features
    assert len(data["train"]) > len(data["test"]) > 0


@pytest.mark.data
def test_real_mosi_crossfit_reports_on_leak_free_videos_only(mosi_dir):
    folds = [load_dataset("mosi_utterance", mosi_dir, crossfit_folds=2, crossfit_fold=k) for k in (0, 1)]
    for data in folds:
        assert len(data["train"]) == 1447 and len(data["valid"]) + len(data["test"]) == 255
        assert not _videos(data["valid"]) & _videos(data["test"])
    assert _videos(folds[0]["test"]) == _videos(folds[1]["valid"])
    assert _videos(folds[0]["test"]) | _videos(folds[1]["test"]) == _videos(load_dataset("mosi_utterance", mosi_dir)["valid"])


@pytest.mark.data
def test_real_mosi_via_env_var(mosi_dir, monkeypatch):
    monkeypatch.setenv("ROBUSTFUSION_DATA_MOSI_UTTERANCE", str(mosi_dir))
    assert sum(len(d) for d in load_dataset("mosi_utterance").values()) == 1447 + 255


def test_split_with_another_feature_width_names_file_modality_and_widths(tmp_path, rng, build):
    build.mosi_npz(tmp_path / "train.npz", rng)
    p = build.mosi_npz(tmp_path / "valid.npz", rng, n_videos=5, video_prefix="w")
    d = dict(np.load(p))
    d["audio"] = d["audio"][:, :70]
    np.savez(p, **d)
    with pytest.raises(ValueError, match=r"valid\.npz: 'audio': expected feature width 73 \(as in .*train\.npz\), "
                                         r"found 70"):
        load_mosi_utterance(tmp_path)


def test_string_valued_features_are_refused_by_name(tmp_path, rng, build):
    p = build.mosi_npz(tmp_path / "train.npz", rng)
    d = dict(np.load(p))
    d["audio"] = d["audio"].astype(str)
    np.savez(p, **d)
    with pytest.raises(ValueError, match=r"train\.npz: 'audio': expected numeric values, found dtype <U"):
        load_mosi_utterance(tmp_path)
