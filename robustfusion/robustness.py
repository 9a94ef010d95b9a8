"""Robustness evaluation under missing modalities: subsets table, rate sweeps, AUILC summaries.

Protocols (test-time dropping from :mod:`robustfusion.dropping`, never magic feature values):

* ``"subsets"``: every non-empty subset of the modalities (7 for three), GMC's
  partial-observation protocol (Poklukar et al., arXiv 2202.03390, Table 3);
* ``"sample_rate"``: each (sample, modality) dropped independently with probability ``level``;
* ``"frame_rate"``: each frame of each sequence modality dropped with rate ``level``
  (TFR-Net, Yuan et al., ACM MM 2021; EMT-DLFR, Sun et al., arXiv 2208.07589). It is also LNLN's
  test protocol (Zhang et al., NeurIPS 2024, arXiv 2409.20012; ``robust_evaluation.py`` with
  ``core/dataset.py::generate_m``): one rate for every frame of every modality, rates 0.0, 0.1,
  ..., 0.9, the headline number being their mean (the :data:`~robustfusion.results.MEAN_LEVEL`
  summary row). LNLN's code differs in how the pattern is drawn, not in its law: it reseeds NumPy
  with one fixed seed before each modality and each rate (so the frames dropped at a rate are
  also dropped at every higher rate, and all models and seeds see one pattern), keeps BERT's
  [CLS]/[SEP] tokens, and replaces dropped text tokens by UNK / audio-vision frames by zeros,
  where this evaluator marks them in the frame mask (a modality with no frame left is absent);
* ``"missing_rate"``: each modality of each sample missing with rate ``level``, at least one
  modality always kept, levels 0.0, 0.1, ..., 0.7 by default (GCNet, Lian et al., TPAMI 2023;
  MMIN-style; the mask of :func:`robustfusion.dropping.drop_to_missing_rate`). Unlike
  ``sample_rate`` with ``keep_at_least_one`` (drop at rate ``p``, then give one modality back to a
  sample left with none, so fewer than ``p`` go missing), the realised missing rate is ``level``
  (up to ``1 - 1/M``: 2/3 at ``0.7`` for three modalities).

Every model sees the identical drop pattern: one generator per ``(seed, protocol, level)``
(``frame_rate``: per modality too) from :func:`robustfusion.dropping.protocol_generator`,
streamed over the dataset's batches in their fixed order.

Results are long-format rows (one dict per number; schema, CSV I/O, aggregation over seeds and
the oracle gap in :mod:`robustfusion.results`), the only source of tables and plots.

Summary rows per sweep protocol and metric (same protocol, ``subset="all"``):

* ``level="auilc"``: AUILC, the trapezoid area under metric-vs-level over the full level range
  including 0.0 (TFR-Net / EMT-DLFR "area under indicators line chart");
* ``level="relative"``: relative robustness = AUILC / (metric at level 0.0 x (max level - min
  level)); 1.0 means no degradation. NaN when 0.0 is not among the levels or the metric at 0.0
  is 0;
* ``level="mean_0-0.9"`` (``frame_rate`` only): the mean of the metric over the rates 0.0, 0.1,
  ..., 0.9 (LNLN's headline number), written only when all ten were evaluated. These rows come
  after every AUILC / relative row, so the rows of an evaluation without them are unchanged.

The summaries live here, with the evaluator that makes the curves, rather than in
:mod:`robustfusion.results`: they are per-seed metrics computed once from raw sweep rows (reports
never recompute them; they only read the rows back by their level names).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from robustfusion.batch import MultimodalBatch
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.metrics import compute_metrics
from robustfusion.protocols import (
    SUBSETS,
    SWEEP_SUBSET,
    default_protocols,
    get_protocol,
    protocol_names,
)
from robustfusion.results import (
    AUILC_LEVEL,
    MEAN_LEVEL,
    MEAN_LEVELS,
    RELATIVE_LEVEL,
    ROW_FIELDS,
    normalise_level,
)
from robustfusion.uncertainty_scores import uncertainty_metrics

__all__ = ["auilc", "evaluate", "evaluate_many", "metric_options", "relative_robustness", "summary_rows"]


# ---------------------------------------------------------------------------- levels
def _check_levels(levels: Iterable[float]) -> list[float]:
    out = sorted({normalise_level(lv) for lv in levels})
    for lv in out:
        if not isinstance(lv, float) or not 0.0 <= lv <= 1.0:
            raise ValueError(f"levels: expected rates in [0, 1], found {lv!r}")
    if not out:
        raise ValueError("levels: expected at least one rate, found none")
    return out


def _levels_per_protocol(levels, protocols: Sequence[str]) -> dict[str, list[float]]:
    """``{sweep protocol: sorted rates}``: ``None`` gives each protocol its default
    (:attr:`~robustfusion.protocols.Protocol.default_levels`), a sequence applies to every sweep, a
    mapping names the rates per protocol (the others keep their default)."""
    sweeps = [p for p in protocols if get_protocol(p).is_sweep]
    if isinstance(levels, Mapping):
        known = [p for p in protocol_names() if get_protocol(p).is_sweep]
        unknown = sorted(set(levels) - set(known))
        if unknown:
            raise ValueError(f"levels: keys {unknown} are not sweep protocols; expected some of {tuple(known)}")
        return {p: _check_levels(levels[p] if p in levels else get_protocol(p).default_levels) for p in sweeps}
    if levels is None:
        return {p: _check_levels(get_protocol(p).default_levels) for p in sweeps}
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Iterable):
        raise TypeError(f"levels: expected a sequence of rates or {{protocol: rates}}, found {levels!r}")
    levels = list(levels)
    return {p: _check_levels(levels) for p in sweeps}


# ---------------------------------------------------------------------------- evaluation
def _model_present(predictor, batch: MultimodalBatch) -> Tensor:
    return predictor.check_batch(batch) if hasattr(predictor, "check_batch") else batch.present


def _predict(predictor, batch: MultimodalBatch, cache: tuple | None) -> Tensor:
    """``[B, K]`` CPU predictions: from cached ``(z, z_joint)`` when given, else ``predict``."""
    if cache is not None:
        out = predictor.predict_from_latents(cache[0], cache[1], _model_present(predictor, batch))
    else:
        out = predictor.predict(batch)
    out = torch.as_tensor(out).detach().cpu()
    return out.unsqueeze(1) if out.dim() == 1 else out


def metric_options(dataset: MultimodalDataset) -> dict[str, Any]:
    """Class names and count for classification metrics, emotion names for multilabel ones
    (:attr:`~robustfusion.data.MultimodalDataset.label_names` when the dataset has them, e.g. the
    synthetic emotion target or IEMOCAP's Neutral/Happy/Sad/Angry); ``{"sentiment": False}`` for a
    regression target that is not a sentiment score (``dataset.meta["sentiment"] is False``: MAE and
    Corr only)."""
    names, k = dataset.label_names, dataset.num_outputs
    names = names if names is not None and len(names) == k else None
    if dataset.task == "regression":
        return {"sentiment": False} if dataset.meta.get("sentiment") is False else {}
    if dataset.task == "multilabel":
        return {} if names is None else {"names": names}
    if dataset.task != "classification":
        return {}
    return {"num_classes": k} if names is None else {"num_classes": k, "names": names}


def _metric_fn(task: str, metrics, **kwargs) -> Callable[[Tensor, Tensor], dict[str, float]]:
    if callable(metrics):
        return metrics
    names = None if metrics is None else list(metrics)

    def fn(preds: Tensor, targets: Tensor) -> dict[str, float]:
        res = compute_metrics(task, preds, targets, **kwargs)
        if names is None:
            return res
        unknown = [m for m in names if m not in res]
        if unknown:
            raise ValueError(f"metrics: {unknown} are not computed for task {task!r}; available {sorted(res)}")
        return {m: res[m] for m in names}

    return fn


def _check_has_frames(dataset: MultimodalDataset, name: str, protocols: Sequence[str]) -> None:
    """A protocol that drops frames of sequence modalities (``frame_rate``) would drop nothing on
    utterance-level data (every modality ``[N, D]``) and report a flat curve, so it is refused."""
    framed = [p for p in protocols if get_protocol(p).needs_frames]
    features = dataset.features
    if not framed:
        return
    shapes = {m: tuple(x.shape[1:]) for m, x in features.items()}
    if all(x.dim() < 3 for x in features.values()):
        others = ",".join(p for p in default_protocols() if not get_protocol(p).needs_frames)
        raise ValueError(f"protocols: {framed[0]!r} drops frames of sequences, but dataset {name!r} is utterance-level "
                         f"(one vector per sample; feature shapes {shapes}): its curve would be flat. Leave it out "
                         f"(eval.protocols=[{others}])")


def _check_protocols(protocols: Sequence[str] | None) -> list[str]:
    protocols = list(default_protocols() if protocols is None else protocols)
    bad = [p for p in protocols if p not in protocol_names()]
    if bad or not protocols:
        raise ValueError(f"protocols: expected a non-empty selection of {protocol_names()}, found {protocols}")
    return protocols


def _check_predictor(predictor, batch_size: int, reuse_latents: bool | None) -> bool:
    """Refuse a predictor without ``predict`` (or without the latent hooks when reuse is forced);
    returns whether latents are reused."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, found {batch_size}")
    if not hasattr(predictor, "predict"):
        raise ValueError(f"predictor: expected an object with predict(batch) -> [B, K], found {type(predictor).__name__}")
    if reuse_latents is None:
        reuse_latents = bool(getattr(predictor, "supports_latent_reuse", False))
    if reuse_latents and not (hasattr(predictor, "encode") and hasattr(predictor, "predict_from_latents")):
        raise ValueError(f"reuse_latents=True needs encode() and predict_from_latents(); "
                         f"{type(predictor).__name__} lacks them")
    return reuse_latents


def _predict_conditions(predictor, dataset: MultimodalDataset, conditions: list[tuple[str, float | None, str]], *, seed: int,
                        batch_size: int, device, keep_at_least_one: bool, reuse_latents: bool,
                        keep_present: bool = False) -> tuple[dict[tuple, Tensor], Tensor, dict[tuple, Tensor]]:
    """``({(protocol, level, subset): [N, K] predictions}, targets, {condition: [N, M] presence})``
    over the dataset's batches in their fixed order, one dropper (and generator stream) per
    condition; the presence masks (as the predictor saw them) only with ``keep_present``."""
    droppers = {c: get_protocol(c[0]).make_dropper(seed, c[1], c[2], list(dataset.modalities), keep_at_least_one)
                for c in conditions}
    reusable = {c: reuse_latents and get_protocol(c[0]).reuses_latents for c in conditions}
    preds: dict[tuple, list[Tensor]] = defaultdict(list)
    present: dict[tuple, list[Tensor]] = defaultdict(list)
    targets: list[Tensor] = []
    was_training = bool(getattr(predictor, "training", False))
    if isinstance(predictor, torch.nn.Module):
        predictor.to(device)
        predictor.eval()
    try:
        with torch.no_grad():
            for batch in dataset.batches(batch_size):
                batch = batch.to(device)
                targets.append(batch.targets.cpu())
                clean = batch.replace(targets=None)
                cache = predictor.encode(clean) if any(reusable.values()) else None
                for c in conditions:
                    dropped = droppers[c](clean)
                    preds[c].append(_predict(predictor, dropped, cache if reusable[c] else None))
                    if keep_present:
                        present[c].append(_model_present(predictor, dropped).cpu())
    finally:
        if isinstance(predictor, torch.nn.Module):
            predictor.train(was_training)
    if not targets:
        return {}, torch.empty(0), {}
    return ({c: torch.cat(v) for c, v in preds.items()}, torch.cat(targets),
            {c: torch.cat(v) for c, v in present.items()})


def evaluate(predictor, dataset: MultimodalDataset, *, protocols: Sequence[str] | None = None,
             levels: Sequence[float] | Mapping[str, Sequence[float]] | None = None, seed: int = 0, batch_size: int = 256,
             dataset_name: str | None = None, model_name: str | None = None, split: str = "test",
             keep_at_least_one: bool = False, device: str | torch.device = "cpu",
             metrics: Sequence[str] | Callable | None = None, reuse_latents: bool | None = None,
             summaries: bool = True, predictions: dict | None = None) -> list[dict]:
    """Evaluate ``predictor`` on ``dataset`` under the robustness protocols.

    Args:
        predictor: a :class:`robustfusion.models.MultimodalModel` or any object with
            ``predict(batch) -> [B, K]`` (e.g. the synthetic benchmark's oracle).
        dataset: a :class:`robustfusion.data.MultimodalDataset` (``.task``, ``.modalities``,
            ``.batches()``, ``.name``).
        protocols: names from :func:`robustfusion.protocols.protocol_names` (default:
            :func:`~robustfusion.protocols.default_protocols`, every protocol but ``missing_rate``).
            A protocol that drops frames (``frame_rate``) is refused (``ValueError``) on
            utterance-level data, where every modality is ``[N, D]``: there are no frames to drop
            and its curve would be flat.
        levels: rates for the sweeps: ``None`` (default) gives each protocol its own
            (:attr:`~robustfusion.protocols.Protocol.default_levels`: 0.0, 0.1, ..., 1.0 for
            ``sample_rate`` and ``frame_rate``, 0.0, ..., 0.7 for ``missing_rate``); a sequence
            applies to every sweep; ``{protocol: rates}`` sets some (the others keep their default).
        seed: seeds the drop generators (one per ``(seed, protocol, level)``).
        batch_size: evaluation batch size; the drop pattern depends on it (fixed order).
        dataset_name, model_name: names written into the rows (default: ``dataset.name`` and the
            model's registry name or class name).
        split: split name written into the rows.
        keep_at_least_one: ``sample_rate`` never leaves a sample with no modality
            (``missing_rate`` always keeps one).
        device: where batches go; an ``nn.Module`` predictor is moved there too.
        metrics: ``None`` (all metrics of the task), a list of metric names, or a callable
            ``(preds [N, K], targets) -> {name: value}``.
        reuse_latents: ``None`` (auto): when ``predictor.supports_latent_reuse`` is true,
            encode each batch once (``encode``) and predict the conditions of every protocol with
            :attr:`~robustfusion.protocols.Protocol.reuses_latents` (all but ``frame_rate``) with
            ``predict_from_latents`` (the per-modality latents do not depend on which modalities
            are present); ``False`` forces one full pass per condition.
        summaries: append the AUILC / relative-robustness rows and ``frame_rate``'s mean over
            0.0..0.9 (:func:`summary_rows`).
        predictions: a dict to receive the ``[N, K]`` CPU predictions of every condition, keyed
            ``(protocol, level, subset)`` (what :mod:`robustfusion.comparisons` resamples).

    A predictor whose calibrators add intervals, probabilities or sets
    (:class:`~robustfusion.calibration.CalibratedModel`, ``gives_uncertainty``) also gets their
    metrics on every condition and a ``VRR`` row under ``subsets``
    (:mod:`robustfusion.uncertainty_scores`).

    Returns:
        Long-format rows (see the module docstring), in a fixed order.
    """
    protocols = _check_protocols(protocols)
    levels_of = _levels_per_protocol(levels, protocols)
    dataset_name = dataset_name or dataset.name
    _check_has_frames(dataset, dataset_name, protocols)
    metric_fn = _metric_fn(dataset.task, metrics, **metric_options(dataset))
    model_name = model_name or getattr(predictor, "registry_name", None) or type(predictor).__name__
    reuse_latents = _check_predictor(predictor, batch_size, reuse_latents)
    conditions = [(p, lv, sub) for p in protocols
                  for lv, sub in get_protocol(p).conditions(dataset.modalities, levels_of.get(p, ()))]
    uncertain = bool(getattr(predictor, "gives_uncertainty", False))
    preds, y, present = _predict_conditions(predictor, dataset, conditions, seed=seed, batch_size=batch_size,
                                            device=device, keep_at_least_one=keep_at_least_one,
                                            reuse_latents=reuse_latents, keep_present=uncertain)
    if not preds:
        raise ValueError(f"dataset {dataset_name!r}: expected at least one sample, found none")
    if predictions is not None:
        predictions.update(preds)
    extra, vrr = ({}, None) if not uncertain else uncertainty_metrics(
        predictor, preds, present, y, [c for c in conditions if get_protocol(c[0]).reuses_latents])
    base = {"dataset": dataset_name, "model": model_name, "seed": int(seed), "split": split}
    rows = [_row(base, c, metric, value) for c in conditions
            for metric, value in {**metric_fn(preds[c], y), **extra.get(c, {})}.items()]
    if vrr is not None:
        rows.append(_row(base, (SUBSETS, None, SWEEP_SUBSET), "VRR", vrr))
    if summaries:
        rows += summary_rows(rows)
    return rows


def _row(base: dict, condition: tuple, metric: str, value: float) -> dict:
    """One long-format row (fields in :data:`~robustfusion.results.ROW_FIELDS` order)."""
    protocol, level, subset = condition
    return {"dataset": base["dataset"], "model": base["model"], "seed": base["seed"], "protocol": protocol,
            "level": level, "subset": subset, "split": base["split"], "metric": metric, "value": float(value)}


def evaluate_many(predictors: Mapping[str, Any], dataset, *, seeds: Sequence[int] = (0,), **kwargs) -> list[dict]:
    """Rows of several in-memory models on the same drop patterns.

    Args:
        predictors: ``{model name: predictor}`` (evaluated once per seed in ``seeds``) or
            ``{model name: {seed: predictor}}`` (one trained model per seed; that seed also seeds
            the drop pattern, so every model of a seed sees the same pattern).
        dataset: the evaluation :class:`~robustfusion.data.MultimodalDataset`.
        seeds: seeds for predictors given without their own seed mapping.
        kwargs: passed to :func:`evaluate` (``protocols``, ``levels``, ``batch_size``, ...).

    ``write_report(evaluate_many({...}, test), out_dir)`` produces the subsets table, both sweeps
    with AUILC, the markdown/LaTeX tables and the plots in one call.
    """
    if "seed" in kwargs or "model_name" in kwargs:
        raise ValueError("evaluate_many: pass seeds=... and name models by the keys of `predictors`, "
                         "not seed= / model_name=")
    rows: list[dict] = []
    for name, pred in predictors.items():
        per_seed = pred.items() if isinstance(pred, Mapping) else ((s, pred) for s in seeds)
        for seed, p in per_seed:
            rows += evaluate(p, dataset, seed=int(seed), model_name=name, **kwargs)
    return rows


# ---------------------------------------------------------------------------- AUILC
def auilc(levels: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoid area under ``values`` vs ``levels`` (sorted by level), over the full range
    given (TFR-Net / EMT-DLFR AUILC; include 0.0). NaN if any value is NaN; 0.0 for one level."""
    x = np.asarray(levels, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"auilc: expected two equal-length 1-D sequences, found {x.shape} and {y.shape}")
    order = np.argsort(x)
    x, y = x[order], y[order]
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def relative_robustness(levels: Sequence[float], values: Sequence[float]) -> float:
    """``auilc / (value at level 0.0 x (max level - min level))``; NaN when 0.0 is not a level,
    the range is empty, or the value at 0.0 is 0."""
    x = np.asarray(levels, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    at0 = np.flatnonzero(np.isclose(x, 0.0, atol=1e-9))
    span = float(x.max() - x.min()) if x.size else 0.0
    if at0.size == 0 or span == 0.0 or y[at0[0]] == 0.0:
        return float("nan")
    return auilc(x, y) / (float(y[at0[0]]) * span)


def summary_rows(rows: Iterable[dict]) -> list[dict]:
    """AUILC and relative-robustness rows for every sweep curve in ``rows`` (one curve per
    dataset, model, seed, split, protocol, subset, metric; numeric levels only), then, after all
    of them, a :data:`~robustfusion.results.MEAN_LEVEL` row (mean over the rates 0.0, ..., 0.9)
    for every ``frame_rate`` curve that holds all ten."""
    curves: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        lv = normalise_level(r["level"])
        if r["protocol"] in protocol_names() and get_protocol(r["protocol"]).is_sweep and isinstance(lv, float):
            key = (r["dataset"], r["model"], r["seed"], r["split"], r["protocol"], r["subset"], r["metric"])
            curves[key].append((lv, float(r["value"])))
    out, means = [], []
    for (ds, model, seed, split, protocol, subset, metric), pts in curves.items():
        if len({lv for lv, _ in pts}) != len(pts):
            raise ValueError(f"summary_rows: duplicate levels in the {protocol} curve of {model!r} seed {seed} "
                             f"metric {metric!r} on {ds!r}/{split!r}")
        if len(pts) < 2:
            continue
        x, y = zip(*sorted(pts))
        base = {"dataset": ds, "model": model, "seed": seed, "protocol": protocol, "subset": subset,
                "split": split, "metric": metric}
        out.append({**base, "level": AUILC_LEVEL, "value": auilc(x, y)})
        out.append({**base, "level": RELATIVE_LEVEL, "value": relative_robustness(x, y)})
        at = dict(pts)
        if get_protocol(protocol).mean_summary and all(lv in at for lv in MEAN_LEVELS):
            means.append({**base, "level": MEAN_LEVEL, "value": float(np.mean([at[lv] for lv in MEAN_LEVELS]))})
    return [{k: r[k] for k in ROW_FIELDS} for r in out + means]
