"""Per-feature standardisation fitted on the training split (observed frames of present samples).

Raw affect features are on wildly different scales (COVAREP F0 in Hz next to unit-variance
GloVe vectors; heavy-tailed synthetic audio). The runner standardises every split with
statistics of the *training* split only (``data.standardize``, default on), saves them in the
run directory (``standardizer.json``) and applies the saved ones at evaluation, so a model is
always scored on the scaling it was trained with.

Features are clipped to ``[-clip, clip]`` after scaling (default 10): real splits carry values
far outside the training range (on the MOSI utterance features some test values lie 10^4-10^6
training standard deviations out, in columns that are nearly constant in training), and an
unclipped network extrapolates them into absurd predictions. Columns whose training standard
deviation is below ``eps`` are only centred. Predictors that need the raw features (the
synthetic benchmark's oracle) are scored on the raw split: drop patterns do not depend on the
features, so they see the same patterns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from robustfusion.data.dataset import MultimodalDataset
from robustfusion.io import atomic_write_json

__all__ = ["Standardizer"]


@dataclass
class Standardizer:
    """``x' = clip((x - mean) / std, -clip, clip)`` per modality and feature."""

    mean: dict[str, Tensor]
    std: dict[str, Tensor]
    clip: float | None = 10.0

    @classmethod
    def fit(cls, dataset: MultimodalDataset, eps: float = 1e-4, clip: float | None = 10.0) -> Standardizer:
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
            sd = rows.std(0, unbiased=False)
            std[m] = torch.where(sd < eps, torch.ones_like(sd), sd).float()
        return cls(mean, std, clip)

    def _apply(self, x: Tensor, m: str, inverse: bool) -> Tensor:
        if m not in self.mean:
            return x
        if x.shape[-1] != self.mean[m].shape[0]:
            raise ValueError(f"standardizer: modality {m!r} expected feature size {self.mean[m].shape[0]}, "
                             f"found {x.shape[-1]}")
        mu, sd = self.mean[m].to(x.device, x.dtype), self.std[m].to(x.device, x.dtype)
        if inverse:
            return x * sd + mu
        z = (x - mu) / sd
        return z.clamp(-self.clip, self.clip) if self.clip is not None else z

    def transform(self, dataset: MultimodalDataset) -> MultimodalDataset:
        """A new dataset with standardised features (masks, targets, ids, meta shared).

        Raises:
            ValueError: a modality's feature size differs from the one the statistics were
                fitted on; the message names the dataset's file and split.
        """
        meta = dataset.meta if isinstance(dataset.meta, dict) else {}
        for m, x in dataset.features.items():
            if m in self.mean and x.shape[-1] != self.mean[m].shape[0]:
                raise ValueError(f"{meta.get('source', dataset.name)}: split {meta.get('split', '?')!r}: modality {m!r}: "
                                 f"expected feature size {self.mean[m].shape[0]}, found {x.shape[-1]} (the expected "
                                 "size is the training data's, saved in the run's standardizer)")
        return MultimodalDataset({m: self._apply(x, m, False) for m, x in dataset.features.items()},
                                 dataset.targets, dataset.task, dataset.num_outputs, dataset.frame_masks,
                                 dataset.present, dataset.ids, dataset.name, dataset.meta, dataset.groups)

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, {"clip": self.clip, "modalities": {
            m: {"mean": self.mean[m].tolist(), "std": self.std[m].tolist()} for m in self.mean}})

    @classmethod
    def load(cls, path: str | Path) -> Standardizer:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
            mods: Mapping[str, Mapping[str, list]] = raw["modalities"]
            return cls({m: torch.tensor(v["mean"]) for m, v in mods.items()},
                       {m: torch.tensor(v["std"]) for m, v in mods.items()}, raw["clip"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a standardizer file ({err})") from None
