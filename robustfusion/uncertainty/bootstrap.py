"""Confidence intervals that resample whole groups and seeds.

Samples of one video or one dialogue are not independent, so a bootstrap that resamples samples
understates the noise (the cluster bootstrap; Field and Welsh, JASA 2007, "Bootstrapping
clustered data"). :func:`group_bootstrap_counts` draws whole groups with replacement, as a count
per sample; :func:`paired_delta_ci` combines that with a resampling of the training seeds of each
side, so a difference between two models is called real only when it survives both sources of
noise. Metrics are the count-weighted forms of :mod:`robustfusion.uncertainty.weighted_metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["group_bootstrap_counts", "paired_delta_ci", "percentile_interval"]

WeightedMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def group_bootstrap_counts(groups: Sequence, n_boot: int, seed: int = 0) -> np.ndarray:
    """``[n_boot, N]`` counts: each row draws ``G`` of the ``G`` distinct ``groups`` with
    replacement and counts how often each sample's group was drawn (a group comes whole)."""
    if n_boot < 1:
        raise ValueError(f"n_boot: expected at least 1 replicate, found {n_boot}")
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"groups: expected one group id per sample, found shape {g.shape}")
    _, inverse = np.unique(g, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    draws = np.random.default_rng(seed).integers(0, n_groups, size=(n_boot, n_groups))
    per_group = np.stack([np.bincount(row, minlength=n_groups) for row in draws])  # [n_boot, G]
    return per_group[:, inverse].astype(np.float64)


def percentile_interval(point: float, reps: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(point, low, high)``: the two-sided percentile interval of the replicates ``reps`` (NaN
    replicates ignored; both bounds NaN when every one is)."""
    if np.isnan(reps).all():
        return point, float("nan"), float("nan")
    lo, hi = np.nanquantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return point, float(lo), float(hi)


def paired_delta_ci(metric: WeightedMetric, preds_a: Sequence[np.ndarray], preds_b: Sequence[np.ndarray],
                    targets: np.ndarray, groups: Sequence, n_boot: int = 1000, level: float = 0.95,
                    seed: int = 0) -> tuple[float, float, float]:
    """``(delta, ci_low, ci_high)`` of ``mean_s metric(a_s) - mean_s metric(b_s)``.

    Args:
        metric: a weighted metric ``(weights [R, N], preds, targets) -> [R]``.
        preds_a, preds_b: one prediction array per seed of each side (a deterministic reference
            passes one), rows aligned with ``targets``.
        targets: ``[N]`` targets; groups: ``[N]`` group ids.
        n_boot: replicates; each resamples the groups (the same draw for both sides: a paired
            comparison) and draws each side's seeds with replacement.
        level: two-sided percentile interval.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected a confidence level in (0, 1), found {level}")
    if len(preds_a) == 0 or len(preds_b) == 0:
        raise ValueError("preds_a/preds_b: expected at least one prediction array per side")
    y = np.asarray(targets)
    for p in (*preds_a, *preds_b):
        if np.asarray(p).shape[0] != y.shape[0]:
            raise ValueError(f"predictions: expected {y.shape[0]} rows as the targets, found {np.asarray(p).shape[0]}")
    ones = np.ones((1, y.shape[0]))
    delta = float(np.mean([metric(ones, p, y)[0] for p in preds_a]) - np.mean([metric(ones, p, y)[0] for p in preds_b]))
    w = group_bootstrap_counts(groups, n_boot, seed)
    ma = np.stack([metric(w, p, y) for p in preds_a], axis=1)  # [n_boot, S_a]
    mb = np.stack([metric(w, p, y) for p in preds_b], axis=1)
    rng = np.random.default_rng(seed + 1)
    ra = rng.integers(0, ma.shape[1], size=(n_boot, ma.shape[1]))
    rb = rng.integers(0, mb.shape[1], size=(n_boot, mb.shape[1]))
    reps = np.take_along_axis(ma, ra, 1).mean(1) - np.take_along_axis(mb, rb, 1).mean(1)
    return percentile_interval(delta, reps, level)
