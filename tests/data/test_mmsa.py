"""MMSA pickle loader on miniature files written in the MMSA layout."""

import numpy as np
import pytest

from robustfusion.data import load_dataset, load_mmsa


def test_unaligned_layout_masks_from_lengths(tmp_path, rng, build):
    raw = build.mmsa(rng, text_dim=768, seq=(50, 375, 500), dims=(5, 20))
    data = load_dataset("mosi_mmsa", build.pickle(tmp_path / "unaligned_50.pkl", raw))
    assert set(data) == {"train", "valid", "test"}
    for split, ds in data.items():
        r = raw[split]
        n = len(r["regression_labels"])
        assert ds.name == "mosi_mmsa" and ds.task == "regression"
        assert ds.modality_dims == {"text": 768, "audio": 5, "vision": 20}
        np.testing.assert_allclose(ds.targets.numpy(), r["regression_labels"])
        np.testing.assert_array_equal(ds.frame_masks["audio"].sum(1).numpy(), r["audio_lengths"])
        np.testing.assert_array_equal(ds.frame_masks["vision"].sum(1).numpy(), r["vision_lengths"])
        # MMSA pads at the end: the mask is a prefix
        np.testing.assert_array_equal(ds.frame_masks["audio"].numpy(),
                                      np.arange(375)[None] < r["audio_lengths"][:, None])
        np.testing.assert_array_equal(ds.frame_masks["text"].numpy(), r["text_bert"][:, 1] > 0)
        assert ds.meta["frame_mask_source"] == {"audio": "audio_lengths", "vision": "vision_lengths",
                                                "text": "text_bert attention mask"}
        assert ds.meta["raw_text"][0] == "sentence number 0"
        assert ds.ids == [f"clip_{i}" for i in range(n)]
        ds.get_batch(range(n), validate=True)


def test_glove_text_and_lengths_absent_fallback(tmp_path, rng, build):
    raw = build.mmsa(rng, text_dim=300, seq=(50, 50, 50), dims=(74, 35))
    for r in raw.values():
        del r["audio_lengths"], r["vision_lengths"], r["text_bert"]
    ds = load_mmsa(build.pickle(tmp_path / "aligned_50.pkl", raw))["train"]
    assert ds.modality_dims == {"text": 300, "audio": 74, "vision": 35}
    assert ds.meta["frame_mask_source"]["audio"] == "nonzero frames"
    np.testing.assert_array_equal(ds.frame_masks["vision"].numpy(), (raw["train"]["vision"] != 0).any(-1))


def test_sims_per_modality_labels_and_range(tmp_path, rng, build):
    raw = build.mmsa(rng, text_dim=768, seq=(39, 400, 55), dims=(33, 709), sims=True, label_range=1.0)
    path = build.pickle(tmp_path / "unaligned_39.pkl", raw)
    ds = load_dataset("sims_mmsa", path)["valid"]
    assert set(ds.meta["modality_labels"]) == {"text", "audio", "vision"}
    np.testing.assert_allclose(ds.meta["modality_labels"]["audio"], raw["valid"]["regression_labels_A"])
    raw["test"]["regression_labels"][0] = 2.0  # fine for MOSI, out of range for SIMS
    build.pickle(path, raw)
    with pytest.raises(ValueError, match=r"unaligned_39\.pkl.*'test' regression_labels.*\[-1\.0, 1\.0\]"):
        load_dataset("sims_mmsa", path)
    assert load_dataset("mosi_mmsa", path)["test"].targets[0] == 2.0


def test_minus_inf_audio(tmp_path, rng, build):
    raw = build.mmsa(rng, text_dim=8, seq=(6, 7, 8), dims=(4, 5))
    raw["valid"]["audio"][0, 0, 0] = -np.inf
    path = build.pickle(tmp_path / "m.pkl", raw)
    ds = load_mmsa(path)["valid"]
    assert ds.features["audio"][0, 0, 0] == 0 and ds.meta["nonfinite_replaced"]["audio"] == 1
    with pytest.raises(ValueError, match=r"m\.pkl.*'valid' 'audio'.*non-finite"):
        load_mmsa(path, nonfinite="error")


def test_bad_lengths(tmp_path, rng, build):
    raw = build.mmsa(rng, text_dim=8, seq=(6, 7, 8), dims=(4, 5))
    raw["train"]["vision_lengths"][1] = 9
    with pytest.raises(ValueError, match=r"'vision_lengths'.*\[0, 8\].*9"):
        load_mmsa(build.pickle(tmp_path / "m.pkl", raw))
    raw = build.mmsa(rng, text_dim=8, seq=(6, 7, 8), dims=(4, 5))
    raw["train"]["audio_lengths"] = raw["train"]["audio_lengths"][:2]
    with pytest.raises(ValueError, match=r"'audio_lengths'.*expected 5 lengths"):
        load_mmsa(build.pickle(tmp_path / "m2.pkl", raw))


def test_missing_key_split_and_token_ids(tmp_path, rng, build):
    raw = build.mmsa(rng, text_dim=8, seq=(6, 7, 8), dims=(4, 5))
    del raw["train"]["regression_labels"]
    with pytest.raises(ValueError, match=r"k\.pkl.*'train'.*missing \['regression_labels'\]"):
        load_mmsa(build.pickle(tmp_path / "k.pkl", raw))
    raw = build.mmsa(rng, text_dim=8, seq=(6, 7, 8), dims=(4, 5))
    raw.pop("test")
    with pytest.raises(ValueError, match=r"s\.pkl.*missing \['test'\]"):
        load_mmsa(build.pickle(tmp_path / "s.pkl", raw))
    raw = build.mmsa(rng, text_dim=8, seq=(6, 7, 8), dims=(4, 5))
    for r in raw.values():
        r["text"] = r["text_bert"]  # BERT token ids in place of features
    with pytest.raises(ValueError, match=r"token ids.*text_features='minilm'"):
        load_mmsa(build.pickle(tmp_path / "ids.pkl", raw))
