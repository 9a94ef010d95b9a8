"""Loader for the MulT pickles (``mosi_data.pkl``, ``mosei_senti_data.pkl``, ``iemocap_data.pkl``
and their ``*_data_noalign.pkl`` variants).

Format (Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences",
ACL 2019, arXiv 1906.00295; GMC, arXiv 2202.03390, trains on the same files): a dict
``d[split]`` for ``split`` in ``train``/``valid``/``test``, each a dict of numpy arrays

* ``text`` ``[N, T, 300]`` (GloVe), ``audio`` ``[N, T, 5|74]`` (COVAREP), ``vision``
  ``[N, T, 20|35]`` (Facet); ``T`` = 50 for MOSI/MOSEI, 20 for IEMOCAP (aligned files; the
  ``noalign`` files have a different ``T`` per modality). All sizes are read from the arrays.
* ``labels``: sentiment ``[N, 1, 1]`` in [-3, 3] (MOSI, MOSEI) or IEMOCAP ``[N, 4, 2]``: for each
  of Neutral, Happy, Sad, Angry a one-hot pair whose index 1 means "emotion present" (MulT's
  ``src/dataset.py`` takes ``argmax`` over the last axis, its ``eval_iemocap`` scores each emotion
  as a binary decision). IEMOCAP is therefore a 4-label *multilabel* task here, named as MulT
  prints them (:data:`robustfusion.metrics.IEMOCAP_EMOTIONS`).
* ``id``: sample identifiers (optional: MulT reads them only when the key exists).

:func:`write_example_mult_pickle` writes a small file in these layouts (random features with a
learnable signal) for trying a config end to end before the real file is at hand.

Sequences are zero-padded; with ``padding="zeros"`` (default) an all-zero frame is marked
unobserved in the frame mask, and a sample with no non-zero frame in a modality is marked as
missing that modality (``present`` False): it carries no information.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from robustfusion.data._common import (
    SPLITS,
    as_float_array,
    as_str_ids,
    check_feature_widths,
    check_label_range,
    handle_nonfinite,
    load_split_pickle,
    require_keys,
    zero_frame_mask,
)
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.metrics import IEMOCAP_EMOTIONS  # MulT's names: Neutral, Happy, Sad, Angry

__all__ = ["EXAMPLE_LAYOUTS", "IEMOCAP_EMOTIONS", "MULT_MODALITIES", "load_mult", "write_example_mult_pickle"]

MULT_MODALITIES = ("text", "audio", "vision")
PADDING_OPTIONS = ("zeros", "none")

#: The published aligned files' shapes: ``{layout: ((text, audio, vision) widths, frames T, label kind)}``
#: (``iemocap_data.pkl``: ``[N, 20, 300]`` / ``[N, 20, 74]`` / ``[N, 20, 35]`` and labels ``[N, 4, 2]``).
EXAMPLE_LAYOUTS: dict[str, tuple[tuple[int, int, int], int, str]] = {
    "mosi": ((300, 5, 20), 50, "sentiment"),
    "mosei_senti": ((300, 74, 35), 50, "sentiment"),
    "iemocap": ((300, 74, 35), 20, "iemocap"),
}


def _targets(labels: object, source: str, split: str, n: int, sentiment_range: tuple[float, float]):
    y = np.asarray(labels)
    if y.shape[0] != n:
        raise ValueError(f"{source}: split {split!r}: expected {n} labels, found shape {y.shape}")
    if y.ndim == 3 and y.shape[1:] == (4, 2):  # IEMOCAP
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{source}: split {split!r}: expected IEMOCAP labels of 0/1 pairs (N, 4, 2), "
                             f"found values {np.unique(y)[:8].tolist()}")
        return np.argmax(y, axis=-1).astype(np.float32), "multilabel", 4
    flat = y.reshape(n, -1)
    if flat.shape[1] != 1:
        raise ValueError(f"{source}: split {split!r}: expected sentiment labels (N, 1, 1) or IEMOCAP labels "
                         f"(N, 4, 2), found shape {y.shape}")
    t = flat[:, 0].astype(np.float32)
    check_label_range(t, *sentiment_range, source, f"split {split!r} labels")
    return t, "regression", 1


def load_mult(path: str | Path, name: str = "mult", nonfinite: str = "zero", padding: str = "zeros",
              sentiment_range: tuple[float, float] = (-3.0, 3.0),
              splits: tuple[str, ...] = SPLITS) -> dict[str, MultimodalDataset]:
    """Read a MulT pickle into ``{split: MultimodalDataset}`` with modalities text/audio/vision.

    Args:
        path: the ``.pkl`` file.
        name: dataset name stored on every split (``.name``).
        nonfinite: ``"zero"`` (default; MOSEI's COVAREP audio holds ``-inf``, which MulT and MMSA
            also set to 0) replaces NaN/±inf by 0 and records the count in
            ``meta["nonfinite_replaced"]``; ``"error"`` raises.
        padding: ``"zeros"`` (default) marks all-zero frames as padding (see module docstring);
            ``"none"`` treats every frame as observed.
        sentiment_range: allowed range of sentiment labels.

    Returns:
        ``{split: MultimodalDataset}``; sentiment files give ``task="regression"`` targets ``[N]``,
        IEMOCAP gives ``task="multilabel"`` targets ``[N, 4]`` (0/1, Neutral/Happy/Sad/Angry).

    Raises:
        FileNotFoundError / ValueError naming the file and what was expected (missing split or key,
        wrong shape, labels out of range, non-finite features with ``nonfinite="error"``,
        truncated or non-pickle file); ``UnsafePickleError`` for disallowed pickle globals.
    """
    if padding not in PADDING_OPTIONS:
        raise ValueError(f"padding: expected one of {list(PADDING_OPTIONS)}, found {padding!r}")
    source, data = load_split_pickle(path, splits)
    out: dict[str, MultimodalDataset] = {}
    for split in splits:
        d = data[split]
        require_keys(d, (*MULT_MODALITIES, "labels"), source, split)
        feats, masks, replaced = {}, {}, {}
        n = None
        for m in MULT_MODALITIES:
            x = as_float_array(d[m], source, f"split {split!r} {m!r}", ndim=(3,))
            if n is None:
                n = x.shape[0]
            elif x.shape[0] != n:
                raise ValueError(f"{source}: split {split!r} {m!r}: expected {n} samples (as 'text'), "
                                 f"found shape {x.shape}")
            x, k = handle_nonfinite(x, nonfinite, source, f"split {split!r} {m!r}")
            replaced[m] = k
            feats[m] = x
            if padding == "zeros":
                masks[m] = zero_frame_mask(x)
        targets, task, k_out = _targets(d["labels"], source, split, n, sentiment_range)
        present = None
        if masks:
            present = np.stack([masks[m].any(axis=1) for m in MULT_MODALITIES], axis=1)
        meta = {"source": source, "format": "mult", "split": split, "nonfinite_replaced": replaced}
        if task == "multilabel":
            meta["label_names"] = IEMOCAP_EMOTIONS
        out[split] = MultimodalDataset(feats, targets, task=task, num_outputs=k_out, frame_masks=masks,
                                       present=present, ids=as_str_ids(d.get("id"), n), name=name, meta=meta)
    check_feature_widths(out)
    return out


def write_example_mult_pickle(path: str | Path, layout: str = "iemocap", sizes: tuple[int, int, int] = (256, 64, 64),
                              seed: int = 0, signal: float = 0.1) -> Path:
    """Write a small MulT pickle in the published layout ``layout`` (see :data:`EXAMPLE_LAYOUTS`).

    The file is what ``pickle.load`` gives for the real one: a dict with ``"train"``, ``"valid"``,
    ``"test"``, each a dict of ``text`` ``[N, T, 300]``, ``audio`` ``[N, T, 5|74]``, ``vision``
    ``[N, T, 20|35]`` (float32, zero-padded at the front as CMU-MultimodalSDK pads, at least
    ``T // 2`` real frames) and ``labels`` (float32 ``[N, 1, 1]`` sentiment in [-3, 3], or
    ``[N, 4, 2]`` one-hot pairs for IEMOCAP; no ``id`` key, which MulT treats as optional).
    The features are Gaussian noise plus ``signal`` times a per-modality direction of the sample's
    latent (its one emotion, of the four, for IEMOCAP; a standard normal score mapped to
    ``3 * tanh(score)`` for sentiment), so a model can learn something. It is a stand-in for
    trying a config, never a benchmark.

    Args:
        path: where to write (``iemocap_data.pkl`` etc.).
        layout: ``"iemocap"``, ``"mosi"`` or ``"mosei_senti"``.
        sizes: samples in train, valid and test (each >= 1).
        seed: NumPy seed; the same arguments give the same file.
        signal: strength of the learnable part (0 gives pure noise). With the default 0.1 a
            nearest-centroid rule on frame means finds the IEMOCAP emotion from text almost
            always, from vision in about 80% of the samples (wider features carry more of it), so
            the modality subsets differ and the ``iemocap_mult`` presets learn something.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    if layout not in EXAMPLE_LAYOUTS:
        raise ValueError(f"layout: expected one of {sorted(EXAMPLE_LAYOUTS)}, found {layout!r}")
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) != len(SPLITS) or min(sizes) < 1:
        raise ValueError(f"sizes: expected {len(SPLITS)} sample counts >= 1 (train, valid, test), found {sizes}")
    dims, frames, kind = EXAMPLE_LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    n_latent = len(IEMOCAP_EMOTIONS) if kind == "iemocap" else 1
    directions = {m: 0.5 * rng.standard_normal((n_latent, d)).astype(np.float32)
                  for m, d in zip(MULT_MODALITIES, dims, strict=True)}
    data = {}
    for split, n in zip(SPLITS, sizes, strict=True):
        if kind == "iemocap":
            emotion = rng.integers(0, n_latent, size=n)
            latent = np.eye(n_latent, dtype=np.float32)[emotion] * 2.0 - 1.0
            labels = np.zeros((n, n_latent, 2), dtype=np.float32)
            labels[:, :, 0] = 1.0
            labels[np.arange(n), emotion] = (0.0, 1.0)
        else:
            score = rng.standard_normal(n).astype(np.float32)
            latent = score[:, None]
            labels = (3.0 * np.tanh(score)).astype(np.float32).reshape(n, 1, 1)
        lengths = rng.integers(max(1, frames // 2), frames + 1, size=n)
        split_data: dict[str, np.ndarray] = {}
        for m, d in zip(MULT_MODALITIES, dims, strict=True):
            x = rng.standard_normal((n, frames, d)).astype(np.float32)
            x += signal * (latent @ directions[m])[:, None, :]
            x[np.arange(frames)[None, :] < (frames - lengths)[:, None]] = 0.0  # front padding
            split_data[m] = x
        split_data["labels"] = labels
        data[split] = split_data
    path = Path(path)
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)
    return path
