"""`SubsetRouter`: one dedicated predictor per modality subset, behind one ``predict``.

Each sample goes, by its presence pattern, to the specialist fitted on exactly the modalities it
has; a sample with none gets the training fallback. The router is a predictor like a model, so
the robustness evaluator (:func:`robustfusion.robustness.evaluate`) scores it under every
protocol (all subsets, random modality dropping, frame dropping) on the same drop patterns as the
models: "what a model built for this subset reaches", sample by sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import torch
from torch import Tensor

from robustfusion.baselines.logistic import DEFAULT_L2, fit_logistic_specialist
from robustfusion.baselines.ridge import DEFAULT_ALPHAS, fit_ridge_specialist
from robustfusion.batch import MultimodalBatch
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import all_subsets, as_subset, subset_name
from robustfusion.models.base import target_fallback

__all__ = ["Predictor", "SubsetRouter", "fit_logistic_specialists", "fit_ridge_specialists"]


class Predictor(Protocol):
    def predict(self, batch: MultimodalBatch) -> Tensor: ...


class SubsetRouter:
    """Route every sample to the specialist of its presence pattern.

    Args:
        specialists: ``{subset: predictor}``, a subset given as ``"text+audio"`` or a tuple of
            names; each ``predictor.predict(batch) -> [B, K]`` reads only its own modalities.
        modalities: every modality name, in dataset order.
        fallback: ``[K]`` prediction for a sample with no modality present.

    ``predict`` raises a ``ValueError`` for a sample whose pattern has no specialist.
    """

    def __init__(self, specialists: Mapping[str | tuple[str, ...], Predictor], modalities: Sequence[str],
                 fallback: Tensor) -> None:
        self.modalities = tuple(modalities)
        self.specialists: dict[tuple[str, ...], Predictor] = {}
        for subset, spec in specialists.items():
            s = as_subset(subset)
            unknown = [m for m in s if m not in self.modalities]
            if unknown or not s:
                raise ValueError(f"specialist {subset!r}: expected a non-empty subset of {list(self.modalities)}, "
                                 f"found unknown {unknown}")
            self.specialists[tuple(m for m in self.modalities if m in s)] = spec
        self.fallback = torch.as_tensor(fallback, dtype=torch.float32).reshape(-1)

    def __getitem__(self, subset: str | Iterable[str]) -> Predictor:
        """The specialist of ``subset`` (``"text+audio"`` or names in any order)."""
        s = as_subset(subset)
        return self.specialists[tuple(m for m in self.modalities if m in s)]

    def predict(self, batch: MultimodalBatch) -> Tensor:
        """``[B, K]`` float32 on the CPU."""
        present = torch.stack([batch.present_mask(m) for m in self.modalities], dim=1).cpu()
        out = self.fallback.expand(len(present), -1).clone()
        routed = ~present.any(dim=1)
        for subset, spec in self.specialists.items():
            pattern = torch.tensor([m in subset for m in self.modalities])
            rows = (present == pattern).all(dim=1)
            if bool(rows.any()):
                pred = torch.as_tensor(spec.predict(batch)).detach().float().cpu()
                out[rows] = (pred.unsqueeze(1) if pred.dim() == 1 else pred)[rows]
                routed |= rows
        if not bool(routed.all()):
            lost = sorted({subset_name(m for m, p in zip(self.modalities, row) if p)
                           for row in present[~routed].tolist()})
            raise ValueError(f"SubsetRouter: no specialist for the presence patterns {lost}; "
                             f"specialists exist for {[subset_name(s) for s in self.specialists]}")
        return out


def fit_ridge_specialists(train: MultimodalDataset, val: MultimodalDataset,
                          subsets: Iterable[str | Iterable[str]] | None = None, *,
                          alphas: Sequence[float] = DEFAULT_ALPHAS, feature_mode: str = "mean") -> SubsetRouter:
    """One :func:`robustfusion.baselines.fit_ridge_specialist` per subset (default: every
    non-empty subset of ``train``'s modalities), behind a :class:`SubsetRouter`."""
    chosen = [as_subset(s) for s in subsets] if subsets is not None else all_subsets(train.modalities)
    specs = {s: fit_ridge_specialist(train, val, s, alphas, feature_mode) for s in chosen}
    return SubsetRouter(specs, train.modalities, target_fallback(train.task, train.targets, train.num_outputs))


def fit_logistic_specialists(train: MultimodalDataset, val: MultimodalDataset,
                             subsets: Iterable[str | Iterable[str]] | None = None, *,
                             l2s: Sequence[float] = DEFAULT_L2) -> SubsetRouter:
    """One :func:`robustfusion.baselines.fit_logistic_specialist` per subset (classification;
    default: every non-empty subset of ``train``'s modalities), behind a :class:`SubsetRouter`."""
    chosen = [as_subset(s) for s in subsets] if subsets is not None else all_subsets(train.modalities)
    specs = {s: fit_logistic_specialist(train, val, s, l2s) for s in chosen}
    return SubsetRouter(specs, train.modalities, target_fallback(train.task, train.targets, train.num_outputs))
