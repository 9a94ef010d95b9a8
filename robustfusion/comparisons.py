"""``comparisons.csv``: every difference between a model and a reference, with a confidence interval.

A few hundred test samples from a few dozen videos or dialogues make differences of a few
hundredths noise, so every number of a comparison carries a 95% interval from a bootstrap that
resamples whole groups (the dataset's ``groups``: videos, dialogues; each sample its own group
where a dataset has none) and, within each replicate, each side's training seeds
(:func:`robustfusion.uncertainty.paired_delta_ci`'s scheme; both sides see the same group draw).

Rows (:data:`COMPARISON_FIELDS`): ``delta = metric(model) - metric(reference)`` (means over
seeds), for every condition (protocol, level, subset) both were evaluated under and every metric
of :data:`robustfusion.uncertainty.WEIGHTED_METRICS` asked for; then summary rows per sweep
protocol (``subset="all"``):

* ``level="auilc"``: the difference in area under the metric-vs-level curve (trapezoid), the
  unnormalised relative robustness of MultiBench (Liang et al., NeurIPS 2021 Datasets and
  Benchmarks, arXiv 2107.07502);
* ``level="effective"`` (``reference`` = the late-fusion model): MultiBench's effective
  robustness, unnormalised: the area under ``(f(l) - f(0)) - (lf(l) - lf(0))``, how much less
  the model loses than late fusion over the sweep, whatever their clean scores.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robustfusion.io import atomic_write
from robustfusion.protocols import SUBSETS
from robustfusion.results import AUILC_LEVEL, SWEEP_SUBSET, normalise_level
from robustfusion.uncertainty import group_bootstrap_counts, percentile_interval, weighted_metric

__all__ = ["COMPARISON_FIELDS", "EFFECTIVE_LEVEL", "comparison_rows", "read_comparisons_csv",
           "write_comparisons_csv"]

COMPARISON_FIELDS = ("model", "reference", "protocol", "level", "subset", "metric", "delta", "ci_low", "ci_high")
#: Level of MultiBench's effective-robustness rows.
EFFECTIVE_LEVEL = "effective"

Condition = tuple[str, Any, str]
#: ``{model: {seed: {(protocol, level, subset): [N, K] predictions}}}``
Predictions = Mapping[str, Mapping[int, Mapping[Condition, np.ndarray]]]


class _Side:
    """One model's metric values: on the full test set (per seed) and per replicate (seeds resampled)."""

    def __init__(self, per_seed: Mapping[int, Mapping[Condition, np.ndarray]], y: np.ndarray, w: np.ndarray,
                 rng: np.random.Generator) -> None:
        self.seeds = sorted(per_seed)
        self.preds = per_seed
        self.y, self.w = y, w
        self.draw = rng.integers(0, len(self.seeds), size=(w.shape[0], len(self.seeds)))
        self._memo: dict[tuple[Condition, str], tuple[float, np.ndarray]] = {}

    def conditions(self) -> set[Condition]:
        return set.intersection(*(set(self.preds[s]) for s in self.seeds))

    def value(self, cond: Condition, metric: str) -> tuple[float, np.ndarray]:
        """``(mean over seeds on the full set, [n_boot] seed-resampled means over replicates)``."""
        key = (cond, metric)
        if key not in self._memo:
            fn = weighted_metric(metric)
            ones = np.ones((1, self.y.shape[0]))
            full = np.array([fn(ones, self.preds[s][cond], self.y)[0] for s in self.seeds])
            reps = np.stack([fn(self.w, self.preds[s][cond], self.y) for s in self.seeds], axis=1)
            self._memo[key] = (float(full.mean()), np.take_along_axis(reps, self.draw, 1).mean(1))
        return self._memo[key]


def _curves(conds: set[Condition]) -> dict[str, list[Condition]]:
    """``{sweep protocol: its numeric-level conditions sorted by level}`` (two levels or more, 0.0 among them)."""
    out: dict[str, list[Condition]] = {}
    for c in conds:
        if c[0] != SUBSETS and isinstance(normalise_level(c[1]), float):
            out.setdefault(c[0], []).append(c)
    return {p: sorted(cs, key=lambda c: c[1]) for p, cs in out.items()
            if len(cs) > 1 and any(abs(c[1]) < 1e-9 for c in cs)}


def _area(levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Trapezoid area along the last axis."""
    return ((levels[1:] - levels[:-1]) * (values[..., 1:] + values[..., :-1]) / 2).sum(-1)


def _curve(side: _Side, conds: list[Condition], metric: str) -> tuple[np.ndarray, np.ndarray]:
    full, reps = zip(*(side.value(c, metric) for c in conds))
    return np.array(full), np.stack(reps, axis=1)  # [L], [n_boot, L]


def comparison_rows(predictions: Predictions, targets, groups: Sequence | None, reference: str,
                    metrics: Sequence[str], *, late_fusion: str | None = None, n_boot: int = 1000,
                    level: float = 0.95, seed: int = 0) -> list[dict]:
    """Rows of ``comparisons.csv`` (see the module docstring).

    Args:
        predictions: per model, per seed, per condition, the ``[N, K]`` test predictions.
        targets: ``[N]`` test targets; groups: ``[N]`` group ids (``None``: one group per sample).
        reference: the model every other one is compared with (e.g. the per-subset specialists).
        metrics: metric names (each must have a weighted form).
        late_fusion: the model the effective-robustness rows are measured against (none if ``None``
            or absent).
        n_boot, level, seed: bootstrap replicates, two-sided level, seed of the draws.

    Raises:
        ValueError: ``reference`` (or a metric) unknown.
    """
    if reference not in predictions:
        raise ValueError(f"reference: expected one of the models {sorted(predictions)}, found {reference!r}")
    for m in metrics:
        weighted_metric(m)
    y = np.asarray(targets)
    w = group_bootstrap_counts(np.arange(len(y)) if groups is None else np.asarray(groups), n_boot, seed)
    rng = np.random.default_rng(seed + 1)
    sides = {name: _Side(per_seed, y, w, rng) for name, per_seed in predictions.items()}
    ref = sides[reference]
    rows: list[dict] = []

    def add(model: str, against: str, cond: Condition, metric: str, stats: tuple[float, float, float]) -> None:
        rows.append(dict(zip(COMPARISON_FIELDS, (model, against, cond[0], cond[1], cond[2], metric, *stats))))

    for name, side in sides.items():
        if name == reference:
            continue
        common = side.conditions() & ref.conditions()
        order = [c for c in _ordered(predictions[name]) if c in common]
        for metric in metrics:
            for cond in order:
                (a, ra), (b, rb) = side.value(cond, metric), ref.value(cond, metric)
                add(name, reference, cond, metric, percentile_interval(a - b, ra - rb, level))
            for protocol, conds in _curves(set(order)).items():
                lv = np.array([c[1] for c in conds], dtype=np.float64)
                (fa, ra), (fb, rb) = _curve(side, conds, metric), _curve(ref, conds, metric)
                add(name, reference, (protocol, AUILC_LEVEL, SWEEP_SUBSET), metric,
                    percentile_interval(float(_area(lv, fa) - _area(lv, fb)), _area(lv, ra) - _area(lv, rb), level))
                if late_fusion in sides and late_fusion != name and set(conds) <= sides[late_fusion].conditions():
                    (fl, rl) = _curve(sides[late_fusion], conds, metric)
                    point = float(_area(lv, (fa - fa[0]) - (fl - fl[0])))
                    reps = _area(lv, (ra - ra[:, :1]) - (rl - rl[:, :1]))
                    add(name, late_fusion, (protocol, EFFECTIVE_LEVEL, SWEEP_SUBSET), metric,
                        percentile_interval(point, reps, level))
    return rows


def _ordered(per_seed: Mapping[int, Mapping[Condition, np.ndarray]]) -> list[Condition]:
    """The conditions of a model in the evaluator's order (that of its first seed)."""
    return list(per_seed[min(per_seed)])


def write_comparisons_csv(rows: Sequence[dict], path) -> Path:
    """Write comparison rows atomically, columns :data:`COMPARISON_FIELDS` in that order."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(COMPARISON_FIELDS)
            for r in rows:
                w.writerow(["" if r[f] is None else repr(r[f]) if isinstance(r[f], float) else r[f]
                            for f in COMPARISON_FIELDS])

    return atomic_write(Path(path), write)


def read_comparisons_csv(path) -> list[dict]:
    """Rows written by :func:`write_comparisons_csv`, with float deltas and intervals."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COMPARISON_FIELDS:
            raise ValueError(f"{path}: expected columns {list(COMPARISON_FIELDS)}, found {reader.fieldnames}")
        return [{**r, "level": normalise_level(r["level"]),
                 **{k: float(r[k]) if r[k] != "" else float("nan") for k in ("delta", "ci_low", "ci_high")}}
                for r in reader]
