"""Your own features in one documented format: a folder with one ``.npz`` per split.

``DIR/train.npz``, ``DIR/valid.npz``, ``DIR/test.npz`` (all three), each written with
``numpy.savez`` (read back with ``allow_pickle=False``: strings are NumPy unicode arrays, never
Python objects). Keys of schema version 1:

=====================  ========  ==========================================================
key                    required  value
=====================  ========  ==========================================================
``schema_version``     yes       ``1`` (an integer scalar)
``feat_<modality>``    >= 1      ``[N, D]`` or ``[N, T, D]`` float features of one modality
                                 (``feat_text``, ``feat_audio``, any name: letters, digits, ``_``)
``mask_<modality>``    no        ``[N, T]`` bool: True = observed frame (sequences only)
``present_<modality>`` no        ``[N]`` bool: False = the modality is missing for that sample
``target``             yes       ``[N]``: float (regression) or integer class index (classification)
``group``              yes       ``[N]`` int or str: the speaker / video / dialogue; no group may
                                 appear in two splits
``id``                 no        ``[N]`` str or int, unique within the split
``transcript``         no        ``[N]`` str: the words of each sample (for text embeddings)
``task``               no        ``"regression"`` or ``"classification"`` (default: from
                                 ``target``'s dtype: integer -> classification)
``class_names``        no        ``[C]`` str (classification): the names of classes 0..C-1
``sentiment``          no        bool (regression, default False): the target is a sentiment
                                 score in [-3, 3], scored with the sentiment metrics (Acc-2,
                                 F1, Acc-7, MAE, Corr); otherwise MAE and Corr only
=====================  ========  ==========================================================

Every split must hold the same modalities with the same feature sizes and the same scalar keys.
Any other key is refused (a misspelt key would otherwise be ignored). :func:`check_npz_folder`
validates a folder and returns a summary (``robustfusion data check DIR`` prints it);
:func:`load_npz_folder` is the ``npz`` dataset of :func:`robustfusion.data.load_dataset`
(``robustfusion train configs/npz/gmc_pf.yaml data.path=DIR``). :func:`write_npz_split` writes
one split in the format from Python.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robustfusion.data.dataset import MultimodalDataset

__all__ = ["SCHEMA_VERSION", "SPLITS", "check_npz_folder", "format_summary", "load_npz_folder", "write_npz_split"]

#: The schema version this module reads and writes.
SCHEMA_VERSION = 1
#: The split files a folder holds.
SPLITS = ("train", "valid", "test")
_PREFIXES = ("feat_", "mask_", "present_")
_SCALARS = ("schema_version", "task", "sentiment")
_KNOWN = ("schema_version", "target", "group", "id", "transcript", "task", "class_names", "sentiment")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected a split file of the npz format, found none")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as err:  # an object array: pickled Python objects, refused
        raise ValueError(f"{path}: expected plain NumPy arrays (strings as unicode arrays, e.g. np.array(list_of_str)), "
                         f"found a pickled object array ({err})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{path}: expected an .npz file written by numpy.savez, found an unreadable file ({err})") \
            from None


def _scalar(arrays: dict[str, np.ndarray], key: str, where: str) -> Any:
    v = arrays[key]
    if v.shape != ():
        raise ValueError(f"{where}: {key!r}: expected a scalar, found shape {v.shape}")
    return v.item()


def _check_split(arrays: dict[str, np.ndarray], where: str) -> dict[str, Any]:
    """Validate one split's arrays; returns its parsed parts."""
    feats = _check_keys(arrays, where)
    target = arrays["target"]
    n = len(target) if target.ndim else -1
    if target.ndim != 1 or n == 0:
        raise ValueError(f"{where}: 'target': expected a non-empty [N] array, found shape {target.shape}")
    for m, x in feats.items():
        if x.ndim not in (2, 3) or x.shape[0] != n:
            raise ValueError(f"{where}: feat_{m}: expected [N, D] or [N, T, D] with N = {n} (the length of "
                             f"'target'), found shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{where}: feat_{m}: expected real numbers, found dtype {x.dtype}")
        if not np.isfinite(x).all():
            raise ValueError(f"{where}: feat_{m}: expected finite values, found {int((~np.isfinite(x)).sum())} "
                             "NaN/inf (mark missing data with present_/mask_ arrays instead)")
    masks = {k[len("mask_"):]: v for k, v in arrays.items() if k.startswith("mask_")}
    for m, fm in masks.items():
        if feats[m].ndim != 3 or fm.dtype != np.bool_ or fm.shape != feats[m].shape[:2]:
            raise ValueError(f"{where}: mask_{m}: expected a bool [N, T] = {feats[m].shape[:2]} array for a [N, T, D] "
                             f"modality, found dtype {fm.dtype} shape {fm.shape} for feat_{m} of shape {feats[m].shape}")
    present = {k[len("present_"):]: v for k, v in arrays.items() if k.startswith("present_")}
    for m, p in present.items():
        if p.dtype != np.bool_ or p.shape != (n,):
            raise ValueError(f"{where}: present_{m}: expected a bool [{n}] array, found dtype {p.dtype} shape {p.shape}")
    for key in ("group", "id", "transcript"):
        if key in arrays and arrays[key].shape != (n,):
            raise ValueError(f"{where}: {key!r}: expected shape ({n},), found {arrays[key].shape}")
    if "transcript" in arrays and arrays["transcript"].dtype.kind != "U":
        raise ValueError(f"{where}: 'transcript': expected strings, found dtype {arrays['transcript'].dtype}")
    if "id" in arrays and len(set(arrays["id"].tolist())) != n:
        raise ValueError(f"{where}: 'id': expected unique identifiers, found {n - len(set(arrays['id'].tolist()))} "
                         "repeated")
    task, class_names, sentiment = _check_task(arrays, target, where)
    return {"n": n, "feats": feats, "masks": masks, "present": present, "task": task, "class_names": class_names,
            "sentiment": sentiment, "arrays": arrays}


def _check_keys(arrays: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """Check the split's key names and schema version; returns its ``{modality: feat_ array}``."""
    unknown = sorted(k for k in arrays if k not in _KNOWN and not k.startswith(_PREFIXES))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; expected {list(_KNOWN)} and feat_/mask_/present_<modality>")
    if "schema_version" not in arrays:
        raise ValueError(f"{where}: expected a 'schema_version' key (= {SCHEMA_VERSION}), found keys {sorted(arrays)}")
    version = _scalar(arrays, "schema_version", where)
    if not isinstance(version, int) or isinstance(version, bool) or version != SCHEMA_VERSION:
        raise ValueError(f"{where}: schema_version: expected {SCHEMA_VERSION}, found {version!r}")
    feats = {k[len("feat_"):]: v for k, v in arrays.items() if k.startswith("feat_")}
    if not feats:
        raise ValueError(f"{where}: expected at least one feat_<modality> array, found keys {sorted(arrays)}")
    for m in feats:
        if not _NAME.fullmatch(m):
            raise ValueError(f"{where}: modality name {m!r}: expected letters, digits and _ (starting with a letter)")
    for prefix in ("mask_", "present_"):
        stray = sorted(k for k in arrays if k.startswith(prefix) and k[len(prefix):] not in feats)
        if stray:
            raise ValueError(f"{where}: {stray} name no modality; expected one of {sorted(feats)}")
    for key in ("target", "group"):
        if key not in arrays:
            raise ValueError(f"{where}: expected a {key!r} array, found keys {sorted(arrays)}")
    return feats


def _check_task(arrays: dict[str, np.ndarray], target: np.ndarray,
                where: str) -> tuple[str, list[str] | None, bool]:
    """The split's task, class names and sentiment flag, checked against its targets."""
    is_int = np.issubdtype(target.dtype, np.integer)
    task = str(_scalar(arrays, "task", where)) if "task" in arrays else ("classification" if is_int else "regression")
    if task not in ("regression", "classification"):
        raise ValueError(f"{where}: task: expected 'regression' or 'classification', found {task!r}")
    class_names = [str(c) for c in arrays["class_names"].tolist()] if "class_names" in arrays else None
    sentiment = bool(_scalar(arrays, "sentiment", where)) if "sentiment" in arrays else False
    if task == "classification":
        if not is_int and not (np.issubdtype(target.dtype, np.floating) and np.all(target == np.round(target))):
            raise ValueError(f"{where}: 'target': expected integer class indices for classification, found "
                             f"dtype {target.dtype}")
        lo, hi = int(target.min()), int(target.max())
        k = len(class_names) if class_names is not None else None
        if lo < 0 or (k is not None and hi >= k):
            raise ValueError(f"{where}: 'target': expected classes in [0, {(k - 1) if k else 'C-1'}], found "
                             f"[{lo}, {hi}]")
        if "sentiment" in arrays:
            raise ValueError(f"{where}: 'sentiment' applies to regression targets, found task 'classification'")
    else:
        if not np.issubdtype(target.dtype, np.floating) and not is_int:
            raise ValueError(f"{where}: 'target': expected numbers for regression, found dtype {target.dtype}")
        if not np.isfinite(target.astype(np.float64)).all():
            raise ValueError(f"{where}: 'target': expected finite values, found NaN or inf")
        if class_names is not None:
            raise ValueError(f"{where}: 'class_names' applies to classification, found task 'regression'")
        if sentiment and (target.min() < -3 or target.max() > 3):
            raise ValueError(f"{where}: sentiment=True: expected targets in [-3, 3], found "
                             f"[{float(target.min())}, {float(target.max())}]")
    return task, class_names, sentiment


def _check_folder(path: str | Path) -> dict[str, dict[str, Any]]:
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: expected a directory holding {', '.join(s + '.npz' for s in SPLITS)}, "
                                "found no such directory")
    missing = [f"{s}.npz" for s in SPLITS if not (root / f"{s}.npz").is_file()]
    if missing:
        raise FileNotFoundError(f"{root}: expected {', '.join(s + '.npz' for s in SPLITS)}, missing {missing} "
                                f"(found {sorted(p.name for p in root.iterdir())})")
    parts = {s: _check_split(_read(root / f"{s}.npz"), str(root / f"{s}.npz")) for s in SPLITS}
    ref = parts["train"]
    dims = {m: x.shape[2:] if x.ndim == 3 else x.shape[1:] for m, x in ref["feats"].items()}
    for s, part in parts.items():
        where = str(root / f"{s}.npz")
        found = {m: x.shape[2:] if x.ndim == 3 else x.shape[1:] for m, x in part["feats"].items()}
        if found != dims:
            raise ValueError(f"{where}: expected the modalities and feature sizes of train.npz "
                             f"{ {m: d[-1] for m, d in dims.items()} }, found { {m: d[-1] for m, d in found.items()} }")
        for key in ("task", "class_names", "sentiment"):
            if part[key] != ref[key]:
                raise ValueError(f"{where}: {key}: expected {ref[key]!r} as in train.npz, found {part[key]!r}")
    groups = {s: set(np.asarray(p["arrays"]["group"]).tolist()) for s, p in parts.items()}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            shared = groups[a] & groups[b]
            if shared:
                raise ValueError(f"{root}: groups must not be shared between splits; {a}.npz and {b}.npz share "
                                 f"{len(shared)} group(s), e.g. {sorted(map(str, shared))[:3]}")
    if ref["task"] == "classification":
        k = len(ref["class_names"]) if ref["class_names"] else max(int(p["arrays"]["target"].max()) for p in
                                                                  parts.values()) + 1
        for p in parts.values():
            p["num_classes"] = k
    return parts


def check_npz_folder(path: str | Path) -> dict[str, Any]:
    """Validate the folder ``path`` (module docstring); ``ValueError`` / ``FileNotFoundError``
    naming the file, the key, what was expected and what was found. Returns a summary:
    ``{"path", "task", "sentiment", "class_names", "num_classes", "modalities": {name: {"dim",
    "frames" (T or None), "masked", "missing" per split}}, "splits": {split: {"samples", "groups",
    "transcripts"}}}``."""
    parts = _check_folder(path)
    ref = parts["train"]
    modalities = {}
    for m, x in ref["feats"].items():
        modalities[m] = {"dim": int(x.shape[-1]), "frames": int(x.shape[1]) if x.ndim == 3 else None,
                         "masked": any(m in p["masks"] for p in parts.values()),
                         "missing": {s: int((~p["present"][m]).sum()) if m in p["present"] else 0
                                     for s, p in parts.items()}}
    return {"path": str(path), "task": ref["task"], "sentiment": ref["sentiment"], "class_names": ref["class_names"],
            "num_classes": ref.get("num_classes"), "modalities": modalities,
            "splits": {s: {"samples": p["n"], "groups": len(set(p["arrays"]["group"].tolist())),
                           "transcripts": "transcript" in p["arrays"]} for s, p in parts.items()}}


def format_summary(summary: Mapping[str, Any]) -> str:
    """The few lines ``robustfusion data check`` prints for :func:`check_npz_folder`'s summary."""
    task = summary["task"]
    if task == "classification":
        task += f", {summary['num_classes']} classes" + (f" {summary['class_names']}" if summary["class_names"] else "")
    else:
        task += ", sentiment score (sentiment metrics)" if summary["sentiment"] else ", a score (MAE and Corr)"
    lines = [f"{summary['path']}: npz format version {SCHEMA_VERSION}, valid", f"task: {task}"]
    for m, info in summary["modalities"].items():
        shape = f"[N, {info['frames']}, {info['dim']}]" if info["frames"] else f"[N, {info['dim']}]"
        missing = ", ".join(f"{s} {k}" for s, k in info["missing"].items() if k)
        lines.append(f"modality {m}: {shape}" + (", frame masks" if info["masked"] else "")
                     + (f", missing in {missing} samples" if missing else ""))
    for s, info in summary["splits"].items():
        lines.append(f"{s}: {info['samples']} samples, {info['groups']} groups"
                     + (", transcripts" if info["transcripts"] else ""))
    return "\n".join(lines)


def load_npz_folder(path: str | Path, name: str = "npz", text_from_transcripts: bool = False,
                    text_cache_dir: str | Path | None = None) -> dict[str, MultimodalDataset]:
    """The ``npz`` dataset: ``{"train", "valid", "test": MultimodalDataset}`` from a folder in the
    format of the module docstring (validated first, as :func:`check_npz_folder`).

    Args:
        path: the folder.
        name: the dataset name in result rows.
        text_from_transcripts: make the ``text`` modality ``[N, 384]`` MiniLM sentence embeddings
            of ``transcript`` (:func:`robustfusion.data.text_features.embed_texts`, offline, cached
            in ``text_cache_dir``), replacing a ``feat_text`` if the files have one; every split
            must have ``transcript``. ``data.options.text_from_transcripts=true`` on the command line.
        text_cache_dir: the embedding cache (default: the user cache of ``embed_texts``).

    ``meta`` of each split holds ``group`` (the group ids, for grouped resampling),
    ``transcript`` (when present), ``label_names`` (``class_names``), ``sentiment`` and ``source``.
    """
    parts = _check_folder(path)
    if text_from_transcripts:
        lacking = [s for s, p in parts.items() if "transcript" not in p["arrays"]]
        if lacking:
            raise ValueError(f"{path}: text_from_transcripts=true expected a 'transcript' array in every split, "
                             f"found none in {[s + '.npz' for s in lacking]}")
        from robustfusion.data.text_features import embed_texts
        from robustfusion.encoders.text import load_sentence_transformer

        model = load_sentence_transformer()
        for p in parts.values():
            p["feats"]["text"] = embed_texts([str(t) for t in p["arrays"]["transcript"].tolist()],
                                             cache_dir=text_cache_dir, model=model)
            p["masks"].pop("text", None)
    out = {}
    for s, p in parts.items():
        a = p["arrays"]
        modalities = list(p["feats"])
        present = None
        if p["present"]:
            present = np.stack([p["present"].get(m, np.ones(p["n"], dtype=bool)) for m in modalities], axis=1)
        meta: dict[str, Any] = {"source": str(Path(path) / f"{s}.npz"), "format": f"npz-v{SCHEMA_VERSION}",
                                "sentiment": p["sentiment"]}
        if "transcript" in a:
            meta["transcript"] = [str(t) for t in a["transcript"].tolist()]
        if p["class_names"]:
            meta["label_names"] = p["class_names"]
        ids = [str(i) for i in a["id"].tolist()] if "id" in a else None
        target = a["target"].astype(np.int64 if p["task"] == "classification" else np.float32)
        out[s] = MultimodalDataset({m: x.astype(np.float32) for m, x in p["feats"].items()}, target, task=p["task"],
                                   num_outputs=p.get("num_classes", 1), frame_masks=p["masks"] or None,
                                   present=present, ids=ids, name=name, meta=meta,
                                   groups=[str(g) for g in a["group"].tolist()])
    return out


def write_npz_split(path: str | Path, features: Mapping[str, np.ndarray], target: np.ndarray, group: Sequence,
                    *, masks: Mapping[str, np.ndarray] | None = None, present: Mapping[str, np.ndarray] | None = None,
                    ids: Sequence | None = None, transcripts: Sequence[str] | None = None, task: str | None = None,
                    class_names: Sequence[str] | None = None, sentiment: bool | None = None) -> Path:
    """Write one split file in the format (``numpy.savez_compressed``) and validate it.

    Args:
        path: the file, e.g. ``DIR/train.npz``.
        features: ``{modality: [N, D] or [N, T, D]}``.
        target: ``[N]`` float (regression) or integer classes (classification).
        group: ``[N]`` group ids (speaker, video, dialogue).
        masks: ``{modality: [N, T] bool}`` frame masks (optional).
        present: ``{modality: [N] bool}`` presence (optional).
        ids: ``[N]`` unique sample ids (optional).
        transcripts: ``[N]`` strings (optional).
        task: ``"regression"`` or ``"classification"`` (optional).
        class_names: ``[C]`` class names (optional, classification).
        sentiment: the target is a sentiment score in [-3, 3] (optional, regression).

    Returns:
        ``path``.
    """
    arrays: dict[str, np.ndarray] = {"schema_version": np.array(SCHEMA_VERSION), "target": np.asarray(target),
                                     "group": np.asarray(list(group))}
    arrays.update({f"feat_{m}": np.asarray(x) for m, x in features.items()})
    arrays.update({f"mask_{m}": np.asarray(x, dtype=bool) for m, x in (masks or {}).items()})
    arrays.update({f"present_{m}": np.asarray(x, dtype=bool) for m, x in (present or {}).items()})
    if ids is not None:
        arrays["id"] = np.asarray(list(ids))
    if transcripts is not None:
        arrays["transcript"] = np.asarray([str(t) for t in transcripts])
    if task is not None:
        arrays["task"] = np.array(task)
    if class_names is not None:
        arrays["class_names"] = np.asarray([str(c) for c in class_names])
    if sentiment is not None:
        arrays["sentiment"] = np.array(bool(sentiment))
    path = Path(path)
    _check_split(arrays, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path
