"""Train-time augmentations that drop modalities or frames, one registry entry each.

Each augmentation is a callable ``augment(batch, generator=None) -> batch`` that changes the
presence mask or the frame masks only (never the features), drawing from ``generator`` (CPU):

* ``modality_dropout`` (:class:`ModalityDropout`): drop each modality of each sample with
  probability ``p``;
* ``missing_rate_dropout`` (:class:`MissingRateDropout`): GCNet's train-time mask
  (the ``missing_rate`` protocol's draw at one rate);
* ``random_rate_frame_dropout`` (:class:`RandomRateFrameDropout`): LNLN's augmentation (a frame
  drop rate drawn per sample and modality, half the samples of each modality left complete).

A run config reaches them by name: ``train.augment: [{name: missing_rate_dropout, rate: 0.3}]``
(:func:`create_augmentation`; ``train.modality_dropout`` / ``train.random_rate_frame_dropout``
are shortcuts for the first and last). The test-time protocols live in
:mod:`robustfusion.protocols`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from robustfusion.batch import MultimodalBatch
from robustfusion.dropping import MISSING_RATE_TOLERANCE, check_rate, drop_to_missing_rate
from robustfusion.registry import Registry

__all__ = [
    "AUGMENTATIONS",
    "Augmentation",
    "MissingRateDropout",
    "ModalityDropout",
    "RandomRateFrameDropout",
    "create_augmentation",
    "list_augmentations",
    "register_augmentation",
]

#: ``augment(batch, generator=None) -> batch``.
Augmentation = Callable[..., MultimodalBatch]
AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def register_augmentation(name: str) -> Callable[[Callable[..., Augmentation]], Callable[..., Augmentation]]:
    """Class decorator: ``@register_augmentation("name")`` makes ``train.augment: [{name: ...}]`` build it."""
    return AUGMENTATIONS.register(name)


def create_augmentation(name: str, **params: Any) -> Augmentation:
    """The augmentation ``name`` built with ``params`` (``ValueError`` for an unknown name or parameter)."""
    if name not in AUGMENTATIONS:
        raise ValueError(f"augmentation: expected one of {AUGMENTATIONS.names()}, found {name!r}")
    try:
        return AUGMENTATIONS.create(name, **params)
    except TypeError as err:
        raise ValueError(f"augmentation {name!r}: bad parameters {sorted(params)} ({err})") from None


def list_augmentations() -> list[str]:
    """Registered augmentation names, sorted."""
    return AUGMENTATIONS.names()


@register_augmentation("modality_dropout")
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
                check_rate(float(v), f"modality dropout p[{k!r}]")
        else:
            check_rate(float(p), "modality dropout p")
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


@register_augmentation("missing_rate_dropout")
class MissingRateDropout:
    """GCNet's train-time mask: :func:`drop_to_missing_rate` at one rate, fresh for every batch.

    GCNet (zeroQiaoba/GCNet, ``train_gcnet.py``, ``--mask-type constant-<eta>``) trains one model
    per missing rate ``eta`` with the same mask it tests with, drawn anew for each training,
    validation and test batch, and reports the test score of the best validation epoch. To
    reproduce a GCNet table cell, train with ``MissingRateDropout(eta)`` and evaluate the
    ``missing_rate`` protocol at ``levels={"missing_rate": [eta]}``; a single model evaluated over
    every rate is the MMIN-style reading (one model, all rates).

    ``augment(batch, generator=None)`` returns the batch with the presence mask reduced.
    """

    def __init__(self, rate: float, tolerance: float = MISSING_RATE_TOLERANCE) -> None:
        check_rate(float(rate), "missing-rate dropout rate")
        self.rate, self.tolerance = float(rate), float(tolerance)

    def __repr__(self) -> str:
        return f"MissingRateDropout(rate={self.rate})"

    def __call__(self, batch: MultimodalBatch, generator: torch.Generator | None = None) -> MultimodalBatch:
        if self.rate == 0.0:
            return batch
        return drop_to_missing_rate(batch, self.rate, generator, self.tolerance)


@register_augmentation("random_rate_frame_dropout")
class RandomRateFrameDropout:
    """LNLN's train-time augmentation: frames dropped with a rate drawn per sample and modality.

    LNLN (Zhang et al., "Towards Robust Multimodal Sentiment Analysis with Incomplete Data",
    NeurIPS 2024, arXiv 2409.20012; code Haoyu-ha/LNLN, ``core/dataset.py``): for each modality,
    every training sample gets a rate ``r ~ U(0, 1)``; a random half of the samples
    (``int(N / 2)``, chosen without replacement, separately for each modality) gets ``r = 0``;
    then each frame of that sample's sequence is kept when a fresh ``U(0, 1)`` draw exceeds
    ``r``. Here, per call (one training batch of ``B`` samples), for each sequence modality in
    batch order, from ``generator`` (CPU): ``rate = rand(B) * max_rate``; ``randperm(B)[:k]``
    with ``k = int(B * complete_fraction)`` get rate 0; ``keep = rand(B, T) >= rate`` (a frame is
    never dropped at rate 0); the result is ANDed with the batch's frame mask. With
    ``same_complete_samples`` one ``randperm(B)[:k]`` is drawn first and the same samples are
    complete in every modality (a reading of "half of the samples kept complete"; LNLN's code
    picks the half per modality).

    Differences from LNLN's code, on purpose: LNLN redraws the rates and halves once per epoch
    over the whole training set (when its loader fetches index 0), reseeds NumPy with a fixed
    seed before each modality's frame draws (so the frame draws repeat across epochs and
    modalities of the same length), keeps BERT's [CLS]/[SEP] tokens, writes UNK (id 100) into
    dropped text tokens and zeros into dropped audio/vision frames, and trains on the complete
    and the dropped inputs together. Here only the frame mask changes (a sequence left with no
    observed frame marks the modality absent, as :meth:`MultimodalBatch.with_frame_masks` does),
    and every batch gets fresh draws.

    Utterance-level modalities (``[B, D]``) are left as they are; a batch with no sequence
    modality is refused (``ValueError``): there are no frames to drop.

    Args:
        max_rate: rates are drawn from ``U(0, max_rate)`` (LNLN: 1.0).
        complete_fraction: fraction of the batch whose frames of a modality are all kept (LNLN: 0.5).
        same_complete_samples: the complete samples are the same for every modality.
    """

    def __init__(self, max_rate: float = 1.0, complete_fraction: float = 0.5,
                 same_complete_samples: bool = False) -> None:
        check_rate(float(max_rate), "random-rate frame dropout max_rate")
        check_rate(float(complete_fraction), "random-rate frame dropout complete_fraction")
        self.max_rate, self.complete_fraction = float(max_rate), float(complete_fraction)
        self.same_complete_samples = bool(same_complete_samples)

    def __repr__(self) -> str:
        return (f"RandomRateFrameDropout(max_rate={self.max_rate}, complete_fraction={self.complete_fraction}, "
                f"same_complete_samples={self.same_complete_samples})")

    def __call__(self, batch: MultimodalBatch, generator: torch.Generator | None = None) -> MultimodalBatch:
        seq = [m for m in batch.modalities if batch.inputs[m].dim() >= 3]
        if not seq:
            shapes = {m: tuple(x.shape) for m, x in batch.inputs.items()}
            raise ValueError(f"RandomRateFrameDropout drops frames of sequences, but every modality of the batch is "
                             f"utterance-level (one vector per sample; shapes {shapes}); use ModalityDropout")
        b = batch.present.shape[0]
        k = int(b * self.complete_fraction)
        shared = torch.randperm(b, generator=generator)[:k] if self.same_complete_samples else None
        new = {}
        for m in seq:
            rate = torch.rand(b, generator=generator) * self.max_rate
            complete = shared if shared is not None else torch.randperm(b, generator=generator)[:k]
            rate[complete] = 0.0
            keep = torch.rand(batch.inputs[m].shape[:2], generator=generator) >= rate.unsqueeze(1)
            old = batch.frame_mask(m)
            new[m] = keep.to(batch.device) if old is None else (old & keep.to(old.device))
        return batch.with_frame_masks(new)
