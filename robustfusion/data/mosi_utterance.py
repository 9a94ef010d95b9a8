"""Loader for the MOSI utterance-level npz layout (bc-LSTM features, one vector per segment).

Layout (Poria et al., "Context-Dependent Sentiment Analysis in User-Generated Videos", ACL 2017;
Zadeh et al., MOSI, arXiv 1606.06259): a directory with ``<split>.npz`` files, each holding
``segment_id``, ``video_id``, ``transcript`` ``[N]`` strings, ``sentiment`` ``[N]`` in [-3, 3],
``text`` ``[N, 100]``, ``audio`` ``[N, 73]``, ``vision`` ``[N, 100]``. Read with
``allow_pickle=False``.

**Carving rule** for a split whose file is absent (``valid`` and/or ``test``): the distinct
``video_id`` values of ``train.npz`` are sorted, permuted with
``numpy.random.default_rng(split_seed).permutation``, and consumed in that order: the first
``round(test_fraction * V)`` videos form ``test`` (only when ``test.npz`` is absent), the next
``round(valid_fraction * V)`` form ``valid`` (only when ``valid.npz`` is absent), the rest stay in
``train``. No video is in two splits. The chosen video ids are in ``meta["split_videos"]``.

**Cross-fitting on the validation videos** (``crossfit_folds=K >= 2``, ``crossfit_fold=k``): when
``valid.npz`` holds videos that no feature extractor saw (as in this project's bc-LSTM copy,
whose extractors were trained on every ``train.npz`` video) and there is no ``test.npz``, the
distinct videos of ``valid.npz`` are sorted, permuted with
``numpy.random.default_rng(split_seed).permutation`` and dealt into ``K`` folds (fold ``j`` takes
positions ``j, j + K, ...``); fold ``k`` becomes ``test`` and the other folds stay ``valid``, and
``train`` is the whole ``train.npz``. Running every ``k`` and pooling the ``test`` scores reports on
every leak-free video once, each time with epochs chosen and calibrations fitted on other videos
only (:func:`crossfit_video_folds`).

Features are standardised with the mean and standard deviation of the (carved) training part
only (``standardize=True``, default); the statistics are in ``meta["standardize"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustfusion.data._common import SPLITS, check_label_range, handle_nonfinite
from robustfusion.data.checks import (
    ALLOW_SHARED_GROUPS,
    check_disjoint_groups,
    check_nonempty,
    check_unique_ids,
    decode_text_array,
    read_table_npz,
    require_directory,
)
from robustfusion.data.dataset import MultimodalDataset

__all__ = ["MOSI_UTTERANCE_KEYS", "carve_video_splits", "crossfit_video_folds", "cut_group_splits", "load_mosi_utterance",
           "min_carvable_videos"]

MOSI_UTTERANCE_KEYS = ("segment_id", "video_id", "transcript", "sentiment", "text", "audio", "vision")
TEXT_FEATURE_OPTIONS = ("bclstm", "minilm", "both")
#: ``text_features`` -> :func:`robustfusion.data.transcript_text.text_from_transcripts` mode
_TEXT_MODE = {"bclstm": "given", "minilm": "transcript", "both": "both"}


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    data = read_table_npz(path, "a MOSI utterance .npz archive", MOSI_UTTERANCE_KEYS, "sentiment")
    n = data["sentiment"].shape[0]
    for k in ("text", "audio", "vision", "sentiment"):
        if data[k].dtype.kind not in "biuf":
            raise ValueError(f"{path}: {k!r}: expected numeric values, found dtype {data[k].dtype} "
                             f"(e.g. {data[k].reshape(-1)[:1].tolist()})")
    for k in ("text", "audio", "vision"):
        if data[k].ndim != 2:
            raise ValueError(f"{path}: {k!r}: expected [N, D] utterance features, found shape {data[k].shape}")
    check_nonempty(path, path.stem, n)
    for k in ("segment_id", "video_id", "transcript"):  # bytes decoded as UTF-8 (or refused), never "b'...'"
        data[k] = np.asarray(decode_text_array(data[k], path, k, allow_numbers=k != "transcript"), dtype=str)
    check_unique_ids(path, "segment_id", data["segment_id"].tolist())
    return data


def _carve_sizes(n_videos: int, carve: tuple[str, ...], valid_fraction: float, test_fraction: float) -> list[int] | None:
    """Videos taken by each carved split (test first) from ``n_videos``; ``None`` when a carved split
    would get none or nothing would stay in ``train``."""
    sizes, start = [], 0
    for split, frac in (("test", test_fraction), ("valid", valid_fraction)):
        if split in carve:
            k = round(frac * n_videos)
            if k < 1 or start + k >= n_videos:
                return None
            sizes.append(k)
            start += k
    return sizes


def min_carvable_videos(carve: tuple[str, ...], valid_fraction: float = 0.15, test_fraction: float = 0.2) -> int | None:
    """The fewest training videos from which every split in ``carve`` can be carved with these
    fractions (``None``: no number of videos can, e.g. a fraction of 0)."""
    for n in range(1, 100_001):
        if _carve_sizes(n, carve, valid_fraction, test_fraction) is not None:
            return n
    return None


def carve_video_splits(video_ids: np.ndarray, carve: tuple[str, ...], split_seed: int = 0,
                       valid_fraction: float = 0.15, test_fraction: float = 0.2,
                       source: str = "train.npz") -> dict[str, np.ndarray]:
    """Assign distinct videos to the splits in ``carve`` (see the module docstring's rule).

    ``source``: the file the videos come from (named in errors).

    Returns ``{split: sorted array of video ids}`` for ``"train"`` and every split in ``carve``.
    """
    for f, what in ((valid_fraction, "valid_fraction"), (test_fraction, "test_fraction")):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{what}: expected a fraction in [0, 1), found {f}")
    videos = np.array(sorted(set(np.asarray(video_ids).tolist())))
    order = videos[np.random.default_rng(split_seed).permutation(len(videos))]
    out, start = {}, 0
    for split, frac in (("test", test_fraction), ("valid", valid_fraction)):
        if split in carve:
            k = round(frac * len(videos))
            if k < 1 or start + k >= len(videos):
                need = min_carvable_videos(carve, valid_fraction, test_fraction)
                key = f"{split}_fraction"
                minimum = (f"these fractions need at least {need} distinct videos" if need is not None
                           else f"{key}={frac} carves no video from any number of videos")
                raise ValueError(f"{source}: cannot carve {split!r} ({split}.npz is absent) from {len(videos)} "
                                 f"distinct training videos with {key}={frac}: {minimum}; provide {split}.npz, "
                                 f"add videos or change {key}")
            out[split] = np.sort(order[start:start + k])
            start += k
    out["train"] = np.sort(order[start:])
    return out


def crossfit_video_folds(video_ids: np.ndarray, folds: int, fold: int, split_seed: int = 0) -> dict[str, np.ndarray]:
    """``{"valid", "test"}``: sorted video ids of the other folds and of fold ``fold`` (see the
    module docstring's cross-fitting rule)."""
    videos = np.array(sorted(set(np.asarray(video_ids).tolist())))
    if not 2 <= folds <= len(videos):
        raise ValueError(f"crossfit_folds: expected 2 <= folds <= {len(videos)} (the number of validation "
                         f"videos), found {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"crossfit_fold: expected 0 <= fold < {folds}, found {fold}")
    order = videos[np.random.default_rng(split_seed).permutation(len(videos))]
    held = np.zeros(len(order), dtype=bool)
    held[fold::folds] = True
    return {"valid": np.sort(order[~held]), "test": np.sort(order[held])}


def load_mosi_utterance(path: str | Path, split_seed: int = 0, name: str = "mosi_utterance",
                        text_features: str = "bclstm", text_cache_dir: str | Path | None = None,
                        text_model: str | Path | None = None,
                        valid_fraction: float = 0.15, test_fraction: float = 0.2, standardize: bool = True,
                        nonfinite: str = "error", crossfit_folds: int = 0,
                        crossfit_fold: int = 0, allow_shared_groups: bool = False) -> dict[str, MultimodalDataset]:
    """Read ``<split>.npz`` files from the directory ``path`` (carving absent splits from train).

    Args:
        path: directory holding at least ``train.npz``.
        split_seed: seed of the carving rule (module docstring).
        text_features: ``"bclstm"`` (the file's 100-d ``text``), ``"minilm"`` (384-d MiniLM
            embeddings of ``transcript``, cached in ``text_cache_dir``) or ``"both"`` (the two
            concatenated, 484-d); see :mod:`robustfusion.data.transcript_text`.
        text_model: a local sentence-transformers directory for the transcript embeddings
            (default: the packaged MiniLM).
        standardize: z-score every modality with statistics of the training part.
        nonfinite: ``"error"`` (default; the bc-LSTM features are finite) or ``"zero"``.
        crossfit_folds, crossfit_fold: ``K >= 2`` splits the videos of ``valid.npz`` into ``K``
            folds and makes fold ``crossfit_fold`` the ``test`` split (module docstring); needs
            ``valid.npz`` and no ``test.npz``. ``0`` (default): off.
        allow_shared_groups: accept ``<split>.npz`` files that share a ``video_id`` (default: refused,
            a shared video leaks between training and evaluation). A ``segment_id`` in two splits,
            or twice in one file, is always refused; empty splits too (:mod:`.checks`).

    Returns:
        ``{"train", "valid", "test": MultimodalDataset}`` with utterance features ``[N, D]``,
        ``task="regression"`` targets ``[N]`` (sentiment), ids = ``segment_id``; ``meta`` holds
        ``video_id``, ``transcript`` (indexed like the split) and ``split_videos``.
    """
    if text_features not in TEXT_FEATURE_OPTIONS:
        raise ValueError(f"text_features: expected one of {list(TEXT_FEATURE_OPTIONS)}, found {text_features!r}")
    root = require_directory(path, "MOSI utterance <split>.npz files (at least train.npz)")
    files, raw = _read_files(root)
    split_videos, carve = cut_group_splits(raw, files, root, "video_id", split_seed, valid_fraction, test_fraction,
                                      crossfit_folds, crossfit_fold)
    sources = {s: str(files.get(s, root / "train.npz")) for s in SPLITS}
    for s in SPLITS:
        check_nonempty(sources[s], s, len(raw[s]["sentiment"]))
    # no sample in two splits, and no video unless the user accepts it (data.options.allow_shared_groups)
    check_disjoint_groups({s: raw[s]["segment_id"].tolist() for s in SPLITS}, sources, "segment_id", option=None)
    check_disjoint_groups({s: raw[s]["video_id"].tolist() for s in SPLITS}, sources, "video_id",
                          allow=allow_shared_groups, option=ALLOW_SHARED_GROUPS)
    feats = _read_features(raw, sources, nonfinite)
    if text_features != "bclstm":
        from robustfusion.data.transcript_text import text_from_transcripts

        texts = text_from_transcripts({s: [str(t) for t in raw[s]["transcript"]] for s in SPLITS},
                                      _TEXT_MODE[text_features], given={s: feats[s]["text"] for s in SPLITS},
                                      model_path=text_model, cache_dir=text_cache_dir)
        for s in SPLITS:
            feats[s]["text"] = texts[s]
    stats = _standardize(feats) if standardize else {}
    out = {}
    for s in SPLITS:
        meta = {"source": sources[s], "format": "mosi_utterance", "split": s, "carved": s in carve,
                "video_id": [str(v) for v in raw[s]["video_id"]],
                "transcript": [str(t) for t in raw[s]["transcript"]],
                "split_videos": {k: v.tolist() for k, v in split_videos.items()},
                "split_seed": split_seed, "crossfit": [crossfit_fold, crossfit_folds] if crossfit_folds else None,
                "text_features": text_features, "standardize": stats}
        out[s] = MultimodalDataset(feats[s], raw[s]["sentiment"].astype(np.float32), task="regression",
                                   num_outputs=1, ids=[str(i) for i in raw[s]["segment_id"]], name=name, meta=meta,
                                   groups=[str(v) for v in raw[s]["video_id"]])
    return out


def _read_files(root: Path) -> tuple[dict[str, Path], dict[str, dict[str, np.ndarray]]]:
    """The ``<split>.npz`` files found in ``root`` (``train.npz`` required) and their checked arrays."""
    if not (root / "train.npz").is_file():
        raise FileNotFoundError(f"{root}: expected train.npz in the MOSI utterance directory, found "
                                f"{sorted(p.name for p in root.iterdir())}")
    files = {s: root / f"{s}.npz" for s in SPLITS if (root / f"{s}.npz").is_file()}
    return files, {s: _read_npz(p) for s, p in files.items()}


def cut_group_splits(raw: dict[str, dict[str, np.ndarray]], files: dict[str, Path], root: Path, key: str,
                     split_seed: int, valid_fraction: float, test_fraction: float, crossfit_folds: int,
                     crossfit_fold: int) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Cross-fit ``valid.npz`` (:func:`crossfit_video_folds`) and carve absent splits out of
    ``train.npz`` (:func:`carve_video_splits`) by whole groups of the column ``key`` (MOSI's
    ``video_id``, IEMOCAP's ``dialogue_id``), in place on ``raw`` (``{split: arrays}``).

    Returns the groups of each cut split and the names of the carved splits.
    """
    def select(d: dict[str, np.ndarray], groups: np.ndarray) -> dict[str, np.ndarray]:
        sel = np.isin(d[key], groups)
        return {k: (v[sel] if v.shape[:1] == sel.shape else v) for k, v in d.items()}

    split_groups: dict[str, np.ndarray] = {}
    if crossfit_folds:
        if "valid" not in raw or "test" in raw:
            raise ValueError(f"{root}: crossfit_folds={crossfit_folds} expected valid.npz and no test.npz, found "
                             f"{sorted(p.name for p in files.values())}")
        split_groups = crossfit_video_folds(raw["valid"][key], crossfit_folds, crossfit_fold, split_seed)
        valid = raw.pop("valid")
        raw.update({s: select(valid, groups) for s, groups in split_groups.items()})
        files["test"] = files["valid"]
    carve = tuple(s for s in SPLITS if s not in raw)
    if carve:
        train = raw["train"]
        split_groups = carve_video_splits(train[key], carve, split_seed, valid_fraction, test_fraction,
                                          source=str(files["train"]))
        raw.update({s: select(train, groups) for s, groups in split_groups.items()})
    return split_groups, carve


def _read_features(raw: dict[str, dict[str, np.ndarray]], sources: dict[str, str],
                   nonfinite: str) -> dict[str, dict[str, np.ndarray]]:
    """Each split's float32 features, widths checked against train and NaN/inf handled (labels range-checked)."""
    feats: dict[str, dict[str, np.ndarray]] = {}
    for s in SPLITS:
        check_label_range(raw[s]["sentiment"].astype(np.float32), -3.0, 3.0, sources[s], "'sentiment'")
        feats[s] = {}
        for m in ("text", "audio", "vision"):
            x = raw[s][m].astype(np.float32)
            width = raw["train"][m].shape[1]
            if x.shape[1] != width:
                raise ValueError(f"{sources[s]}: {m!r}: expected feature width {width} (as in "
                                 f"{sources['train']}), found {x.shape[1]} (shape {x.shape})")
            feats[s][m], _ = handle_nonfinite(x, nonfinite, sources[s], repr(m))
    return feats


def _standardize(feats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """Z-score every modality in place with the training split's statistics, which are returned."""
    stats = {}
    for m in ("text", "audio", "vision"):
        mu = feats["train"][m].mean(axis=0)
        sd = feats["train"][m].std(axis=0)
        sd = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
        stats[m] = {"mean": mu, "std": sd}
        for s in SPLITS:
            feats[s][m] = (feats[s][m] - mu) / sd
    return stats
