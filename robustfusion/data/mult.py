"""Loader for the MulT pickles (``mosi_data.pkl``, ``mosei_senti_data.pkl``, ``iemocap_data.pkl``
and their ``*_data_noalign.pkl`` variants).

Format (Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences",
ACL 2019, arXiv 1906.00295; GMC, arXiv 2202.03390, trains on the same files): a dict
``d[split]`` for ``split`` in ``train``/``valid``/``test``, each a dict of numpy arrays

* ``text`` ``[N, T, 300]`` (GloVe), ``audio`` ``[N, T, 5|74]`` (COVAREP), ``vision``
  ``[N, T, 20|35]`` (Facet); ``T`` = 50 for MOSI/MOSEI, 20 for IEMOCAP (aligned files; the
  ``noalign`` files have a different ``T`` per modality). All sizes are read from the arrays.
* ``labels``: sentiment ``[N, 1, 1]`` in [-3, 3] (MOSI, MOSEI) or IEMOCAP ``[N, 4, 2]``: for each
  of Neutral, Happy, Sad, Angry a one-hot pair whose index 1 means "emotion present" (MulT
  takes ``argmax`` over the last axis).
* ``id``: sample identifiers.

Sequences are zero-padded; with ``padding="zeros"`` (default) an all-zero frame is marked
unobserved in the frame mask, and a sample with no non-zero frame in a modality is marked as
missing that modality (``present`` False): it carries no information.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustfusion.data._common import (
    SPLITS,
    as_float_array,
    as_str_ids,
    check_feature_widths,
    check_label_range,
    handle_nonfinite,
    require_keys,
    require_splits,
    zero_frame_mask,
)
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.data.safe_pickle import safe_load_pickle

__all__ = ["IEMOCAP_EMOTIONS", "MULT_MODALITIES", "load_mult"]

MULT_MODALITIES = ("text", "audio", "vision")
IEMOCAP_EMOTIONS = ("neutral", "happy", "sad", "angry")
PADDING_OPTIONS = ("zeros", "none")


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
    source = str(path)
    data = safe_load_pickle(path)
    require_splits(data, source, splits)
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
