"""MulT pickle loader on miniature files written in the MulT layout."""

import pickle

import numpy as np
import pytest
import torch

from robustfusion.data import UnsafePickleError, load_dataset, load_mult


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
    assert ds.meta["label_names"] == ("neutral", "happy", "sad", "angry")


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
