"""Train-time augmentations (robustfusion.augment): modality dropout, GCNet's missing-rate mask,
LNLN's random-rate frame dropout, and their registry. LNLN's is checked against a hand-written
loop reference of its drop pattern."""

from __future__ import annotations

import pytest
import torch

from robustfusion import MultimodalBatch
from robustfusion.augment import (
    MissingRateDropout,
    ModalityDropout,
    RandomRateFrameDropout,
    create_augmentation,
    list_augmentations,
)
from robustfusion.dropping import drop_to_missing_rate

MODS = ("text", "audio", "vision")


def _batch(b: int = 8, t: int = 5, present=None, frame_masks=None) -> MultimodalBatch:
    g = torch.Generator().manual_seed(0)
    inputs = {"text": torch.randn(b, t, 2, generator=g), "audio": torch.randn(b, 3, generator=g),
              "vision": torch.randn(b, t + 1, 2, generator=g)}
    return MultimodalBatch(inputs, present=present, frame_masks=frame_masks)


# --------------------------------------------------------------------------- train-time dropout
def test_modality_dropout():
    batch = _batch(4000)
    assert ModalityDropout(0.0)(batch) is batch
    out = ModalityDropout(0.3, keep_at_least_one=False)(batch, torch.Generator().manual_seed(0)).present
    assert torch.allclose(1.0 - out.float().mean(dim=0), torch.full((3,), 0.3), atol=0.03)
    never_empty = ModalityDropout(0.7)(batch, torch.Generator().manual_seed(0)).present
    assert bool(never_empty.any(dim=1).all())
    assert not ModalityDropout(1.0, keep_at_least_one=False)(batch).present.any()
    per_mod = ModalityDropout({"audio": 1.0}, keep_at_least_one=False)(batch, torch.Generator().manual_seed(0))
    assert not per_mod.present[:, 1].any() and bool(per_mod.present[:, [0, 2]].all())
    with pytest.raises(ValueError, match=r"p\['audio'\].*found 2"):
        ModalityDropout({"audio": 2.0})
    a = ModalityDropout(0.5)(batch, torch.Generator().manual_seed(3)).present
    b = ModalityDropout(0.5)(batch, torch.Generator().manual_seed(3)).present
    assert torch.equal(a, b)
    assert torch.equal(ModalityDropout(0.5).probabilities(MODS), torch.full((3,), 0.5))


def test_modality_dropout_undoes_a_draw_that_would_empty_a_sample():
    present = torch.ones(500, 3, dtype=torch.bool)
    present[:, 2] = False
    batch = _batch(500, present=present)
    out = ModalityDropout(0.9)(batch, torch.Generator().manual_seed(0)).present
    emptied_rows = out.sum(dim=1) == 2  # rows whose draw was undone keep both of their modalities
    assert emptied_rows.any() and not out[:, 2].any()
    assert bool(out.any(dim=1).all())



def test_missing_rate_dropout_is_the_protocol_mask_at_one_rate():
    batch = _batch(64)
    assert MissingRateDropout(0.0)(batch) is batch
    got = MissingRateDropout(0.4)(batch, torch.Generator().manual_seed(9)).present
    want = drop_to_missing_rate(batch, 0.4, torch.Generator().manual_seed(9)).present
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match="missing-rate dropout"):
        MissingRateDropout(-0.1)


# --------------------------------------------------------------------------- LNLN train-time augmentation
def _reference_random_rate(batch: MultimodalBatch, g: torch.Generator, max_rate=1.0, complete_fraction=0.5,
                           same=False) -> dict[str, torch.Tensor]:
    """LNLN's training mask written out sample by sample, same draws in the same order: per
    sequence modality a rate U(0, max_rate) per sample, int(B * fraction) samples (randperm)
    at rate 0, a frame kept when its U(0, 1) draw is >= the sample's rate."""
    b = batch.present.shape[0]
    k = int(b * complete_fraction)
    shared = torch.randperm(b, generator=g)[:k].tolist() if same else None
    out = {}
    for m in batch.modalities:
        x = batch.inputs[m]
        if x.dim() < 3:
            continue
        rate = (torch.rand(b, generator=g) * max_rate).tolist()
        complete = shared if same else torch.randperm(b, generator=g)[:k].tolist()
        for i in complete:
            rate[i] = 0.0
        u = torch.rand(b, x.shape[1], generator=g).tolist()
        old = batch.frame_mask(m)
        out[m] = torch.tensor([[u[i][t] >= rate[i] and (old is None or bool(old[i, t])) for t in range(x.shape[1])]
                               for i in range(b)])
    return out


@pytest.mark.parametrize("same", [False, True])
def test_random_rate_frame_dropout_matches_the_hand_written_reference(same):
    fm = {"text": torch.rand(9, 5, generator=torch.Generator().manual_seed(5)) > 0.3}
    fm["text"][:, 0] = True
    batch = _batch(9, frame_masks=fm)
    for max_rate, frac in ((1.0, 0.5), (0.5, 0.25)):
        aug = RandomRateFrameDropout(max_rate, frac, same_complete_samples=same)
        got = aug(batch, torch.Generator().manual_seed(3))
        want = _reference_random_rate(batch, torch.Generator().manual_seed(3), max_rate, frac, same)
        assert set(got.frame_masks) == {"text", "vision"} == set(want)
        for m in ("text", "vision"):
            assert torch.equal(got.frame_mask(m), want[m]), m
        assert got.frame_mask("audio") is None


def test_random_rate_frame_dropout_rates_and_complete_half():
    batch = _batch(2000, t=40)
    out = RandomRateFrameDropout()(batch, torch.Generator().manual_seed(0))
    for m in ("text", "vision"):
        kept = out.frame_mask(m).float().mean(dim=1)  # per sample: 1 - its rate (+ noise)
        complete = int((kept == 1.0).sum())
        assert 1000 <= complete <= 1060  # exactly half at rate 0, a few others by chance (rate < ~0.03)
        # the other half: rate ~ U(0, 1), so the kept fraction is ~ U(0, 1): mean 0.5
        assert abs(kept.mean().item() - 0.75) < 0.02
    # per modality: different halves; same_complete_samples: the same half everywhere
    t_full = out.frame_mask("text").all(dim=1)
    v_full = out.frame_mask("vision").all(dim=1)
    assert (t_full != v_full).any()
    same = RandomRateFrameDropout(same_complete_samples=True)(batch, torch.Generator().manual_seed(0))
    both = same.frame_mask("text").all(dim=1) & same.frame_mask("vision").all(dim=1)
    assert int(both.sum()) >= 1000
    # a sequence left with no frame marks its modality absent (the batch's rule), nothing else does
    assert torch.equal(out.present[:, 0], out.frame_mask("text").any(dim=1))
    assert bool(out.present[:, 1].all())


def test_random_rate_frame_dropout_edges():
    batch = _batch(16)
    none = RandomRateFrameDropout(max_rate=0.0)(batch, torch.Generator().manual_seed(0))
    assert all(bool(none.frame_mask(m).all()) for m in ("text", "vision"))
    a = RandomRateFrameDropout()(batch, torch.Generator().manual_seed(1))
    b = RandomRateFrameDropout()(batch, torch.Generator().manual_seed(1))
    assert all(torch.equal(a.frame_mask(m), b.frame_mask(m)) for m in ("text", "vision"))
    assert torch.equal(a.present[:, 1], batch.present[:, 1])  # utterance-level audio untouched
    utterance = MultimodalBatch({"text": torch.randn(4, 3), "audio": torch.randn(4, 2)})
    with pytest.raises(ValueError, match="utterance-level"):
        RandomRateFrameDropout()(utterance)
    with pytest.raises(ValueError, match="max_rate"):
        RandomRateFrameDropout(max_rate=1.5)
    with pytest.raises(ValueError, match="complete_fraction"):
        RandomRateFrameDropout(complete_fraction=-0.1)


# --------------------------------------------------------------------------- registry
@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_modality_dropout_refuses_rates_outside_0_1(rate):
    with pytest.raises(ValueError, match=r"modality dropout p.*\[0, 1\].*found"):
        ModalityDropout(rate)


def test_registry_builds_each_augmentation_by_name_with_its_params():
    assert list_augmentations() == ["missing_rate_dropout", "modality_dropout", "random_rate_frame_dropout"]
    batch = _batch(64)
    by_name = create_augmentation("missing_rate_dropout", rate=0.4)
    assert isinstance(by_name, MissingRateDropout) and by_name.rate == 0.4
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    assert torch.equal(by_name(batch, g1).present, MissingRateDropout(0.4)(batch, g2).present)
    assert create_augmentation("modality_dropout", p=0.2).p == 0.2
    assert create_augmentation("random_rate_frame_dropout", max_rate=0.5).max_rate == 0.5


def test_registry_refuses_unknown_names_and_parameters():
    with pytest.raises(ValueError, match=r"expected one of \['missing_rate_dropout'.*found 'dropout'"):
        create_augmentation("dropout")
    with pytest.raises(ValueError, match=r"augmentation 'modality_dropout': bad parameters \['rate'\]"):
        create_augmentation("modality_dropout", rate=0.3)
