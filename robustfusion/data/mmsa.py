"""Loader for the MMSA pickles (``aligned_50.pkl``, ``unaligned_50.pkl``, SIMS ``unaligned_39.pkl``).

Format (thuiar/MMSA, Yu et al.; the files behind Self-MM, TFR-Net, EMT-DLFR): a dict
``d[split]`` for ``split`` in ``train``/``valid``/``test``, each a dict of numpy arrays

* ``text`` ``[N, L, 768]`` BERT features (``[N, L, 300]`` GloVe in older files; the size is
  read from the array), ``text_bert`` ``[N, 3, L]`` (BERT token ids, attention mask, segment
  ids), ``audio`` ``[N, T_a, D_a]``, ``vision`` ``[N, T_v, D_v]``;
* ``audio_lengths`` / ``vision_lengths`` ``[N]`` (unaligned files): the number of real frames,
  padding at the end;
* ``regression_labels`` ``[N]`` in [-3, 3] (MOSI, MOSEI) or [-1, 1] (SIMS); SIMS also has
  per-modality labels ``regression_labels_T`` / ``_A`` / ``_V``;
* ``id`` and ``raw_text`` ``[N]`` strings.

Frame masks: audio/vision from ``*_lengths`` (``t < length``) when present, otherwise all-zero
frames are padding; text from the attention mask ``text_bert[:, 1]`` when its length matches
``text``, otherwise the all-zero rule. ``meta["frame_mask_source"]`` records which rule was used.
MMSA itself zeroes ``-inf`` audio values; ``nonfinite="zero"`` (default) does the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustfusion.data import _common as common
from robustfusion.data.checks import decode_text_array
from robustfusion.data.dataset import MultimodalDataset

__all__ = ["MMSA_MODALITIES", "load_mmsa"]

MMSA_MODALITIES = ("text", "audio", "vision")
TEXT_FEATURE_OPTIONS = ("features", "minilm")


def load_mmsa(path: str | Path, name: str = "mmsa", nonfinite: str = "zero",
              label_range: tuple[float, float] = (-3.0, 3.0), text_features: str = "features",
              text_cache_dir: str | Path | None = None,
              splits: tuple[str, ...] = common.SPLITS) -> dict[str, MultimodalDataset]:
    """Read an MMSA pickle into ``{split: MultimodalDataset}`` (modalities text/audio/vision).

    Args:
        path: the ``.pkl`` file.
        name: dataset name stored on every split.
        nonfinite: ``"zero"`` (default) replaces NaN/±inf by 0 (count in
            ``meta["nonfinite_replaced"]``); ``"error"`` raises.
        label_range: allowed range of ``regression_labels`` ([-3, 3]; SIMS uses [-1, 1]).
        text_features: ``"features"`` (the ``text`` array, ``[N, L, D]``) or ``"minilm"``
            (384-d MiniLM sentence embeddings of ``raw_text``, ``[N, 384]``, cached on disk in
            ``text_cache_dir``; see :func:`robustfusion.data.text_features.embed_texts`).

    Returns:
        ``{split: MultimodalDataset}``, ``task="regression"``, targets ``[N]``. ``meta`` holds
        ``raw_text``, ``text_bert`` (when present) and, for SIMS, ``modality_labels``
        (``{"text"|"audio"|"vision": [N]}``), all indexed like the split.
    """
    if text_features not in TEXT_FEATURE_OPTIONS:
        raise ValueError(f"text_features: expected one of {list(TEXT_FEATURE_OPTIONS)}, found {text_features!r}")
    source, data = common.load_split_pickle(path, splits)
    out: dict[str, MultimodalDataset] = {}
    for split in splits:
        out[split] = _load_split(data[split], split, source, name, nonfinite, label_range, text_features,
                                 text_cache_dir)
    common.check_feature_widths(out)
    return out


def _load_split(d: dict, split: str, source: str, name: str, nonfinite: str, label_range: tuple[float, float],
                text_features: str, text_cache_dir: str | Path | None) -> MultimodalDataset:
    """One split's dict of arrays as a checked `MultimodalDataset` (see :func:`load_mmsa`)."""
    need = ["audio", "vision", "regression_labels"]
    need.insert(0, "raw_text" if text_features == "minilm" else "text")
    common.require_keys(d, tuple(need), source, split)
    where = f"split {split!r}"
    feats, replaced, n = _read_features(d, source, where, text_features, nonfinite)
    y = np.asarray(d["regression_labels"], dtype=np.float32).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{source}: {where}: expected {n} regression_labels, found shape "
                         f"{np.asarray(d['regression_labels']).shape}")
    common.check_label_range(y, *label_range, source, f"{where} regression_labels")
    masks, mask_source = _frame_masks(d, feats, n, source, where)
    raw_text = (decode_text_array(np.asarray(d["raw_text"], dtype=object).reshape(-1), source,
                                  f"split {split!r} raw_text", allow_numbers=True)
                if "raw_text" in d else None)  # bytes decoded as UTF-8 (or refused), never "b'...'"
    if text_features == "minilm":
        from robustfusion.data.text_features import embed_texts

        if raw_text is None or len(raw_text) != n:
            raise ValueError(f"{source}: {where}: expected {n} raw_text strings for text_features='minilm'")
        feats = {"text": embed_texts(raw_text, cache_dir=text_cache_dir), **feats}
    meta: dict[str, object] = {"source": source, "format": "mmsa", "split": split,
                               "nonfinite_replaced": replaced, "frame_mask_source": mask_source,
                               "raw_text": raw_text}
    if "text_bert" in d:
        meta["text_bert"] = np.asarray(d["text_bert"])
    per_mod = _modality_labels(d, source, where, label_range)
    if per_mod:
        meta["modality_labels"] = per_mod
    return MultimodalDataset(
        {m: feats[m] for m in MMSA_MODALITIES}, y, task="regression", num_outputs=1,
        frame_masks={m: masks[m] for m in MMSA_MODALITIES if m in masks},
        ids=(ids := common.as_str_ids(d.get("id"), n)), name=name, meta=meta,
        groups=[i.split("$_$")[0] for i in ids],  # MMSA ids are "<video>$_$<clip>"
    )


def _read_features(d: dict, source: str, where: str, text_features: str,
                   nonfinite: str) -> tuple[dict[str, np.ndarray], dict[str, int], int | None]:
    """The split's feature arrays (text only for ``"features"``), NaN/inf handled; replaced counts and ``N``."""
    feats, replaced = {}, {}
    if text_features == "features":
        t = np.asarray(d["text"])
        if t.ndim == 3 and t.shape[1] == 3 and np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"{source}: {where} 'text': expected features [N, L, D], found BERT token ids "
                             f"{t.shape}; use text_features='minilm' to embed raw_text instead")
        feats["text"] = common.as_float_array(t, source, f"{where} 'text'", ndim=(3,))
    n = None
    for m in ("audio", "vision"):
        feats[m] = common.as_float_array(d[m], source, f"{where} {m!r}", ndim=(3,))
    for m, x in feats.items():
        if n is None:
            n = x.shape[0]
        elif x.shape[0] != n:
            raise ValueError(f"{source}: {where} {m!r}: expected {n} samples, found shape {x.shape}")
        feats[m], replaced[m] = common.handle_nonfinite(x, nonfinite, source, f"{where} {m!r}")
    return feats, replaced, n


def _frame_masks(d: dict, feats: dict[str, np.ndarray], n: int | None, source: str,
                 where: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Frame masks from ``*_lengths`` / the ``text_bert`` attention mask / nonzero frames, and which rule."""
    masks, mask_source = {}, {}
    for m in ("audio", "vision"):
        key = f"{m}_lengths"
        if key in d and d[key] is not None:
            masks[m] = common.length_mask(d[key], feats[m].shape[1], n, source, f"{where} {key!r}")
            mask_source[m] = key
        else:
            masks[m] = common.zero_frame_mask(feats[m])
            mask_source[m] = "nonzero frames"
    if "text" in feats:
        tb = d.get("text_bert")
        tb = None if tb is None else np.asarray(tb)
        if tb is not None and tb.ndim == 3 and tb.shape[:2] == (n, 3) and tb.shape[2] == feats["text"].shape[1]:
            masks["text"] = tb[:, 1, :] > 0
            mask_source["text"] = "text_bert attention mask"
        else:
            masks["text"] = common.zero_frame_mask(feats["text"])
            mask_source["text"] = "nonzero frames"
    return masks, mask_source


def _modality_labels(d: dict, source: str, where: str, label_range: tuple[float, float]) -> dict[str, np.ndarray]:
    """SIMS per-modality labels ``regression_labels_T`` / ``_A`` / ``_V`` (range-checked), when present."""
    per_mod = {}
    for m, suffix in (("text", "T"), ("audio", "A"), ("vision", "V")):
        key = f"regression_labels_{suffix}"
        if key in d:
            ym = np.asarray(d[key], dtype=np.float32).reshape(-1)
            common.check_label_range(ym, *label_range, source, f"{where} {key}")
            per_mod[m] = ym
    return per_mod
