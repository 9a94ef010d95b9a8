"""The train-time augmentations of a run: ``train.modality_dropout``,
``train.random_rate_frame_dropout`` and the ``train.augment`` list, built from
:mod:`robustfusion.augment`'s registry, each with its own per-epoch generator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from robustfusion.augment import Augmentation, create_augmentation
from robustfusion.batch import MultimodalBatch
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.seeding import derived_seed

__all__ = ["RunAugmentations", "run_augmentations"]


@dataclass(frozen=True)
class RunAugmentations:
    """The augmentations applied, in order, to every training batch.

    ``entries`` are ``(seed key, augmentation)``; each draws from a generator seeded from
    ``(seed, seed key, epoch)`` (the key is the registry name, suffixed ``#i`` when a name comes
    again), so adding one augmentation does not change the others' draws.
    """

    entries: tuple[tuple[str, Augmentation], ...]

    def for_epoch(self, seed: int, epoch: int) -> list[tuple[Augmentation, torch.Generator]]:
        """Each augmentation with its generator for ``epoch``."""
        return [(aug, torch.Generator().manual_seed(derived_seed(seed, key, epoch))) for key, aug in self.entries]

    @staticmethod
    def apply(batch: MultimodalBatch, drawn: list[tuple[Augmentation, torch.Generator]]) -> MultimodalBatch:
        """``batch`` after every augmentation of :meth:`for_epoch`, in order."""
        for aug, gen in drawn:
            batch = aug(batch, gen)
        return batch

    def __iter__(self) -> Iterator[tuple[str, Augmentation]]:
        return iter(self.entries)


def _specs(cfg: Any) -> list[dict[str, Any]]:
    """The ``{name, **params}`` list: the two shortcut keys first, then ``train.augment``."""
    specs: list[dict[str, Any]] = []
    if cfg.modality_dropout > 0:
        specs.append({"name": "modality_dropout", "p": float(cfg.modality_dropout)})
    if cfg.random_rate_frame_dropout:
        specs.append({"name": "random_rate_frame_dropout"})
    extra = cfg.augment
    extra = OmegaConf.to_container(extra) if isinstance(extra, DictConfig) or OmegaConf.is_config(extra) else extra
    for i, spec in enumerate(extra or []):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError(f"train.augment[{i}]: expected {{name: <augmentation>, <param>: <value>, ...}}, "
                             f"found {spec!r}")
        specs.append(dict(spec))
    return specs


def run_augmentations(cfg: Any, train: MultimodalDataset) -> RunAugmentations:
    """The augmentations ``cfg`` (a ``TrainConfig``) asks for; ``ValueError`` for an unknown name
    or parameter, and for a frame augmentation on utterance-level data (nothing to drop)."""
    entries: list[tuple[str, Augmentation]] = []
    seen: dict[str, int] = {}
    for spec in _specs(cfg):
        name = str(spec.pop("name"))
        if name == "random_rate_frame_dropout" and not any(x.dim() == 3 for x in train.features.values()):
            raise ValueError(f"train.random_rate_frame_dropout drops frames of sequences, but every modality of "
                             f"{train.name!r} is utterance-level ({train.modality_dims}); use train.modality_dropout")
        aug = create_augmentation(name, **spec)
        n = seen.get(name, 0)
        seen[name] = n + 1
        entries.append((name if n == 0 else f"{name}#{n}", aug))
    return RunAugmentations(tuple(entries))
