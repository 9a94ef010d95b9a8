"""Confidence intervals that resample whole groups and seeds.

Samples of one video or one dialogue are not independent, so a bootstrap that resamples samples
understates the noise (Efron and Tibshirani 1993, ch. 8 on structured data; the cluster
bootstrap). :func:`group_bootstrap_indices` draws whole groups with replacement;
:func:`paired_delta_ci` combines that with a resampling of the training seeds of each side, so a
difference between two models is called real only when it survives both sources of noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["group_bootstrap_indices", "paired_delta_ci"]


def group_bootstrap_indices(groups: Sequence, n_boot: int, seed: int = 0) -> list[np.ndarray]:
    """``n_boot`` index arrays, each the samples of ``G`` groups drawn with replacement from the
    ``G`` distinct values of ``groups`` (a group drawn twice contributes its samples twice)."""
    if n_boot < 1:
        raise ValueError(f"n_boot: expected at least 1 replicate, found {n_boot}")
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"groups: expected one group id per sample, found shape {g.shape}")
    _, inverse = np.unique(g, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(inverse.max() + 1)]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(members), size=(n_boot, len(members)))
    return [np.concatenate([members[k] for k in row]) for row in draws]


def paired_delta_ci(metric: Callable[[np.ndarray, np.ndarray], float], preds_a: Sequence[np.ndarray],
                    preds_b: Sequence[np.ndarray], targets: np.ndarray, groups: Sequence,
                    n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``(delta, ci_low, ci_high)`` of ``mean_s metric(a_s) - mean_s metric(b_s)``.

    Args:
        metric: ``metric(preds, targets) -> float`` on row-indexed arrays.
        preds_a, preds_b: one prediction array per seed of each side (a reference with one
            deterministic fit passes one array), rows aligned with ``targets``.
        targets: ``[N, ...]`` targets; groups: ``[N]`` group ids.
        n_boot: replicates; each resamples groups (shared by both sides: a paired comparison) and
            draws each side's seeds with replacement.
        level: two-sided percentile interval.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected a confidence level in (0, 1), found {level}")
    if not preds_a or not preds_b:
        raise ValueError("preds_a/preds_b: expected at least one prediction array per side")
    y = np.asarray(targets)
    a = [np.asarray(p) for p in preds_a]
    b = [np.asarray(p) for p in preds_b]
    for p in (*a, *b):
        if p.shape[0] != y.shape[0]:
            raise ValueError(f"predictions: expected {y.shape[0]} rows as the targets, found {p.shape[0]}")
    delta = float(np.mean([metric(p, y) for p in a]) - np.mean([metric(p, y) for p in b]))
    idx = group_bootstrap_indices(groups, n_boot, seed)
    ma = np.array([[metric(p[i], y[i]) for p in a] for i in idx])  # [n_boot, S_a]
    mb = np.array([[metric(p[i], y[i]) for p in b] for i in idx])
    rng = np.random.default_rng(seed + 1)
    ra = rng.integers(0, len(a), size=(n_boot, len(a)))
    rb = rng.integers(0, len(b), size=(n_boot, len(b)))
    reps = np.take_along_axis(ma, ra, 1).mean(1) - np.take_along_axis(mb, rb, 1).mean(1)
    lo, hi = np.nanquantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return delta, float(lo), float(hi)
