"""IEMOCAP utterance npz loader: miniature files in the published layout, options, errors, real data."""

import numpy as np
import pytest

from robustfusion.data import load_dataset, load_iemocap_utterance
from robustfusion.data.iemocap_utterance import speaker_normalise


def _dir(tmp_path, rng, build, splits=("train", "valid")):
    for k, s in enumerate(splits):
        build.iemocap_npz(tmp_path / f"{s}.npz", rng, session=k + 1, n_dialogues=6 if s == "train" else 4)
    return tmp_path


def test_four_way_drops_unlabelled_and_keeps_ids(tmp_path, rng, build, fake_text):
    d = _dir(tmp_path, rng, build, ("train", "valid", "test"))
    data = load_iemocap_utterance(d)
    for s in ("train", "valid", "test"):
        z = np.load(d / f"{s}.npz")
        keep = z["emotion4"] >= 0
        ds = data[s]
        assert len(ds) == int(keep.sum()) and ds.task == "classification" and ds.num_outputs == 4
        assert ds.ids == z["utterance_id"][keep].tolist()
        np.testing.assert_array_equal(ds.targets.numpy(), z["emotion4"][keep])
        assert ds.meta["dialogue_id"] == z["dialogue_id"][keep].tolist() == ds.groups
        assert ds.meta["speaker"] == z["speaker"][keep].tolist() and not ds.meta["carved"]
        assert ds.meta["label_names"] == ["happy", "sad", "neutral", "angry"]
        assert ds.modality_dims == {"text": 16, "audio": 8}
    # standardised with training statistics
    np.testing.assert_allclose(data["train"].features["audio"].mean(0).numpy(), 0, atol=1e-5)
    assert data["train"].name == "iemocap_utterance"


def test_six_way_keeps_every_utterance(tmp_path, rng, build, fake_text):
    d = _dir(tmp_path, rng, build)
    data = load_iemocap_utterance(d, labels="emotion6")
    z = np.load(d / "valid.npz")
    assert len(data["valid"]) == len(z["emotion6"]) and data["valid"].num_outputs == 6
    np.testing.assert_array_equal(data["valid"].targets.numpy(), z["emotion6"])
    assert data["valid"].meta["label_names"][4:] == ["excited", "frustrated"]


def test_audio_transform_against_hand_computation(tmp_path, rng, build, fake_text):
    d = _dir(tmp_path, rng, build, ("train", "valid", "test"))
    data = load_iemocap_utterance(d, standardize=False)
    tr, va = np.load(d / "train.npz"), np.load(d / "valid.npz")
    scale = np.median(np.abs(tr["audio"].astype(np.float64)), axis=0)
    want = np.sign(va["audio"]) * np.log1p(np.abs(va["audio"]) / scale)
    np.testing.assert_allclose(data["valid"].features["audio"].numpy(), want[va["emotion4"] >= 0], rtol=1e-5,
                               atol=1e-6)
    raw = load_iemocap_utterance(d, standardize=False, audio_transform="none")
    np.testing.assert_allclose(raw["valid"].features["audio"].numpy(), va["audio"][va["emotion4"] >= 0])


def test_speaker_norm_uses_each_speakers_own_statistics(tmp_path, rng, build, fake_text):
    x = rng.standard_normal((7, 3))
    spk = np.array(list("aabbbab"))
    out = speaker_normalise(x, spk)
    for s in "ab":  # brute force per speaker
        sel = spk == s
        np.testing.assert_allclose(out[sel], (x[sel] - x[sel].mean(0)) / x[sel].std(0), rtol=1e-5)
    d = _dir(tmp_path, rng, build, ("train", "valid", "test"))
    data = load_iemocap_utterance(d, standardize=False, speaker_norm=True, audio_transform="none")
    va = np.load(d / "valid.npz")
    want = speaker_normalise(va["audio"], va["speaker"])[va["emotion4"] >= 0]  # all utterances, then the 4-way ones
    np.testing.assert_allclose(data["valid"].features["audio"].numpy(), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected 7 speaker ids, found shape \(3,\)"):
        speaker_normalise(x, spk[:3])


def test_carving_and_crossfit_group_by_dialogue(tmp_path, rng, build, fake_text):
    d = _dir(tmp_path, rng, build, ("train",))
    data = load_iemocap_utterance(d, split_seed=1)
    groups = {s: set(ds.groups) for s, ds in data.items()}
    assert data["test"].meta["carved"] and data["valid"].meta["carved"]
    assert all(groups[a].isdisjoint(groups[b]) for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")))
    (tmp_path / "cf").mkdir()
    d2 = _dir(tmp_path / "cf", rng, build)
    folds = [load_iemocap_utterance(d2, crossfit_folds=2, crossfit_fold=k) for k in (0, 1)]
    z = np.load(d2 / "valid.npz")
    assert set(folds[0]["test"].groups) == set(folds[1]["valid"].groups)
    assert set(folds[0]["test"].groups) | set(folds[1]["test"].groups) == set(z["dialogue_id"].tolist())
    assert len(folds[0]["train"]) == int((np.load(d2 / "train.npz")["emotion4"] >= 0).sum())
    with pytest.raises(ValueError, match=r"crossfit_folds=2 expected valid.npz and no test.npz"):
        load_iemocap_utterance(d, crossfit_folds=2)


def test_bad_input_names_file_and_expectation(tmp_path, rng, build, fake_text):
    d = _dir(tmp_path, rng, build)
    with pytest.raises(ValueError, match=r"labels: expected one of \['emotion4', 'emotion6'\], found 'emotion5'"):
        load_iemocap_utterance(d, labels="emotion5")
    with pytest.raises(ValueError, match=r"audio_transform: expected one of"):
        load_iemocap_utterance(d, audio_transform="log")
    z = dict(np.load(d / "valid.npz"))
    bad = {**z, "emotion4": np.where(z["emotion4"] == 0, 7, z["emotion4"])}
    np.savez(d / "valid.npz", **bad)
    with pytest.raises(ValueError, match=r"valid\.npz: 'emotion4': expected labels in \[-1, 3\].*found values in"):
        load_iemocap_utterance(d)
    np.savez(d / "valid.npz", **{k: v for k, v in z.items() if k != "speaker"})
    with pytest.raises(ValueError, match=r"valid\.npz: expected keys .* missing \['speaker'\]"):
        load_iemocap_utterance(d)
    np.savez(d / "valid.npz", **{**z, "audio": z["audio"][:, :5]})
    with pytest.raises(ValueError, match=r"valid\.npz: 'audio': expected feature width 8"):
        load_iemocap_utterance(d)
    np.savez(d / "valid.npz", **{**z, "transcript": np.arange(len(z["transcript"]))})
    with pytest.raises(ValueError, match=r"'transcript': expected strings, found dtype int64"):
        load_iemocap_utterance(d)
    with pytest.raises(FileNotFoundError, match=r"expected train.npz"):
        load_iemocap_utterance(_empty(tmp_path))


def _empty(tmp_path):
    p = tmp_path / "empty"
    p.mkdir()
    return p


def test_registered_with_options(tmp_path, rng, build, fake_text):
    d = _dir(tmp_path, rng, build)
    data = load_dataset("iemocap_utterance", d, labels="emotion6")
    assert data["train"].num_outputs == 6 and data["train"].name == "iemocap_utterance"
    with pytest.raises(ValueError, match=r"unknown options \['nope'\]"):
        load_dataset("iemocap_utterance", d, nope=1)


@pytest.mark.data
def test_real_iemocap(iemocap_dir):
    """Sessions 1-3 (train.npz, 3259 4-way utterances) and Session 4 (valid.npz, 1031); the test
    split is carved from train.npz by dialogue; MiniLM text (384-d) and 8 audio features."""
    data = load_dataset("iemocap_utterance", iemocap_dir)
    assert len(data["valid"]) == 1031 and len(data["train"]) + len(data["test"]) == 3259
    assert {s[:5] for s in data["valid"].meta["speaker"]} == {"Ses04"}
    for ds in data.values():
        assert ds.modality_dims == {"text": 384, "audio": 8}
        assert set(ds.targets.unique().tolist()) == {0, 1, 2, 3}
        ds.full_batch()
    assert set(data["train"].groups).isdisjoint(data["test"].groups)
    six = load_dataset("iemocap_utterance", iemocap_dir, labels="emotion6")
    assert len(six["valid"]) == 1512


def test_load_time_checks_repeated_ids_shared_dialogues_and_bytes_transcripts(tmp_path, rng, build, fake_text):
    (tmp_path / "ok").mkdir()
    z = dict(np.load(_dir(tmp_path / "ok", rng, build, ("train",)) / "train.npz"))

    def folder(name, **files):
        d = tmp_path / name
        d.mkdir()
        for split, arrays in files.items():
            np.savez(d / f"{split}.npz", **arrays)
        return d

    dup = folder("dup", train={**z, "utterance_id": np.array([z["utterance_id"][0]] * len(z["utterance_id"]))})
    with pytest.raises(ValueError, match=r"train.npz: 'utterance_id': 1 ids appear more than once"):
        load_iemocap_utterance(dup)
    shared = folder("shared", train=z, valid={**z, "utterance_id": np.array([f"{u}_v" for u in z["utterance_id"]])})
    with pytest.raises(ValueError, match=r"dialogue_id"):
        load_iemocap_utterance(shared)
    data = load_iemocap_utterance(shared, allow_shared_groups=True)
    assert set(data["train"].groups) & set(data["valid"].groups)
    raw = folder("bytes", train={**z, "transcript": np.array([t.encode("utf-8") for t in z["transcript"]])})
    assert load_iemocap_utterance(raw)["train"].meta["transcript"][0] == str(z["transcript"][z["emotion4"] >= 0][0])
