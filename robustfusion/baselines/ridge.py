"""Ridge regression on pooled features: the "dedicated linear model for this subset" reference.

Closed-form ridge regression on standardised utterance features, fitted on the training split
and selected on the validation split. Sequence modalities are mean-pooled over their observed
frames (or flattened), the subset's modalities concatenated, every feature standardised with
training statistics, and ``alpha`` chosen from a grid by the validation score (MAE for
regression, error rate otherwise). Classification regresses one-hot targets (argmax decides);
multilabel regresses the 0/1 labels and returns ``score - 0.5`` so that the metrics' logit
threshold 0 equals a 0.5 threshold on the ridge score. Absent modalities inside a specialist's
own subset are mean-imputed; a sample with none of them present gets the training fallback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from robustfusion.batch import MultimodalBatch
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import as_subset, check_subset
from robustfusion.masking import masked_mean
from robustfusion.models.base import target_fallback

__all__ = ["DEFAULT_ALPHAS", "FEATURE_MODES", "RidgeSpecialist", "fit_ridge_specialist",
           "pooled_features"]

#: Ridge penalties tried on the validation split.
DEFAULT_ALPHAS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)
#: How sequence modalities become ridge features (see :func:`pooled_features`).
FEATURE_MODES = ("mean", "flatten")


def pooled_features(batch: MultimodalBatch, modalities: Sequence[str], mode: str = "mean") -> tuple[Tensor, Tensor]:
    """``(x [B, F], present [B, M])``: the modalities' features concatenated in ``modalities``
    order. ``mode="mean"`` (default): each sequence mean-pooled over its observed frames;
    ``"flatten"``: every frame kept (unobserved frames zeroed), ``[B, T * D]`` per sequence, which
    needs the same ``T`` at fit and predict time. ``[B, D]`` inputs are used as they are."""
    if mode not in FEATURE_MODES:
        raise ValueError(f"feature mode: expected one of {FEATURE_MODES}, found {mode!r}")
    parts = []
    for m in modalities:
        x, fm = batch.inputs[m], batch.frame_mask(m)
        if x.dim() == 3 and mode == "mean":
            x = masked_mean(x, fm)
        elif x.dim() == 3:
            x = (x if fm is None else x * fm.unsqueeze(-1).to(x.dtype)).flatten(1)
        parts.append(x)
    present = torch.stack([batch.present_mask(m) for m in modalities], dim=1)
    return torch.cat(parts, dim=-1), present


def _feature_widths(batch: MultimodalBatch, modalities: Sequence[str], mode: str) -> tuple[int, ...]:
    return tuple(int(batch.inputs[m].shape[-1] * (batch.inputs[m].shape[1] if batch.inputs[m].dim() == 3
                                                    and mode == "flatten" else 1)) for m in modalities)


def _targets_matrix(targets: Tensor, task: str, k: int) -> Tensor:
    if task == "classification":
        return torch.nn.functional.one_hot(targets.long(), k).double()
    return targets.double().reshape(len(targets), -1)


@dataclass
class RidgeSpecialist:
    """A fitted ridge predictor for one modality subset (see the module docstring).

    Attributes:
        modalities: the subset, in dataset order.
        task, num_outputs: as the dataset's.
        mean, std: ``[F]`` training statistics of the pooled features.
        weight, bias: ``[F, K]`` and ``[K]`` on standardised features.
        alpha: the selected penalty; ``val_scores``: ``{alpha: validation score}`` (lower is better).
        dims: ``[M]`` feature width of each modality (for mean imputation of absent ones).
        feature_mode: ``"mean"`` or ``"flatten"`` (:func:`pooled_features`).
        fallback: ``[K]`` prediction when none of ``modalities`` is present.
    """

    modalities: tuple[str, ...]
    task: str
    num_outputs: int
    mean: Tensor
    std: Tensor
    weight: Tensor
    bias: Tensor
    alpha: float
    dims: tuple[int, ...]
    fallback: Tensor
    feature_mode: str = "mean"
    val_scores: dict[float, float] = field(default_factory=dict)

    def standardise(self, batch: MultimodalBatch) -> tuple[Tensor, Tensor]:
        """``([B, F] float64 standardised features (absent modalities 0), [B, M] presence)``,
        computed on the CPU where the fitted statistics live."""
        batch = batch.to("cpu")
        found = _feature_widths(batch, self.modalities, self.feature_mode)
        if found != self.dims:
            raise ValueError(f"ridge specialist {'+'.join(self.modalities)}: expected feature widths "
                             f"{list(self.dims)} ({self.feature_mode!r} features), found {list(found)}")
        x, present = pooled_features(batch, self.modalities, self.feature_mode)
        z = (x.double() - self.mean) / self.std
        cols = torch.repeat_interleave(present, torch.tensor(self.dims, device=present.device), dim=1)
        return torch.where(cols, z, torch.zeros_like(z)), present  # absent -> training mean

    def scores(self, batch: MultimodalBatch) -> Tensor:
        z, _ = self.standardise(batch)
        return z @ self.weight + self.bias

    def predict(self, batch: MultimodalBatch) -> Tensor:
        """``[B, K]`` float32: regression values, class scores (argmax) or multilabel logits-like
        ``score - 0.5``."""
        z, present = self.standardise(batch)
        s = z @ self.weight + self.bias
        if self.task == "multilabel":
            s = s - 0.5
        none = ~present.any(dim=1, keepdim=True)
        return torch.where(none, self.fallback.double().expand_as(s), s).float()


def _val_score(task: str, scores: Tensor, targets: Tensor) -> float:
    """Lower is better: MAE (regression), error rate (classification, multilabel at 0.5)."""
    if task == "regression":
        return float((scores - targets.double().reshape(scores.shape)).abs().mean())
    if task == "classification":
        return float((scores.argmax(1) != targets.long()).double().mean())
    return float(((scores > 0.5).double() != targets.double()).double().mean())


def fit_ridge_specialist(train: MultimodalDataset, val: MultimodalDataset, subset: str | Iterable[str],
                         alphas: Sequence[float] = DEFAULT_ALPHAS, feature_mode: str = "mean") -> RidgeSpecialist:
    """Fit ridge regressions for every ``alpha`` on ``train`` and keep the one with the best
    validation score; closed form through one eigendecomposition of ``X^T X`` (float64).

    ``feature_mode``: ``"mean"`` (default; sequences mean-pooled over observed frames) or
    ``"flatten"`` (every frame a feature; for short fixed-length sequences: the cost grows as
    ``(T * D)^3``).

    Raises:
        ValueError: an unknown or empty subset, an empty alpha grid or a negative alpha.
    """
    subset = as_subset(subset)
    check_subset(subset, train.modalities)
    mods = tuple(m for m in train.modalities if m in subset)
    if not alphas or any(a < 0 for a in alphas):
        raise ValueError(f"alphas: expected a non-empty grid of penalties >= 0, found {list(alphas)}")
    k = train.num_outputs
    full = train.full_batch()
    x, present = pooled_features(full, mods, feature_mode)
    x = x.double()
    dims = _feature_widths(full, mods, feature_mode)
    cols = torch.repeat_interleave(present, torch.tensor(dims), dim=1)
    n_obs = cols.double().sum(0).clamp_min(1.0)
    mean = (x * cols).sum(0) / n_obs
    var = (((x - mean) * cols) ** 2).sum(0) / n_obs
    std = torch.where(var > 1e-12, var.sqrt(), torch.ones_like(var))
    z = torch.where(cols, (x - mean) / std, torch.zeros_like(x))
    y = _targets_matrix(train.targets, train.task, k)
    bias = y.mean(0)
    evals, evecs = torch.linalg.eigh(z.T @ z)
    proj = evecs.T @ (z.T @ (y - bias))  # [F, K]
    fallback = target_fallback(train.task, train.targets, k)
    best: RidgeSpecialist | None = None
    best_score = math.inf
    scores_by_alpha: dict[float, float] = {}
    for alpha in alphas:
        weight = evecs @ (proj / (evals.clamp_min(0.0) + alpha).clamp_min(1e-12).unsqueeze(1))
        cand = RidgeSpecialist(mods, train.task, k, mean, std, weight, bias, float(alpha), dims, fallback,
                               feature_mode)
        score = _val_score(train.task, cand.scores(val.full_batch()), val.targets)
        scores_by_alpha[float(alpha)] = score
        if best is None or score < best_score:  # ties keep the earlier alpha of the grid
            best, best_score = cand, score
    assert best is not None
    best.val_scores = scores_by_alpha
    return best
