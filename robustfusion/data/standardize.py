"""Per-feature standardisation fitted on the training split (observed frames of present samples).

Raw affect features are on wildly different scales (COVAREP F0 in Hz next to unit-variance
GloVe vectors; heavy-tailed synthetic audio). The runner standardises every split with
statistics of the *training* split only (``data.standardize``, default on), saves them in the
run directory (``standardizer.json``) and applies the saved ones at evaluation, so a model is
always scored on the scaling it was trained with.

Evaluators that need the raw features (the synthetic benchmark's Bayes-optimal oracle) are
wrapped with :class:`RawInputPredictor`, which inverts the scaling before predicting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from robustfusion.batch import MultimodalBatch
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.io import atomic_write_json

__all__ = ["Standardizer", "RawInputPredictor"]


@dataclass
class Standardizer:
    """``x' = (x - mean) / std`` per modality and feature (``std`` floored at ``eps``)."""

    mean: dict[str, Tensor]
    std: dict[str, Tensor]

    @classmethod
    def fit(cls, dataset: MultimodalDataset, eps: float = 1e-6) -> Standardizer:
        """Statistics over the observed frames of the samples that have each modality."""
        mean, std = {}, {}
        for m, x in dataset.features.items():
            weight = torch.ones(x.shape[:-1], dtype=torch.bool)
            if m in dataset.frame_masks:
                weight &= dataset.frame_masks[m]
            if dataset.present is not None:
                col = dataset.present[:, dataset.modalities.index(m)]
                weight &= col.view(-1, *([1] * (x.dim() - 2)))
            rows = x[weight].double()
            if rows.shape[0] == 0:
                raise ValueError(f"cannot standardise modality {m!r}: no observed values in the training split")
            mean[m] = rows.mean(0).float()
            std[m] = rows.std(0, unbiased=False).clamp_min(eps).float()
        return cls(mean, std)

    def _apply(self, x: Tensor, m: str, inverse: bool) -> Tensor:
        if m not in self.mean:
            return x
        if x.shape[-1] != self.mean[m].shape[0]:
            raise ValueError(f"standardizer: modality {m!r} expected feature size {self.mean[m].shape[0]}, "
                             f"found {x.shape[-1]}")
        mu, sd = self.mean[m].to(x.device, x.dtype), self.std[m].to(x.device, x.dtype)
        return x * sd + mu if inverse else (x - mu) / sd

    def transform(self, dataset: MultimodalDataset) -> MultimodalDataset:
        """A new dataset with standardised features (masks, targets, ids, meta shared)."""
        return MultimodalDataset({m: self._apply(x, m, False) for m, x in dataset.features.items()},
                                 dataset.targets, dataset.task, dataset.num_outputs, dataset.frame_masks,
                                 dataset.present, dataset.ids, dataset.name, dataset.meta)

    def invert_batch(self, batch: MultimodalBatch) -> MultimodalBatch:
        return batch.replace(inputs={m: self._apply(x, m, True) for m, x in batch.inputs.items()})

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, {m: {"mean": self.mean[m].tolist(), "std": self.std[m].tolist()}
                                        for m in self.mean})

    @classmethod
    def load(cls, path: str | Path) -> Standardizer:
        path = Path(path)
        try:
            raw: Mapping[str, Mapping[str, list]] = json.loads(path.read_text())
            return cls({m: torch.tensor(v["mean"]) for m, v in raw.items()},
                       {m: torch.tensor(v["std"]) for m, v in raw.items()})
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a standardizer file ({err})") from None


class RawInputPredictor:
    """Wraps a predictor that expects raw features so it can be scored on standardised data."""

    supports_latent_reuse = False

    def __init__(self, predictor, standardizer: Standardizer) -> None:
        self.predictor, self.standardizer = predictor, standardizer
        for attr in ("modality_dims", "modalities", "task", "num_outputs", "registry_name"):
            if hasattr(predictor, attr):
                setattr(self, attr, getattr(predictor, attr))

    def predict(self, batch: MultimodalBatch) -> Tensor:
        return self.predictor.predict(self.standardizer.invert_batch(batch))
