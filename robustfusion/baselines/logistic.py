"""Multinomial logistic regression per modality subset: the classification reference.

The same features as the ridge specialists (:mod:`robustfusion.baselines.ridge`: sequences
mean-pooled over observed frames, the subset's modalities concatenated, standardised with training
statistics, absent modalities inside the subset mean-imputed), with weights that minimise the mean
cross-entropy plus ``l2 / 2 * ||W||^2`` (the intercept unpenalised; scikit-learn's
``LogisticRegression(C=1 / (n * l2))``), fitted in float64 with L-BFGS; ``l2`` is chosen from a
grid by the validation negative log-likelihood. The predictions are class logits. A library
choice: the issue asks for "a per-subset multinomial logistic-regression specialists row".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from robustfusion.baselines.ridge import RidgeSpecialist, fit_ridge_specialist
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import as_subset

__all__ = ["DEFAULT_L2", "fit_logistic_specialist"]

#: L2 penalties tried on the validation split.
DEFAULT_L2: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)


def _fit(z: torch.Tensor, y: torch.Tensor, k: int, l2: float, init: tuple[torch.Tensor, torch.Tensor] | None):
    """``(weight [F, K], bias [K])`` minimising mean cross-entropy + ``l2 / 2 * ||weight||^2``."""
    f = z.shape[1]
    w = (init[0].clone() if init else torch.zeros(f, k, dtype=torch.float64)).requires_grad_(True)
    b = (init[1].clone() if init else torch.zeros(k, dtype=torch.float64)).requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=1000, tolerance_grad=1e-10, tolerance_change=1e-14,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def fit_logistic_specialist(train: MultimodalDataset, val: MultimodalDataset, subset: str | Iterable[str],
                            l2s: Sequence[float] = DEFAULT_L2) -> RidgeSpecialist:
    """Multinomial logistic regression on ``subset`` (classification only), the penalty with the
    lowest validation NLL kept; returned as a :class:`RidgeSpecialist` whose scores are logits
    (``alpha`` holds the chosen ``l2``, ``val_scores`` the validation NLL per ``l2``).

    Raises:
        ValueError: a task other than classification, an empty grid or a negative penalty.
    """
    if train.task != "classification":
        raise ValueError(f"logistic specialists: expected a classification dataset, found task {train.task!r}")
    if not l2s or any(v < 0 for v in l2s):
        raise ValueError(f"l2s: expected a non-empty grid of penalties >= 0, found {list(l2s)}")
    base = fit_ridge_specialist(train, val, as_subset(subset), alphas=(1.0,))  # features and statistics
    z, _ = base.standardise(train.full_batch())
    zv, _ = base.standardise(val.full_batch())
    y, yv = train.targets.long(), val.targets.long()
    best, best_nll, init, scores = None, math.inf, None, {}
    for l2 in sorted(l2s, reverse=True):  # strong to weak penalty, each warm-started from the last
        w, b = _fit(z, y, train.num_outputs, float(l2), init)
        init = (w, b)
        nll = float(torch.nn.functional.cross_entropy(zv @ w + b, yv))
        scores[float(l2)] = nll
        if nll < best_nll:
            best, best_nll = (float(l2), w, b), nll
    assert best is not None
    return RidgeSpecialist(base.modalities, train.task, train.num_outputs, base.mean, base.std, best[1], best[2],
                           best[0], base.dims, base.fallback, base.feature_mode, scores)
