"""Loader for the IEMOCAP utterance-level npz layout (text from transcripts + 8 acoustic features).

Layout (Busso et al., "IEMOCAP: Interactive emotional dyadic motion capture database", LRE 2008;
this project's ``iemocap-ta`` copy): a directory with ``<split>.npz`` files (``train.npz``,
``valid.npz``, ``test.npz``), each holding ``[N]`` arrays ``utterance_id``, ``dialogue_id``,
``speaker``, ``transcript`` (strings), ``session``, ``emotion6`` (0-5), ``emotion4`` (0-3, ``-1``
outside the four classes) and ``audio`` ``[N, 8]``; optionally ``audio_feature_names``,
``emotion4_names``, ``emotion6_names``. Read with ``allow_pickle=False``.

Modalities: ``text`` (sentence embeddings of ``transcript``, :mod:`.transcript_text`; the files
hold no text vector) and ``audio``. Two modalities, three subsets.

Task: ``labels="emotion4"`` (default; the 4-way task of MulT / MMIN / GCNet: ``happy`` with
``excited`` merged, ``sad``, ``neutral``, ``angry``; utterances labelled ``-1`` are left out) or
``"emotion6"`` (the 6-way conversational task). Single-label classification: ``Acc``,
``F1_weighted`` and per emotion ``<name>_F1``, ``<name>_bin_acc``, ``<name>_bin_F1`` (MulT's
per-emotion figures, :func:`robustfusion.metrics.classification_metrics`).

Audio (this library's choice, measured on Session 4, see the README): ``audio_transform``
``"signed_log1p"`` (default) maps every feature through ``sign(x) log(1 + |x| / s)`` with ``s``
the feature's median absolute value on the training split (the heavy tails of ``auto_corr_std``
and the gain-driven ``rmse_*`` become additive shifts); ``"none"`` keeps the raw values. With
``speaker_norm=True`` each speaker's (transformed) audio is then z-scored with that speaker's
own mean and standard deviation over every utterance of the speaker in its file (labels are
never used; the recording gain differs between sessions). Finally every modality is
standardised with the training split's statistics (``standardize=True``).

Group key: ``dialogue_id`` (the dataset's ``groups``); ``meta`` also keeps ``dialogue_id``,
``speaker``, ``session`` and ``transcript`` indexed like the split. A split whose file is absent
is carved out of ``train.npz`` by whole dialogues, and ``crossfit_folds=K`` deals the dialogues of
``valid.npz`` into ``K`` folds (fold ``crossfit_fold`` is ``test``), with the rules of
:mod:`robustfusion.data.mosi_utterance` applied to dialogues instead of videos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustfusion.data import checks
from robustfusion.data._common import SPLITS, handle_nonfinite
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.data.mosi_utterance import cut_group_splits

__all__ = ["AUDIO_TRANSFORMS", "IEMOCAP_LABELS", "IEMOCAP_UTTERANCE_KEYS", "load_iemocap_utterance",
           "speaker_normalise"]

IEMOCAP_UTTERANCE_KEYS = ("utterance_id", "dialogue_id", "speaker", "transcript", "audio", "emotion4", "emotion6")
#: ``labels`` option -> (number of classes, default class names)
IEMOCAP_LABELS = {"emotion4": (4, ("happy", "sad", "neutral", "angry")),
                  "emotion6": (6, ("happy", "sad", "neutral", "angry", "excited", "frustrated"))}
AUDIO_TRANSFORMS = ("signed_log1p", "none")
_STRING_KEYS = ("utterance_id", "dialogue_id", "speaker", "transcript")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    data = checks.read_table_npz(path, "an IEMOCAP utterance .npz archive", IEMOCAP_UTTERANCE_KEYS, "utterance_id")
    n = data["utterance_id"].shape[0]
    for k in _STRING_KEYS:  # bytes decoded as UTF-8 (or refused), never embedded as "b'...'"
        data[k] = np.array(checks.decode_text_array(data[k], path, k), dtype=str)
    checks.check_nonempty(path, path.stem, n)
    checks.check_unique_ids(path, "utterance_id", data["utterance_id"].tolist())
    if data["audio"].dtype.kind not in "biuf" or data["audio"].ndim != 2:
        raise ValueError(f"{path}: 'audio': expected numeric [N, D] utterance features, found dtype "
                         f"{data['audio'].dtype} shape {data['audio'].shape}")
    for k in ("emotion4", "emotion6"):
        y = data[k]
        if y.dtype.kind not in "biu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
            raise ValueError(f"{path}: {k!r}: expected integer class labels, found dtype {y.dtype}")
    return data


def _check_labels(y: np.ndarray, k: int, allow_missing: bool, source: str, key: str) -> None:
    low = -1 if allow_missing else 0
    if y.size and (y.min() < low or y.max() >= k):
        raise ValueError(f"{source}: {key!r}: expected labels in [{low}, {k - 1}]"
                         f"{' (-1: outside the classes)' if allow_missing else ''}, found values in "
                         f"[{int(y.min())}, {int(y.max())}]")


def speaker_normalise(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """``x`` ``[N, D]`` with each speaker's rows z-scored by that speaker's own mean and standard
    deviation (a constant column of a speaker becomes 0)."""
    x = np.asarray(x, dtype=np.float64)
    speakers = np.asarray(speakers)
    if speakers.shape != (x.shape[0],):
        raise ValueError(f"speaker_normalise: expected {x.shape[0]} speaker ids, found shape {speakers.shape}")
    out = np.empty_like(x)
    for spk in np.unique(speakers):
        sel = speakers == spk
        mu, sd = x[sel].mean(axis=0), x[sel].std(axis=0)
        out[sel] = (x[sel] - mu) / np.where(sd > 1e-12, sd, 1.0)
    return out.astype(np.float32)


def _signed_log1p(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (np.sign(x) * np.log1p(np.abs(x) / scale)).astype(np.float32)


def _read_files(root: Path) -> tuple[dict[str, Path], dict[str, dict[str, np.ndarray]]]:
    """The ``<split>.npz`` files found in ``root`` (``train.npz`` required) and their checked arrays."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: expected a directory holding IEMOCAP utterance <split>.npz files "
                                "(at least train.npz), found no such directory")
    if not (root / "train.npz").is_file():
        raise FileNotFoundError(f"{root}: expected train.npz in the IEMOCAP utterance directory, found "
                                f"{sorted(p.name for p in root.iterdir())}")
    files = {s: root / f"{s}.npz" for s in SPLITS if (root / f"{s}.npz").is_file()}
    return files, {s: _read_npz(p) for s, p in files.items()}


def _check_files(raw: dict[str, dict[str, np.ndarray]], files: dict[str, Path], labels: str) -> tuple[int, list[str]]:
    """Check every file's labels and audio width against ``train.npz``; the class count and names."""
    k, default_names = IEMOCAP_LABELS[labels]
    for s, d in raw.items():
        _check_labels(d[labels], k, labels == "emotion4", str(files[s]), labels)
        width = raw["train"]["audio"].shape[1]
        if d["audio"].shape[1] != width:
            raise ValueError(f"{files[s]}: 'audio': expected feature width {width} (as in {files['train']}), "
                             f"found {d['audio'].shape[1]}")
    names_key = f"{labels}_names"
    names = [str(n) for n in raw["train"][names_key]] if names_key in raw["train"] else list(default_names)
    if len(names) != k:
        raise ValueError(f"{files['train']}: {names_key!r}: expected {k} class names, found {len(names)}")
    return k, names


def _transform_audio(raw: dict[str, dict[str, np.ndarray]], files: dict[str, Path], audio_transform: str,
                     speaker_norm: bool, nonfinite: str) -> None:
    """Per-file audio work in place, using no statistics of another split (transform scale from train only)."""
    scale = None
    if audio_transform == "signed_log1p":
        med = np.median(np.abs(raw["train"]["audio"].astype(np.float64)), axis=0)
        scale = np.where(med > 1e-12, med, 1.0)
    for s, d in raw.items():
        a, _ = handle_nonfinite(d["audio"].astype(np.float32), nonfinite, str(files[s]), "'audio'")
        if scale is not None:
            a = _signed_log1p(a, scale)
        if speaker_norm:
            a = speaker_normalise(a, d["speaker"])
        d["audio"] = a


def _keep_labelled(raw: dict[str, dict[str, np.ndarray]], sources: dict[str, str], labels: str) -> None:
    """Keep the task's utterances only (4-way: ``-1`` left out), in place; refuse a split left empty."""
    for s in SPLITS:
        keep = raw[s][labels] >= 0
        n = keep.shape[0]
        raw[s] = {key: (v[keep] if v.shape[:1] == (n,) else v) for key, v in raw[s].items()}
        if not keep.any():
            raise ValueError(f"{sources[s]}: split {s!r}: expected utterances labelled for {labels}, found none")


def _features(raw: dict[str, dict[str, np.ndarray]], text_model: str | Path | None,
              text_cache_dir: str | Path | None,
              standardize: bool) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, np.ndarray]]]:
    """Each split's ``text`` and ``audio`` features, standardised with train's statistics (returned too)."""
    from robustfusion.data.transcript_text import text_from_transcripts

    texts = text_from_transcripts({s: raw[s]["transcript"].tolist() for s in SPLITS}, "transcript",
                                  model_path=text_model, cache_dir=text_cache_dir)
    feats = {s: {"text": texts[s], "audio": raw[s]["audio"].astype(np.float32)} for s in SPLITS}
    stats = {}
    if standardize:
        for m in ("text", "audio"):
            mu = feats["train"][m].mean(axis=0)
            sd = feats["train"][m].std(axis=0)
            sd = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
            stats[m] = {"mean": mu, "std": sd}
            for s in SPLITS:
                feats[s][m] = ((feats[s][m] - mu) / sd).astype(np.float32)
    return feats, stats


def load_iemocap_utterance(path: str | Path, split_seed: int = 0, name: str = "iemocap_utterance",
                           labels: str = "emotion4", text_model: str | Path | None = None,
                           text_cache_dir: str | Path | None = None, audio_transform: str = "signed_log1p",
                           speaker_norm: bool = False, standardize: bool = True, nonfinite: str = "error",
                           valid_fraction: float = 0.15, test_fraction: float = 0.2, crossfit_folds: int = 0,
                           crossfit_fold: int = 0, allow_shared_groups: bool = False) -> dict[str, MultimodalDataset]:
    """Read ``<split>.npz`` files from the directory ``path`` (module docstring).

    Args:
        path: directory holding at least ``train.npz``.
        split_seed: seed of the dialogue-grouped carving / cross-fitting.
        labels: ``"emotion4"`` (default; ``-1`` utterances left out) or ``"emotion6"``.
        text_model, text_cache_dir: the sentence-transformers directory (default: the packaged
            MiniLM) and the embedding cache (default ``$ROBUSTFUSION_CACHE/text``).
        audio_transform: ``"signed_log1p"`` (default) or ``"none"``.
        speaker_norm: z-score each speaker's audio with its own statistics.
        standardize: z-score every modality with the training split's statistics.
        nonfinite: ``"error"`` (default) or ``"zero"`` for NaN / inf audio values.
        valid_fraction, test_fraction: dialogue fractions carved from ``train.npz`` for absent files.
        crossfit_folds, crossfit_fold: ``K >= 2`` deals the dialogues of ``valid.npz`` into ``K``
            folds, fold ``crossfit_fold`` being ``test``; needs ``valid.npz`` and no ``test.npz``.
        allow_shared_groups: accept ``<split>.npz`` files that share a ``dialogue_id`` (default:
            refused, :func:`robustfusion.data.checks.check_disjoint_groups`); an utterance in two
            files is always refused.

    Returns:
        ``{"train", "valid", "test": MultimodalDataset}``, ``task="classification"``, ids =
        ``utterance_id``, ``meta["label_names"]`` the class names.
    """
    if labels not in IEMOCAP_LABELS:
        raise ValueError(f"labels: expected one of {list(IEMOCAP_LABELS)}, found {labels!r}")
    if audio_transform not in AUDIO_TRANSFORMS:
        raise ValueError(f"audio_transform: expected one of {list(AUDIO_TRANSFORMS)}, found {audio_transform!r}")
    root = Path(path)
    files, raw = _read_files(root)
    k, names = _check_files(raw, files, labels)
    _transform_audio(raw, files, audio_transform, speaker_norm, nonfinite)
    split_groups, carve = cut_group_splits(raw, files, root, "dialogue_id", split_seed, valid_fraction, test_fraction,
                                      crossfit_folds, crossfit_fold)
    sources = {s: str(files.get(s, root / "train.npz")) for s in SPLITS}
    checks.check_disjoint_groups({s: raw[s]["utterance_id"].tolist() for s in SPLITS}, sources, "utterance_id", option=None)
    checks.check_disjoint_groups({s: raw[s]["dialogue_id"].tolist() for s in SPLITS}, sources, "dialogue_id",
                                 allow=allow_shared_groups, option=checks.ALLOW_SHARED_GROUPS)
    _keep_labelled(raw, sources, labels)
    feats, stats = _features(raw, text_model, text_cache_dir, standardize)
    out = {}
    for s in SPLITS:
        r = raw[s]
        meta = {"source": sources[s], "format": "iemocap_utterance", "split": s, "carved": s in carve,
                "label_names": names, "labels": labels, "group_key": "dialogue_id",
                "dialogue_id": r["dialogue_id"].tolist(),
                "speaker": r["speaker"].tolist(), "transcript": r["transcript"].tolist(),
                "session": [int(x) for x in r["session"]] if "session" in r else None,
                "split_groups": {key: v.tolist() for key, v in split_groups.items()}, "split_seed": split_seed,
                "crossfit": [crossfit_fold, crossfit_folds] if crossfit_folds else None,
                "audio_transform": audio_transform, "speaker_norm": speaker_norm, "standardize": stats}
        out[s] = MultimodalDataset(feats[s], r[labels].astype(np.int64), task="classification", num_outputs=k,
                                   ids=r["utterance_id"].tolist(), name=name, meta=meta,
                                   groups=r["dialogue_id"].tolist())
    return out
