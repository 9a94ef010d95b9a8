"""Modality-dropping protocols, applied through the presence and frame masks only.

Never by writing magic values into features (DESIGN.md). Test-time protocols draw from their
own generator, seeded from ``(seed, protocol, level)`` by :func:`protocol_generator`, so two
models evaluated with the same seed see the identical drop pattern:

* ``subset``: keep exactly a given set of modalities (GMC's partial-observation protocol);
* ``sample_rate``: drop each modality of each sample independently with probability ``p``
  (option: always keep at least one);
* ``frame_rate``: drop each frame of each sequence modality independently with rate ``r``
  (EMT-DLFR / TFR-Net), one generator per modality;
* :class:`ModalityDropout`: train-time modality dropout as an augmentation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations

import torch
from torch import Tensor

from robustfusion.batch import MultimodalBatch
from robustfusion.seeding import derived_seed

__all__ = [
    "PROTOCOLS",
    "ModalityDropout",
    "all_subsets",
    "drop_frames",
    "drop_samples",
    "keep_subset",
    "protocol_generator",
    "protocol_seed",
    "subset_name",
]

PROTOCOLS = ("subsets", "sample_rate", "frame_rate")


def all_subsets(modalities: Iterable[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset, smallest first, in modality order (7 for three modalities)."""
    mods = tuple(modalities)
    return [c for k in range(1, len(mods) + 1) for c in combinations(mods, k)]


def subset_name(subset: Iterable[str]) -> str:
    """Canonical label of a subset, e.g. ``"text+audio"``."""
    return "+".join(subset)


def protocol_seed(seed: int, protocol: str, level: float | str, modality: str = "") -> int:
    """:func:`robustfusion.seeding.derived_seed` of ``(seed, protocol, level[, modality])``, the
    level written with 6 decimals (so ``0.1 * 3`` and ``0.3`` give the same seed)."""
    lvl = f"{level:.6f}" if isinstance(level, (int, float)) else str(level)
    return derived_seed(seed, protocol, lvl, modality)


def protocol_generator(seed: int, protocol: str, level: float | str, modality: str = "") -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by :func:`protocol_seed`."""
    g = torch.Generator()
    g.manual_seed(protocol_seed(seed, protocol, level, modality))
    return g


def _check_rate(rate: float, what: str) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{what}: expected a rate in [0, 1], found {rate}")


def keep_subset(batch: MultimodalBatch, subset: Iterable[str]) -> MultimodalBatch:
    """Mark every modality outside ``subset`` absent (those inside keep their own mask)."""
    keep = set(subset)
    unknown = sorted(keep - set(batch.modalities))
    if unknown:
        raise ValueError(f"subset names unknown modalities {unknown}; the batch has {list(batch.modalities)}")
    cols = torch.tensor([m in keep for m in batch.modalities], device=batch.device)
    return batch.with_present(batch.present & cols)


def drop_samples(batch: MultimodalBatch, rate: float, generator: torch.Generator | None = None,
                 keep_at_least_one: bool = False) -> MultimodalBatch:
    """Drop each (sample, modality) independently with probability ``rate``.

    With ``keep_at_least_one`` a sample that would lose all its present modalities keeps one of
    them, chosen uniformly from the same generator. Draws are made on the CPU so the pattern
    does not depend on the device.
    """
    _check_rate(rate, "sample_rate")
    b, m = batch.present.shape
    drop = torch.rand(b, m, generator=generator) < rate
    present = batch.present.cpu() & ~drop
    if keep_at_least_one:
        lost = ~present.any(dim=1) & batch.present.cpu().any(dim=1)
        choice = torch.rand(b, m, generator=generator).masked_fill(~batch.present.cpu(), -1.0).argmax(dim=1)
        rescue = torch.zeros_like(present)
        rescue[torch.arange(b), choice] = True
        present = present | (rescue & lost.unsqueeze(1))
    return batch.with_present(present.to(batch.device))


def drop_frames(batch: MultimodalBatch, rate: float, generators: Mapping[str, torch.Generator] | None = None,
                modalities: Iterable[str] | None = None) -> MultimodalBatch:
    """Drop each frame of each sequence modality independently with probability ``rate``.

    ``generators`` maps modality -> generator (a separate seed per modality, so adding a
    modality does not change the others' pattern). Sequences are ``[B, T, D]`` features or raw
    ``[B, T, C, H, W]`` frames; utterance-level ``[B, D]`` modalities have no frames and are left
    as they are. Dropped frames are marked in the frame mask only.
    """
    _check_rate(rate, "frame_rate")
    names = list(modalities) if modalities is not None else list(batch.modalities)
    new = {}
    for m in names:
        x = batch.inputs[m]
        if x.dim() < 3:
            continue
        g = None if generators is None else generators.get(m)
        keep = torch.rand(x.shape[:2], generator=g) >= rate
        old = batch.frame_mask(m)
        new[m] = keep.to(batch.device) if old is None else (old & keep.to(old.device))
    return batch.with_frame_masks(new) if new else batch


class ModalityDropout:
    """Train-time augmentation: drop each modality of each sample with probability ``p``.

    Args:
        p: one probability for every modality, or ``{name: p}`` (names not given: 0).
        keep_at_least_one: never leave a sample with no modality (default ``True``); a sample
            whose draw would remove all its modalities keeps every modality it had (the draw is
            undone for that sample, unlike :func:`drop_samples`, which keeps one at random).

    ``augment(batch, generator=None)`` returns the batch with the presence mask reduced.
    """

    def __init__(self, p: float | Mapping[str, float], keep_at_least_one: bool = True) -> None:
        if isinstance(p, Mapping):
            for k, v in p.items():
                _check_rate(float(v), f"modality dropout p[{k!r}]")
        else:
            _check_rate(float(p), "modality dropout p")
        self.p, self.keep_at_least_one = p, keep_at_least_one

    def probabilities(self, modalities: Iterable[str]) -> Tensor:
        mods = list(modalities)
        if isinstance(self.p, Mapping):
            return torch.tensor([float(self.p.get(m, 0.0)) for m in mods])
        return torch.full((len(mods),), float(self.p))

    def __call__(self, batch: MultimodalBatch, generator: torch.Generator | None = None) -> MultimodalBatch:
        probs = self.probabilities(batch.modalities)
        if not bool((probs > 0).any()):
            return batch
        b, m = batch.present.shape
        drop = torch.rand(b, m, generator=generator) < probs
        present = batch.present.cpu() & ~drop
        if self.keep_at_least_one:
            lost = ~present.any(dim=1) & batch.present.cpu().any(dim=1)
            present[lost] = batch.present.cpu()[lost]
        return batch.with_present(present.to(batch.device))
