"""Split conformal prediction, per presence pattern.

Split conformal (Vovk et al. 2005; Lei et al., JASA 2018, arXiv 1604.04173): with ``n``
exchangeable calibration scores ``s_i`` and a test score ``s``, ``P(s <= q) >= level`` for ``q``
the ``ceil((n + 1) * level)``-th smallest score. Zaffran et al. (ICML 2023, arXiv 2306.02732)
show that one quantile over all missingness patterns keeps the overall coverage but under-covers
some patterns, and that calibrating *on samples masked to the test pattern* restores coverage per
pattern: "we propose to mask the calibration set so that it has the same missing pattern as the
test point". Here that is one quantile per presence pattern, each computed from the whole
validation set evaluated with only that pattern's modalities (:func:`conformal_quantile` per
pattern), which the evaluator can do for every subset.

:func:`monotone_quantiles` makes the per-pattern quantiles never shrink when a modality is removed
(this library's way to meet CML's principle for intervals; coverage can only rise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = ["conformal_quantile", "monotone_quantiles", "prediction_sets", "set_threshold"]


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: expected a coverage level in (0, 1), found {level}")


def conformal_quantile(scores: Tensor, level: float = 0.9) -> float:
    """The split-conformal quantile of calibration ``scores`` ``[n]`` at ``level``.

    The ``ceil((n + 1) * level)``-th smallest score; ``inf`` when ``n`` is too small for the level
    (``ceil((n + 1) * level) > n``), so the interval or set is then everything, never too narrow.

    Raises:
        ValueError: a level outside ``(0, 1)``, an empty or non-finite score vector.
    """
    _check_level(level)
    s = torch.as_tensor(scores, dtype=torch.float64).reshape(-1)
    if s.numel() == 0:
        raise ValueError("scores: expected at least one calibration score, found none")
    if not bool(torch.isfinite(s).all()):
        raise ValueError("scores: expected finite calibration scores, found NaN or inf")
    n = s.numel()
    k = math.ceil((n + 1) * level)
    if k > n:
        return math.inf
    return float(torch.sort(s).values[k - 1])


def monotone_quantiles(quantiles: Mapping[tuple[str, ...], float]) -> dict[tuple[str, ...], float]:
    """Per-pattern quantiles made non-increasing along the subset order.

    ``q'(T) = max over patterns S with S ⊇ T of q(S)``: removing a modality never narrows an
    interval. Each ``q'(T) >= q(T)``, so every pattern keeps at least its nominal coverage.

    Args:
        quantiles: ``{pattern: q}``, a pattern being a tuple of modality names.
    """
    sets = {p: frozenset(p) for p in quantiles}
    return {t: max(q for s, q in quantiles.items() if sets[s] >= sets[t]) for t in quantiles}


def set_threshold(probs: Tensor, labels: Tensor, level: float = 0.9) -> float:
    """The score threshold of LAC prediction sets (Sadinle et al., JASA 2019, arXiv 1609.00451).

    Non-conformity score ``1 - p_y`` of the true class on calibration data ``probs`` ``[n, C]``,
    ``labels`` ``[n]``; returns its :func:`conformal_quantile`.
    """
    p = torch.as_tensor(probs, dtype=torch.float64)
    y = torch.as_tensor(labels).long().reshape(-1)
    if p.dim() != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"probs/labels: expected [n, C] and [n], found {tuple(p.shape)} and {tuple(y.shape)}")
    return conformal_quantile(1.0 - p.gather(1, y[:, None]).squeeze(1), level)


def prediction_sets(probs: Tensor, qhat: float | Tensor) -> Tensor:
    """``[N, C]`` boolean prediction sets ``{c : 1 - p_c <= qhat}``.

    ``qhat`` is one threshold or one per row (``[N]``). The top class is always included, so a
    set is never empty (with ``qhat = inf`` it is every class).
    """
    p = torch.as_tensor(probs, dtype=torch.float64)
    q = torch.as_tensor(qhat, dtype=torch.float64)
    sets = (1.0 - p) <= (q[:, None] if q.dim() == 1 else q)
    top = torch.nn.functional.one_hot(p.argmax(dim=1), p.shape[1]).bool()
    return sets | top
