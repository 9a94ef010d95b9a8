"""Modality-dropping protocols, applied through the presence and frame masks only.

Never by writing magic values into features (CONTRIBUTING.md, conventions). Test-time protocols draw from their
own generator, seeded from ``(seed, protocol, level)`` by :func:`protocol_generator`, so two
models evaluated with the same seed see the identical drop pattern:

* ``subset``: keep exactly a given set of modalities (GMC's partial-observation protocol);
* ``sample_rate``: drop each modality of each sample independently with probability ``p``
  (option: always keep at least one);
* ``frame_rate``: drop each frame of each sequence modality independently with rate ``r``
  (EMT-DLFR / TFR-Net; LNLN's test protocol, see :func:`robustfusion.robustness.evaluate`), one
  generator per modality;
* ``missing_rate``: each modality of each sample missing with rate ``eta``, at least one modality
  always kept (GCNet / CPM-Net's mask, :func:`drop_to_missing_rate`);

The protocols built on these draws (levels, labels, which may reuse latents) are registered in
:mod:`robustfusion.protocols`; the train-time augmentations (modality dropout, GCNet's missing-rate
mask, LNLN's random-rate frame dropout) in :mod:`robustfusion.augment`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations

import torch
from torch import Tensor

from robustfusion.batch import MultimodalBatch
from robustfusion.seeding import derived_seed

__all__ = [
    "MISSING_RATE_TOLERANCE",
    "all_subsets",
    "as_subset",
    "check_rate",
    "check_subset",
    "drop_frames",
    "drop_samples",
    "drop_to_missing_rate",
    "keep_subset",
    "protocol_generator",
    "protocol_seed",
    "subset_name",
]

def all_subsets(modalities: Iterable[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset, smallest first, in modality order (7 for three modalities)."""
    mods = tuple(modalities)
    return [c for k in range(1, len(mods) + 1) for c in combinations(mods, k)]


def subset_name(subset: Iterable[str]) -> str:
    """Canonical label of a subset, e.g. ``"text+audio"``."""
    return "+".join(subset)


def as_subset(subset: str | Iterable[str]) -> tuple[str, ...]:
    """``"text+audio"`` or ``["text", "audio"]`` -> ``("text", "audio")`` (the inverse of :func:`subset_name`)."""
    return tuple(subset.split("+")) if isinstance(subset, str) else tuple(subset)


def check_subset(subset: tuple[str, ...], modalities: Sequence[str]) -> None:
    """A ``ValueError`` unless ``subset`` is a non-empty selection of ``modalities`` (a dataset's)."""
    unknown = [m for m in subset if m not in modalities]
    if not subset or unknown:
        raise ValueError(f"subset {list(subset)}: expected a non-empty subset of {list(modalities)}"
                         + (f", found unknown {unknown}" if unknown else ""))


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


def check_rate(rate: float, what: str) -> None:
    """``ValueError`` naming ``what`` unless ``0 <= rate <= 1``."""
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
    check_rate(rate, "sample_rate")
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
    check_rate(rate, "frame_rate")
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


#: :func:`drop_to_missing_rate`: the batch-level tolerance on the kept fraction (GCNet's 0.005).
MISSING_RATE_TOLERANCE = 0.005
#: :func:`drop_to_missing_rate`: the fewest rows a pattern is drawn over (GCNet's 32).
MISSING_RATE_MIN_ROWS = 32


def _missing_rate_pattern(n_rows: int, n_mod: int, rate: float, generator: torch.Generator | None,
                          tolerance: float) -> Tensor:
    """``[n_rows, n_mod]`` bool kept-pattern of :func:`drop_to_missing_rate` (all modalities present)."""
    keep_rate = 1.0 - rate
    if rate == 0.0:
        return torch.ones(n_rows, n_mod, dtype=torch.bool)
    if keep_rate <= 1.0 / n_mod + 1e-9:  # only one modality per sample is left: exactly one kept
        choice = torch.randint(0, n_mod, (n_rows,), generator=generator)
        return torch.nn.functional.one_hot(choice, n_mod).bool()
    # one modality per sample kept uniformly at random, every other cell kept with probability q,
    # so that the expected kept fraction is keep_rate: 1/M + (1 - 1/M) q = keep_rate
    q = (n_mod * keep_rate - 1.0) / (n_mod - 1.0)
    rows = max(n_rows, MISSING_RATE_MIN_ROWS)
    # never ask for a kept count the grid of rows x modalities cannot reach
    tol = max(tolerance, 1.0 / (rows * n_mod))
    for _ in range(100_000):
        choice = torch.randint(0, n_mod, (rows,), generator=generator)
        extra = torch.rand(rows, n_mod, generator=generator) < q
        pattern = torch.nn.functional.one_hot(choice, n_mod).bool() | extra
        if abs(pattern.double().mean().item() - keep_rate) < tol:
            return pattern[:n_rows]
    raise RuntimeError(f"missing_rate {rate}: no pattern within {tol} of the kept fraction {keep_rate} "
                       "in 100000 draws")


def drop_to_missing_rate(batch: MultimodalBatch, rate: float, generator: torch.Generator | None = None,
                         tolerance: float = MISSING_RATE_TOLERANCE) -> MultimodalBatch:
    """Mark each modality of each sample missing with rate ``rate``, always keeping one.

    GCNet (Lian et al., "GCNet: Graph Completion Network for Incomplete Multimodal Learning in
    Conversation", TPAMI 2023; code zeroQiaoba/GCNet, ``random_mask``, taken from CPM-Net) and the
    MMIN-style papers that follow it, with ``rate`` (their ``eta`` / ``mask_rate``) in 0.0, 0.1,
    ..., 0.7 for three modalities. Their mask, as their code builds it, for ``M`` modalities and
    the ``B`` samples of a batch:

    * ``rate == 0``: every modality kept (nothing is drawn);
    * ``1 - rate <= 1/M`` (``rate >= 2/3`` for three modalities, so ``0.7`` too): exactly one
      modality per sample, chosen uniformly; the realised missing rate is ``1 - 1/M`` (2/3 at
      ``rate=0.7``), not ``rate``;
    * otherwise: one modality per sample chosen uniformly is kept, and every other
      (sample, modality) is kept independently with probability
      ``q = (M (1 - rate) - 1) / (M - 1)``, so each modality is missing with rate ``rate`` and no
      sample loses all. The pattern is drawn over ``max(B, 32)`` rows and redrawn until the kept
      fraction of those rows is within ``tolerance`` (0.005) of ``1 - rate``; the first ``B``
      rows are used. (GCNet reaches ``q`` by a two-step estimate from a first draw, quantised to
      whole percent; here ``q`` is exact. The tolerance is widened to ``1 / (rows x M)`` when the
      grid is too small to reach it, where GCNet's loop would not end.)

    Draw order from ``generator`` (CPU): per attempt ``randint(0, M, (rows,))`` then
    ``rand(rows, M)``. Modalities the batch already marks absent stay absent; a sample whose
    kept modalities were all absent already keeps one of its present modalities, chosen
    uniformly by one ``rand(B, M)`` drawn only when that happens. Only the presence mask changes.
    """
    check_rate(rate, "missing_rate")
    b, m = batch.present.shape
    if b == 0 or m == 0:
        return batch
    pattern = _missing_rate_pattern(b, m, float(rate), generator, tolerance)
    before = batch.present.cpu()
    present = before & pattern
    lost = ~present.any(dim=1) & before.any(dim=1)
    if bool(lost.any()):
        choice = torch.rand(b, m, generator=generator).masked_fill(~before, -1.0).argmax(dim=1)
        rescue = torch.zeros_like(present)
        rescue[torch.arange(b), choice] = True
        present = present | (rescue & lost.unsqueeze(1))
    return batch.with_present(present.to(batch.device))
