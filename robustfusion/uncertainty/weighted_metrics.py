"""Field metrics under sample weights, for many bootstrap replicates at once.

A bootstrap replicate that draws whole groups with replacement is a count per sample (how often
it was drawn); every metric below is a ratio of count-weighted sums, so ``R`` replicates are one
``[R, N] @ [N]`` product each instead of ``R`` metric calls. With all weights 1 each equals
:func:`robustfusion.metrics.compute_metrics` (tested), with integer weights it equals the metric of
the sample repeated that often.

Regression (MMSA's definitions, :func:`robustfusion.metrics.sentiment_metrics`): ``MAE``, ``Corr``
(0.0 when a side is constant), ``Has0_acc_2``, ``Has0_F1_score``, ``Non0_acc_2``,
``Non0_F1_score``, ``Mult_acc_5``, ``Mult_acc_7``. Classification: ``Acc``, ``F1_weighted``,
``F1_macro`` (over the classes seen in the weighted labels or predictions, as scikit-learn's).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["WEIGHTED_METRICS", "weighted_metric"]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _f1_weighted(w: np.ndarray, pred: np.ndarray, y: np.ndarray, classes: int, macro: bool = False) -> np.ndarray:
    """``[R]`` weighted (by label support) or macro F1 of integer ``pred``/``y`` under weights ``w`` ``[R, N]``."""
    f1s, sups, seen = [], [], []
    for c in range(classes):
        tp = w @ ((pred == c) & (y == c)).astype(float)
        fp = w @ ((pred == c) & (y != c)).astype(float)
        fn = w @ ((pred != c) & (y == c)).astype(float)
        den = 2 * tp + fp + fn
        f1s.append(np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0))
        sups.append(tp + fn)
        seen.append(tp + fp + fn > 0)
    f1, sup, seen = np.stack(f1s), np.stack(sups), np.stack(seen)
    if macro:
        return _ratio((f1 * seen).sum(0), seen.sum(0).astype(float))
    return _ratio((f1 * sup).sum(0), sup.sum(0))


def _binary(w, p, y, positive_p, positive_y, keep=None):
    k = np.ones_like(y, dtype=bool) if keep is None else keep
    wk = w * k
    pb, yb = positive_p.astype(int), positive_y.astype(int)
    acc = _ratio(wk @ (pb == yb).astype(float), wk.sum(1))
    return acc, _f1_weighted(wk, pb, yb, 2)


def _corr(w, p, y):
    s = w.sum(1)
    mp, my = _ratio(w @ p, s), _ratio(w @ y, s)
    cov = w @ (p * y) / np.where(s > 0, s, 1) - mp * my
    vp = w @ (p * p) / np.where(s > 0, s, 1) - mp ** 2
    vy = w @ (y * y) / np.where(s > 0, s, 1) - my ** 2
    ok = (vp > 1e-12 * (1 + mp ** 2)) & (vy > 1e-12 * (1 + my ** 2))
    return np.where(ok, cov / np.sqrt(np.where(ok, vp * vy, 1)), 0.0)


def _rounded_acc(w, p, y, bound):
    hit = (np.round(np.clip(p, -bound, bound)) == np.round(np.clip(y, -bound, bound))).astype(float)
    return _ratio(w @ hit, w.sum(1))


def _regression(fn: Callable) -> Callable:
    def metric(w: np.ndarray, preds: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = np.asarray(preds, dtype=np.float64).reshape(len(y), -1)[:, 0]
        return fn(w, p, np.asarray(y, dtype=np.float64).reshape(-1))
    return metric


def _classification(fn: Callable) -> Callable:
    def metric(w: np.ndarray, preds: np.ndarray, y: np.ndarray) -> np.ndarray:
        s = np.asarray(preds)
        pred = s.argmax(1) if s.ndim == 2 else s.astype(int)
        classes = s.shape[1] if s.ndim == 2 else int(max(pred.max(), y.max())) + 1
        return fn(w, pred, np.asarray(y).astype(int).reshape(-1), classes)
    return metric


#: ``name -> metric(weights [R, N], preds [N, K], targets [N]) -> [R]``.
WEIGHTED_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "MAE": _regression(lambda w, p, y: _ratio(w @ np.abs(p - y), w.sum(1))),
    "Corr": _regression(_corr),
    "Has0_acc_2": _regression(lambda w, p, y: _binary(w, p, y, p >= 0, y >= 0)[0]),
    "Has0_F1_score": _regression(lambda w, p, y: _binary(w, p, y, p >= 0, y >= 0)[1]),
    "Non0_acc_2": _regression(lambda w, p, y: _binary(w, p, y, p > 0, y > 0, y != 0)[0]),
    "Non0_F1_score": _regression(lambda w, p, y: _binary(w, p, y, p > 0, y > 0, y != 0)[1]),
    "Mult_acc_5": _regression(lambda w, p, y: _rounded_acc(w, p, y, 2.0)),
    "Mult_acc_7": _regression(lambda w, p, y: _rounded_acc(w, p, y, 3.0)),
    "Acc": _classification(lambda w, p, y, c: _ratio(w @ (p == y).astype(float), w.sum(1))),
    "F1_weighted": _classification(lambda w, p, y, c: _f1_weighted(w, p, y, c)),
    "F1_macro": _classification(lambda w, p, y, c: _f1_weighted(w, p, y, c, macro=True)),
}


def weighted_metric(name: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The weighted form of metric ``name`` (``ValueError`` naming the known ones otherwise)."""
    if name not in WEIGHTED_METRICS:
        raise ValueError(f"metric {name!r} has no resampled form; expected one of {sorted(WEIGHTED_METRICS)}")
    return WEIGHTED_METRICS[name]
