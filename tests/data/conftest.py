"""Builders of miniature dataset files in the published layouts (written at run time, no fixtures
committed), and the location of the real MOSI utterance data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest


def _seq(rng, n, t, d, lengths, left_pad):
    x = rng.standard_normal((n, t, d)).astype(np.float32)
    for i, L in enumerate(lengths):
        if left_pad:
            x[i, : t - L] = 0.0
        else:
            x[i, L:] = 0.0
    return x


def make_mult_split(rng, n, dims=(300, 5, 20), frames=(50, 50, 50), iemocap=False, lengths=None):
    """One MulT split: zero padding at the front (CMU-MultimodalSDK), labels (N,1,1) or (N,4,2)."""
    if lengths is None:
        lengths = rng.integers(1, min(frames) + 1, size=n)
    d = {}
    for m, dim, t in zip(("text", "audio", "vision"), dims, frames):
        d[m] = _seq(rng, n, t, dim, np.minimum(lengths, t), left_pad=True)
    if iemocap:
        present = rng.integers(0, 2, size=(n, 4))
        lab = np.zeros((n, 4, 2), dtype=np.float32)
        lab[np.arange(n)[:, None], np.arange(4)[None, :], present] = 1.0
        d["labels"] = lab
    else:
        d["labels"] = rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32)
    d["id"] = np.array([[f"vid{i}", f"{i}"] for i in range(n)])
    return d


def make_mult(rng, sizes=(6, 3, 4), **kw):
    return {s: make_mult_split(rng, n, **kw) for s, n in zip(("train", "valid", "test"), sizes)}


def make_mmsa_split(rng, n, text_dim=768, seq=(50, 375, 500), dims=(5, 20), sims=False, label_range=3.0):
    """One MMSA split: padding at the end, *_lengths arrays, text_bert (N, 3, L)."""
    lt, ta, tv = seq
    tl = rng.integers(1, lt + 1, size=n)
    al = rng.integers(1, ta + 1, size=n)
    vl = rng.integers(1, tv + 1, size=n)
    text_bert = np.zeros((n, 3, lt), dtype=np.int64)
    for i, L in enumerate(tl):
        text_bert[i, 0, :L] = rng.integers(100, 30000, size=L)
        text_bert[i, 1, :L] = 1
    d = {
        "raw_text": np.array([f"sentence number {i}" for i in range(n)], dtype=object),
        "text": _seq(rng, n, lt, text_dim, tl, left_pad=False),
        "text_bert": text_bert,
        "audio": _seq(rng, n, ta, dims[0], al, left_pad=False),
        "vision": _seq(rng, n, tv, dims[1], vl, left_pad=False),
        "audio_lengths": al,
        "vision_lengths": vl,
        "regression_labels": rng.uniform(-label_range, label_range, size=n).astype(np.float32),
        "id": np.array([f"clip_{i}" for i in range(n)], dtype=object),
    }
    if sims:
        for m in "TAV":
            d[f"regression_labels_{m}"] = rng.uniform(-1, 1, size=n).astype(np.float32)
    return d


def make_mmsa(rng, sizes=(5, 3, 3), **kw):
    return {s: make_mmsa_split(rng, n, **kw) for s, n in zip(("train", "valid", "test"), sizes)}


def write_pickle(path: Path, obj, protocol: int = 4) -> Path:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


def make_mosi_npz(path: Path, rng, n_videos=20, per_video=3, video_prefix="v", seg_start=1):
    """A ``<split>.npz`` in the MOSI utterance layout."""
    vids = np.repeat([f"{video_prefix}{i:03d}" for i in range(n_videos)], per_video)
    n = len(vids)
    segs = np.array([f"{v}_{seg_start + (i % per_video)}" for i, v in enumerate(vids)])
    np.savez(path, segment_id=segs, video_id=vids,
             transcript=np.array([f"SEGMENT {s} SAYS SOMETHING" for s in segs]),
             sentiment=rng.uniform(-3, 3, size=n).astype(np.float32),
             text=rng.standard_normal((n, 100)).astype(np.float32),
             audio=(180 + 10 * rng.standard_normal((n, 73))).astype(np.float32),
             vision=np.abs(rng.standard_normal((n, 100))).astype(np.float32))
    return path


IEMOCAP_AUDIO_NAMES = ("sig_mean", "sig_std", "rmse_mean", "rmse_std", "silence", "harmonic", "auto_corr_max",
                       "auto_corr_std")


def make_iemocap_npz(path: Path, rng, session=1, n_dialogues=4, per_dialogue=10, n_missing=2):
    """A ``<split>.npz`` in the published IEMOCAP utterance layout: string arrays, int labels, ``-1``
    4-way labels for utterances outside the four classes (frustrated, and ``n_missing`` extra ones)."""
    rows = []
    for d in range(n_dialogues):
        dia = f"Ses{session:02d}F_impro{d:02d}"
        for t in range(per_dialogue):
            g = "FM"[t % 2]
            rows.append((f"{dia}_{g}{t:03d}", dia, f"Ses{session:02d}{g}"))
    n = len(rows)
    e6 = rng.integers(0, 6, size=n)
    e4 = np.array([{0: 0, 4: 0, 1: 1, 2: 2, 3: 3, 5: -1}[int(v)] for v in e6])
    e4[rng.choice(np.flatnonzero(e4 >= 0), size=min(n_missing, int((e4 >= 0).sum())), replace=False)] = -1
    audio = np.abs(rng.standard_normal((n, 8))).astype(np.float32) * np.array([1e-2, 1e-2, 5e-3, 5e-3, .2, 1e-2, .05, 50],
                                                                                dtype=np.float32)
    audio[:, 5] -= 0.01  # `harmonic` takes negative values
    audio[:, 2] += 0.02 * e4.clip(0)  # audio carries some signal
    np.savez(path, utterance_id=np.array([r[0] for r in rows]), dialogue_id=np.array([r[1] for r in rows]),
             session=np.full(n, session), speaker=np.array([r[2] for r in rows]),
             transcript=np.array([f"Utterance {r[0]}, said {['happily', 'sadly', 'plainly', 'angrily'][max(v, 0)]}."
                                  for r, v in zip(rows, e4)]),
             audio=audio, emotion6=e6, emotion4=e4, audio_feature_names=np.array(IEMOCAP_AUDIO_NAMES),
             emotion6_names=np.array(["happy", "sad", "neutral", "angry", "excited", "frustrated"]),
             emotion4_names=np.array(["happy", "sad", "neutral", "angry"]))
    return path


def fake_embed_texts(texts, cache_dir=None, model_path=None, batch_size=64, model=None, progress=True):
    """A deterministic 16-d stand-in for the sentence encoder (a hash of each text): loader tests
    that are not about the embeddings need no model load."""
    import hashlib

    out = np.zeros((len(texts), 16), dtype=np.float32)
    for i, t in enumerate(texts):
        h = hashlib.sha256(t.encode()).digest()
        out[i] = np.frombuffer(h[:16], dtype=np.uint8).astype(np.float32) / 255.0
    return out


@pytest.fixture
def fake_text(monkeypatch):
    """Replace the sentence encoder by :func:`fake_embed_texts` (16-d)."""
    import robustfusion.data.text_features as tf

    monkeypatch.setattr(tf, "embed_texts", fake_embed_texts)
    return fake_embed_texts


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def build():
    """The builders above, as a namespace (test modules cannot import conftest reliably)."""
    from types import SimpleNamespace

    return SimpleNamespace(mult=make_mult, mult_split=make_mult_split, mmsa=make_mmsa, mmsa_split=make_mmsa_split,
                           pickle=write_pickle, mosi_npz=make_mosi_npz,
                           iemocap_npz=make_iemocap_npz)
