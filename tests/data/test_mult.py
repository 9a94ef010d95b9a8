"""MulT pickle loader on miniature files written in the MulT layout."""

import pickle

import numpy as np
import pytest
import torch

from robustfusion.data import UnsafePickleError, load_dataset, load_mult
from robustfusion.data.mult import EXAMPLE_LAYOUTS, write_example_mult_pickle


def test_mosi_layout_shapes_targets_masks(tmp_path, rng, build):
    raw = build.mult(rng, dims=(300, 5, 20), frames=(50, 50, 50))
    path = build.pickle(tmp_path / "mosi_data.pkl", raw)
    data = load_mult(path, name="mosi_mult")
    assert set(data) == {"train", "valid", "test"}
    for split, ds in data.items():
        r = raw[split]
        n = r["labels"].shape[0]
        assert ds.modalities == ("text", "audio", "vision")
        assert ds.modality_dims == {"text": 300, "audio": 5, "vision": 20}
        assert ds.task == "regression" and ds.num_outputs == 1
        np.testing.assert_allclose(ds.targets.numpy(), r["labels"].reshape(n))
        for m in ds.modalities:
            np.testing.assert_array_equal(ds.features[m].numpy(), r[m])
            # MulT pads at the front with zeros: the mask marks exactly the non-zero frames
            np.testing.assert_array_equal(ds.frame_masks[m].numpy(), (r[m] != 0).any(-1))
        assert ds.ids[0] == "vid0_0"
        assert ds.name == "mosi_mult"
        ds.get_batch(range(n), validate=True)  # a valid MultimodalBatch


def test_noalign_layout_reads_dims_from_arrays(tmp_path, rng, build):
    raw = build.mult(rng, dims=(300, 74, 35), frames=(50, 500, 375))
    data = load_mult(build.pickle(tmp_path / "mosei_senti_data_noalign.pkl", raw))
    ds = data["train"]
    assert {m: tuple(x.shape[1:]) for m, x in ds.features.items()} == {
        "text": (50, 300), "audio": (500, 74), "vision": (375, 35)}
    assert ds.frame_masks["audio"].shape == (6, 500)


def test_iemocap_labels_are_multilabel_index_one_means_present(tmp_path, rng, build):
    raw = build.mult(rng, dims=(300, 74, 35), frames=(20, 20, 20), iemocap=True)
    data = load_dataset("iemocap_mult", build.pickle(tmp_path / "iemocap_data.pkl", raw))
    ds = data["test"]
    assert ds.task == "multilabel" and ds.num_outputs == 4
    assert ds.targets.shape == (4, 4) and ds.targets.dtype == torch.float32
    np.testing.assert_array_equal(ds.targets.numpy(), raw["test"]["labels"][:, :, 1])
    # MulT's names (eval_iemocap prints Neutral, Happy, Sad, Angry); the metrics use them
    assert ds.meta["label_names"] == ("Neutral", "Happy", "Sad", "Angry")
    from robustfusion.robustness import metric_options

    assert metric_options(ds) == {"names": ["Neutral", "Happy", "Sad", "Angry"]}


def test_mosei_minus_inf_zeroed_by_default_and_error_option(tmp_path, rng, build):
    raw = build.mult(rng, dims=(300, 74, 35), frames=(50, 50, 50))
    raw["train"]["audio"][0, -1, 3] = -np.inf
    raw["train"]["audio"][1, -1, 0] = np.nan
    path = build.pickle(tmp_path / "mosei_senti_data.pkl", raw)
    ds = load_dataset("mosei_mult", path)["train"]
    assert torch.isfinite(ds.features["audio"]).all()
    assert ds.features["audio"][0, -1, 3] == 0
    assert ds.meta["nonfinite_replaced"] == {"text": 0, "audio": 2, "vision": 0}
    with pytest.raises(ValueError, match=r"mosei_senti_data\.pkl.*'train' 'audio'.*2 non-finite.*nonfinite='zero'"):
        load_dataset("mosei_mult", path, nonfinite="error")


def test_all_zero_modality_marks_sample_missing(tmp_path, rng, build):
    raw = build.mult(rng, frames=(10, 10, 10))
    raw["train"]["vision"][2] = 0.0
    ds = load_mult(build.pickle(tmp_path / "m.pkl", raw))["train"]
    assert ds.present is not None and not ds.present[2, 2] and ds.present[2, :2].all()
    assert ds.present[[0, 1, 3, 4, 5]].all()
    # padding="none" keeps every frame and every modality
    ds2 = load_mult(tmp_path / "m.pkl", padding="none")["train"]
    assert ds2.present is None and ds2.frame_masks == {}


def test_labels_out_of_range(tmp_path, rng, build):
    raw = build.mult(rng, frames=(5, 5, 5))
    raw["valid"]["labels"][1, 0, 0] = 3.5
    with pytest.raises(ValueError, match=r"bad\.pkl.*'valid'.*\[-3\.0, 3\.0\].*3\.5"):
        load_mult(build.pickle(tmp_path / "bad.pkl", raw))


def test_wrong_label_shape(tmp_path, rng, build):
    raw = build.mult(rng, frames=(5, 5, 5))
    raw["train"]["labels"] = np.zeros((6, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"\(N, 1, 1\).*\(N, 4, 2\).*\(6, 3\)"):
        load_mult(build.pickle(tmp_path / "bad.pkl", raw))


def test_missing_split_and_wrong_key(tmp_path, rng, build):
    raw = build.mult(rng, frames=(5, 5, 5))
    del raw["valid"]
    with pytest.raises(ValueError, match=r"nosplit\.pkl.*missing \['valid'\]"):
        load_mult(build.pickle(tmp_path / "nosplit.pkl", raw))
    raw = build.mult(rng, frames=(5, 5, 5))
    raw["test"]["visual"] = raw["test"].pop("vision")
    with pytest.raises(ValueError, match=r"nokey\.pkl.*'test'.*missing \['vision'\].*visual"):
        load_mult(build.pickle(tmp_path / "nokey.pkl", raw))


def test_wrong_rank_and_mismatched_n(tmp_path, rng, build):
    raw = build.mult(rng, frames=(5, 5, 5))
    raw["train"]["audio"] = raw["train"]["audio"][:, 0]
    with pytest.raises(ValueError, match=r"'audio': expected a 3-d array, found shape \(6, 5\)"):
        load_mult(build.pickle(tmp_path / "rank.pkl", raw))
    raw = build.mult(rng, frames=(5, 5, 5))
    raw["train"]["vision"] = raw["train"]["vision"][:4]
    with pytest.raises(ValueError, match=r"'vision': expected 6 samples"):
        load_mult(build.pickle(tmp_path / "n.pkl", raw))


def test_truncated_and_non_pickle(tmp_path, rng, build):
    p = tmp_path / "mosi_data.pkl"
    p.write_bytes(pickle.dumps(build.mult(rng, frames=(5, 5, 5)))[:-50])
    with pytest.raises(ValueError, match=r"mosi_data\.pkl.*truncated"):
        load_dataset("mosi_mult", p)
    with pytest.raises(FileNotFoundError, match=r"absent\.pkl"):
        load_dataset("mosi_mult", tmp_path / "absent.pkl")


class _Boom:
    def __reduce__(self):
        return (eval, ("1+1",))


def test_refuses_foreign_globals(tmp_path, rng, build):
    raw = build.mult(rng, frames=(5, 5, 5))
    raw["train"]["id"] = _Boom()
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*builtins\.eval"):
        load_mult(build.pickle(tmp_path / "evil.pkl", raw))


def test_split_with_another_feature_width_names_file_and_split(tmp_path, rng, build):
    raw = build.mult(rng, dims=(300, 5, 20), frames=(50, 50, 50))
    raw["valid"] = build.mult_split(rng, 3, dims=(300, 7, 20))
    path = build.pickle(tmp_path / "mosi_data.pkl", raw)
    with pytest.raises(ValueError, match=r"mosi_data\.pkl: split 'valid': modality 'audio': expected feature size 5 "
                                         r"\(as in split 'train'\), found 7"):
        load_mult(path, name="mosi_mult")
    # another file than the one a run was trained on: the standardizer names the file and split
    from robustfusion.data.standardize import Standardizer

    ok = load_mult(build.pickle(tmp_path / "a.pkl", build.mult(rng, dims=(300, 5, 20))), name="mosi_mult")
    other = load_mult(build.pickle(tmp_path / "copy.pkl", build.mult(rng, dims=(300, 7, 20))), name="mosi_mult")
    with pytest.raises(ValueError, match=r"copy\.pkl: split 'test': modality 'audio': expected feature size 5, found 7"):
        Standardizer.fit(ok["train"]).transform(other["test"])


# ---------------------------------------------------------------------------- example file writer
def test_example_iemocap_file_has_the_published_layout(tmp_path):
    """iemocap_data.pkl as MulT's src/dataset.py reads it: splits train/valid/test, each with
    vision [N, 20, 35], audio [N, 20, 74], text [N, 20, 300] and labels [N, 4, 2] (float32)."""
    path = write_example_mult_pickle(tmp_path / "iemocap_data.pkl", sizes=(7, 5, 6), seed=3)
    with open(path, "rb") as f:
        raw = pickle.load(f)
    assert set(raw) == {"train", "valid", "test"}
    for split, n in (("train", 7), ("valid", 5), ("test", 6)):
        d = raw[split]
        assert set(d) == {"text", "audio", "vision", "labels"}
        shapes = {k: v.shape for k, v in d.items()}
        assert shapes == {"text": (n, 20, 300), "audio": (n, 20, 74), "vision": (n, 20, 35), "labels": (n, 4, 2)}
        assert all(v.dtype == np.float32 for v in d.values())
        # one-hot pairs, exactly one emotion present per sample; MulT's argmax gives the targets
        assert np.isin(d["labels"], (0, 1)).all() and (d["labels"].sum(-1) == 1).all()
        assert (d["labels"].argmax(-1).sum(1) == 1).all()
        # front zero padding, at least half of the frames real
        observed = (d["text"] != 0).any(-1)
        assert (observed.sum(1) >= 10).all()
        assert all((np.diff(row.astype(int)) >= 0).all() for row in observed)  # zeros only at the front
    ds = load_dataset("iemocap_mult", path)
    assert ds["test"].task == "multilabel" and ds["test"].num_outputs == 4
    np.testing.assert_array_equal(ds["valid"].targets.numpy(), raw["valid"]["labels"].argmax(-1))
    # same arguments, same file
    again = write_example_mult_pickle(tmp_path / "again.pkl", sizes=(7, 5, 6), seed=3)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("layout", ["mosi", "mosei_senti"])
def test_example_sentiment_files_load_as_regression(tmp_path, layout):
    dims, frames, _ = EXAMPLE_LAYOUTS[layout]
    path = write_example_mult_pickle(tmp_path / f"{layout}_data.pkl", layout=layout, sizes=(4, 3, 3))
    ds = load_mult(path)["train"]
    assert ds.task == "regression" and ds.targets.shape == (4,)
    assert (ds.targets.abs() <= 3).all()
    assert {m: tuple(x.shape[1:]) for m, x in ds.features.items()} == {
        m: (frames, d) for m, d in zip(("text", "audio", "vision"), dims)}


def test_example_file_carries_a_learnable_signal(tmp_path):
    """With signal, each modality's frame mean separates the emotions; with signal=0 it does not."""
    def nearest_centroid_accuracy(signal, m="audio"):
        with open(write_example_mult_pickle(tmp_path / "s.pkl", sizes=(200, 1, 200), signal=signal), "rb") as f:
            raw = pickle.load(f)

        def pooled(d):
            mask = (d[m] != 0).any(-1, keepdims=True)
            return (d[m] * mask).sum(1) / mask.sum(1), d["labels"].argmax(-1).argmax(-1)

        (xtr, ytr), (xte, yte) = pooled(raw["train"]), pooled(raw["test"])
        centroids = np.stack([xtr[ytr == k].mean(0) for k in range(4)])
        pred = ((xte[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
        return float((pred == yte).mean())

    assert nearest_centroid_accuracy(1.0) > 0.9
    assert nearest_centroid_accuracy(0.0) < 0.5
    assert 0.5 < nearest_centroid_accuracy(0.1, "vision") < 0.95  # the default: informative, not trivial


def test_example_file_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"layout: expected one of \['iemocap', 'mosei_senti', 'mosi'\], found 'sims'"):
        write_example_mult_pickle(tmp_path / "x.pkl", layout="sims")
    with pytest.raises(ValueError, match=r"sizes: expected 3 sample counts >= 1"):
        write_example_mult_pickle(tmp_path / "x.pkl", sizes=(4, 0, 2))
