"""Modality-dropping protocols: subsets, sample-level rates, frame-level rates, GCNet's missing rate
with one modality kept (train-time augmentations: tests/test_augment.py). The published
protocols are checked against hand-written loop references of their drop patterns."""

from __future__ import annotations

import pytest
import torch

from robustfusion import MultimodalBatch
from robustfusion.dropping import (
    all_subsets,
    as_subset,
    check_subset,
    drop_frames,
    drop_samples,
    drop_to_missing_rate,
    keep_subset,
    protocol_generator,
    protocol_seed,
    subset_name,
)

MODS = ("text", "audio", "vision")


def _batch(b: int = 8, t: int = 5, present=None, frame_masks=None) -> MultimodalBatch:
    g = torch.Generator().manual_seed(0)
    inputs = {"text": torch.randn(b, t, 2, generator=g), "audio": torch.randn(b, 3, generator=g),
              "vision": torch.randn(b, t + 1, 2, generator=g)}
    return MultimodalBatch(inputs, present=present, frame_masks=frame_masks)


# --------------------------------------------------------------------------- subsets
def test_all_subsets_smallest_first_in_modality_order():
    subsets = all_subsets(MODS)
    assert subsets == [("text",), ("audio",), ("vision",), ("text", "audio"), ("text", "vision"),
                       ("audio", "vision"), ("text", "audio", "vision")]
    assert len(all_subsets(["a", "b", "c", "d", "e"])) == 2**5 - 1
    assert subset_name(("text", "audio")) == "text+audio"


def test_as_subset_reads_a_name_or_a_list_and_check_subset_names_what_is_wrong():
    assert as_subset("text+audio") == as_subset(["text", "audio"]) == ("text", "audio")
    assert as_subset(subset_name(("audio", "vision"))) == ("audio", "vision")
    check_subset(("text", "vision"), MODS)
    with pytest.raises(ValueError, match=r"expected a non-empty subset of \['text', 'audio', 'vision'\], "
                                         r"found unknown \['txt'\]"):
        check_subset(("txt",), MODS)
    with pytest.raises(ValueError, match=r"subset \[\]: expected a non-empty subset"):
        check_subset((), MODS)


def test_keep_subset_marks_only_the_others_absent():
    present = torch.ones(8, 3, dtype=torch.bool)
    present[0, 0] = False  # already missing text: stays missing
    batch = _batch(present=present)
    kept = keep_subset(batch, ["text", "vision"])
    expected = present.clone()
    expected[:, 1] = False
    assert torch.equal(kept.present, expected)
    assert torch.equal(batch.present, present)  # the input batch is unchanged
    for m in MODS:  # features untouched: "missing" is a mask only
        assert kept.inputs[m] is batch.inputs[m]
    assert not keep_subset(batch, []).present.any()
    with pytest.raises(ValueError, match=r"unknown modalities \['depth'\].*'text'"):
        keep_subset(batch, ["text", "depth"])


# --------------------------------------------------------------------------- sample-level rate
def test_drop_samples_rate_0_keeps_all_and_rate_1_drops_all():
    present = torch.rand(16, 3, generator=torch.Generator().manual_seed(1)) < 0.7
    batch = _batch(16, present=present)
    assert torch.equal(drop_samples(batch, 0.0, torch.Generator().manual_seed(0)).present, present)
    assert not drop_samples(batch, 1.0, torch.Generator().manual_seed(0)).present.any()


def test_drop_samples_never_adds_a_modality():
    present = torch.rand(64, 3, generator=torch.Generator().manual_seed(2)) < 0.5
    batch = _batch(64, present=present)
    for keep in (False, True):
        out = drop_samples(batch, 0.5, torch.Generator().manual_seed(3), keep_at_least_one=keep).present
        assert not (out & ~present).any()


def test_keep_at_least_one_never_leaves_a_sample_empty():
    present = torch.rand(200, 3, generator=torch.Generator().manual_seed(4)) < 0.6
    present[0] = False  # a sample that had nothing stays empty (nothing to keep)
    batch = _batch(200, present=present)
    for rate in (0.5, 0.9, 1.0):
        out = drop_samples(batch, rate, torch.Generator().manual_seed(5), keep_at_least_one=True).present
        had_any = present.any(dim=1)
        assert torch.equal(out.any(dim=1), had_any)
        assert not (out & ~present).any()  # the kept modality is one the sample had
    out = drop_samples(batch, 1.0, torch.Generator().manual_seed(5), keep_at_least_one=True).present
    assert torch.equal(out.sum(dim=1), present.any(dim=1).long())  # at rate 1 exactly one survives
    # the rescued modality is chosen among all of them, not always the first
    assert (out[:, 1:] & present[:, 1:]).any()


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_drop_samples_empirical_rate(rate):
    batch = _batch(8000)
    out = drop_samples(batch, rate, protocol_generator(0, "sample_rate", rate)).present
    dropped = 1.0 - out.float().mean(dim=0)  # per modality
    assert torch.allclose(dropped, torch.full((3,), rate), atol=0.025), dropped


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_rates_outside_0_1_raise(rate):
    with pytest.raises(ValueError, match=r"sample_rate.*\[0, 1\].*found"):
        drop_samples(_batch(), rate)
    with pytest.raises(ValueError, match=r"frame_rate.*\[0, 1\].*found"):
        drop_frames(_batch(), rate)


# --------------------------------------------------------------------------- frame-level rate
def _frame_generators(seed: int, level: float, mods=MODS) -> dict[str, torch.Generator]:
    return {m: protocol_generator(seed, "frame_rate", level, m) for m in mods}


def test_drop_frames_touches_only_sequences_and_frame_masks():
    batch = _batch()
    out = drop_frames(batch, 0.5, _frame_generators(0, 0.5))
    assert out.frame_mask("audio") is None  # [B, D] modality untouched
    assert out.frame_mask("text").shape == (8, 5) and out.frame_mask("vision").shape == (8, 6)
    assert torch.equal(out.present, batch.present)
    for m in MODS:
        assert out.inputs[m] is batch.inputs[m]


def test_drop_frames_rate_0_and_1_and_existing_masks():
    fm = torch.ones(8, 5, dtype=torch.bool)
    fm[:, 3:] = False  # padding
    batch = _batch(frame_masks={"text": fm})
    kept = drop_frames(batch, 0.0, _frame_generators(0, 0.0))
    assert torch.equal(kept.frame_mask("text"), fm) and bool(kept.frame_mask("vision").all())
    gone = drop_frames(batch, 1.0, _frame_generators(0, 1.0))
    assert not gone.frame_mask("text").any() and not gone.frame_mask("vision").any()
    half = drop_frames(batch, 0.5, _frame_generators(0, 0.5))
    assert not (half.frame_mask("text") & ~fm).any()  # padding never becomes observed


def test_drop_frames_empirical_rate():
    batch = _batch(4000)
    out = drop_frames(batch, 0.3, _frame_generators(1, 0.3))
    for m in ("text", "vision"):
        assert abs(1.0 - out.frame_mask(m).float().mean().item() - 0.3) < 0.02


def test_per_modality_generators_are_independent():
    batch = _batch(32)
    base = drop_frames(batch, 0.5, _frame_generators(0, 0.5))
    other = _frame_generators(0, 0.5)
    other["text"] = protocol_generator(99, "frame_rate", 0.5, "text")
    changed = drop_frames(batch, 0.5, other)
    assert torch.equal(changed.frame_mask("vision"), base.frame_mask("vision"))
    assert not torch.equal(changed.frame_mask("text"), base.frame_mask("text"))
    # a modality's pattern does not depend on which other modalities are dropped with it
    only_vision = drop_frames(batch, 0.5, _frame_generators(0, 0.5), modalities=["vision"])
    assert torch.equal(only_vision.frame_mask("vision"), base.frame_mask("vision"))
    assert only_vision.frame_mask("text") is None


# --------------------------------------------------------------------------- determinism
def test_protocol_generator_is_deterministic_and_distinct():
    draw = lambda *key: torch.rand(64, generator=protocol_generator(*key))
    assert torch.equal(draw(0, "sample_rate", 0.3), draw(0, "sample_rate", 0.3))
    assert protocol_seed(0, "sample_rate", 0.3) == protocol_seed(0, "sample_rate", 0.3)
    distinct = [(0, "sample_rate", 0.3), (1, "sample_rate", 0.3), (0, "sample_rate", 0.4),
                (0, "frame_rate", 0.3), (0, "sample_rate", 0.3, "text"), (0, "sample_rate", 0.3, "audio")]
    draws = [draw(*k) for k in distinct]
    for i in range(len(draws)):
        for j in range(i + 1, len(draws)):
            assert not torch.equal(draws[i], draws[j]), (distinct[i], distinct[j])
    assert protocol_seed(0, "subsets", "text+audio") != protocol_seed(0, "subsets", "text")
    assert 0 <= protocol_seed(2**40, "frame_rate", 1.0, "vision")
    # a level computed by a sweep (0.1 * 3 = 0.30000000000000004) names the same pattern as 0.3
    assert protocol_seed(0, "sample_rate", 0.1 * 3) == protocol_seed(0, "sample_rate", 0.3)


def test_two_calls_with_the_same_protocol_key_give_identical_masks():
    batch = _batch(64)
    for seed, level in ((0, 0.3), (7, 0.6)):
        a = drop_samples(batch, level, protocol_generator(seed, "sample_rate", level), keep_at_least_one=True)
        b = drop_samples(batch, level, protocol_generator(seed, "sample_rate", level), keep_at_least_one=True)
        assert torch.equal(a.present, b.present)
        fa = drop_frames(batch, level, _frame_generators(seed, level))
        fb = drop_frames(batch, level, _frame_generators(seed, level))
        assert all(torch.equal(fa.frame_mask(m), fb.frame_mask(m)) for m in ("text", "vision"))
    s0 = drop_samples(batch, 0.5, protocol_generator(0, "sample_rate", 0.5)).present
    s1 = drop_samples(batch, 0.5, protocol_generator(1, "sample_rate", 0.5)).present
    assert not torch.equal(s0, s1)
    l1 = drop_samples(batch, 0.5, protocol_generator(0, "sample_rate", 0.55)).present
    assert not torch.equal(s0, l1)


# --------------------------------------------------------------------------- missing_rate (GCNet)
def _reference_missing_rate(present: torch.Tensor, rate: float, g: torch.Generator) -> torch.Tensor:
    """GCNet's / CPM-Net's ``random_mask`` written out cell by cell, with the same draws in the
    same order: nothing drawn at rate 0; one modality per sample when 1 - rate <= 1/M; else one
    modality per sample kept at random plus every cell kept with q = (M (1 - rate) - 1) / (M - 1),
    over max(B, 32) rows, redrawn until the kept fraction is within 0.005 (or one cell) of
    1 - rate. Then: absent stays absent; a sample left with none keeps a random present one."""
    b, m = present.shape
    keep = 1.0 - rate
    if rate == 0.0:
        pattern = [[True] * m for _ in range(b)]
    elif keep <= 1.0 / m + 1e-9:
        choice = torch.randint(0, m, (b,), generator=g).tolist()
        pattern = [[j == choice[i] for j in range(m)] for i in range(b)]
    else:
        q = (m * keep - 1.0) / (m - 1.0)
        rows = max(b, 32)
        while True:
            choice = torch.randint(0, m, (rows,), generator=g).tolist()
            u = torch.rand(rows, m, generator=g).tolist()
            pattern = [[j == choice[i] or u[i][j] < q for j in range(m)] for i in range(rows)]
            kept = sum(sum(row) for row in pattern)
            if abs(kept / (rows * m) - keep) < max(0.005, 1.0 / (rows * m)):
                break
        pattern = pattern[:b]
    out = [[bool(present[i, j]) and pattern[i][j] for j in range(m)] for i in range(b)]
    lost = [not any(out[i]) and bool(present[i].any()) for i in range(b)]
    if any(lost):
        u = torch.rand(b, m, generator=g).tolist()
        for i in range(b):
            if lost[i]:
                cands = [j for j in range(m) if present[i, j]]
                out[i][max(cands, key=lambda j: u[i][j])] = True
    return torch.tensor(out, dtype=torch.bool)


@pytest.mark.parametrize("b", [5, 32, 100])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3, 0.5, 0.6, 0.7, 1.0])
def test_missing_rate_matches_the_hand_written_reference(b, rate):
    for n_mod in (2, 3):
        present = torch.ones(b, n_mod, dtype=torch.bool)
        batch = MultimodalBatch({f"m{j}": torch.randn(b, 2) for j in range(n_mod)}, present=present)
        got = drop_to_missing_rate(batch, rate, protocol_generator(0, "missing_rate", rate)).present
        want = _reference_missing_rate(present, rate, protocol_generator(0, "missing_rate", rate))
        assert torch.equal(got, want), (n_mod, rate, b)


def test_missing_rate_reference_with_modalities_absent_in_the_data():
    g = torch.Generator().manual_seed(1)
    present = torch.rand(64, 3, generator=g) > 0.4
    present[0] = False  # a sample with nothing stays empty
    batch = _batch(64, present=present)
    for rate in (0.3, 0.6, 0.7):
        got = drop_to_missing_rate(batch, rate, protocol_generator(4, "missing_rate", rate)).present
        want = _reference_missing_rate(present, rate, protocol_generator(4, "missing_rate", rate))
        assert torch.equal(got, want)
        assert not (got & ~present).any()  # never adds a modality
        assert bool(got[1:][present[1:].any(dim=1)].any(dim=1).all())
        assert not got[0].any()


def test_missing_rate_keeps_one_and_hits_the_rate():
    batch = _batch(300)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(drop_to_missing_rate(batch, 0.0, g).present, batch.present)
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(0).get_state())  # rate 0 draws nothing
    for rate in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        out = drop_to_missing_rate(batch, rate, protocol_generator(0, "missing_rate", rate)).present
        assert bool(out.any(dim=1).all()), rate
        # B >= 32: the whole batch is the drawn grid, within GCNet's tolerance of 1 - rate
        assert abs(out.float().mean().item() - (1 - rate)) < 0.005, rate
    # 0.7 with three modalities (and anything above 2/3): exactly one modality per sample
    for rate in (0.7, 0.9, 1.0):
        assert bool((drop_to_missing_rate(batch, rate, g).present.sum(dim=1) == 1).all())


def test_missing_rate_is_the_same_for_every_modality():
    """Each modality is missing with rate eta (not only the average): 200 batches of 64."""
    batch = _batch(64)
    g = torch.Generator().manual_seed(2)
    for rate in (0.3, 0.5):
        kept = torch.stack([drop_to_missing_rate(batch, rate, g).present for _ in range(200)]).float()
        assert torch.allclose(1 - kept.mean(dim=(0, 1)), torch.full((3,), rate), atol=0.01), rate
    one_hot = torch.stack([drop_to_missing_rate(batch, 0.7, g).present for _ in range(200)]).float()
    assert torch.allclose(one_hot.mean(dim=(0, 1)), torch.full((3,), 1 / 3), atol=0.01)


def test_missing_rate_seeding_and_checks():
    batch = _batch(64)
    a = drop_to_missing_rate(batch, 0.4, protocol_generator(0, "missing_rate", 0.4)).present
    b = drop_to_missing_rate(batch, 0.4, protocol_generator(0, "missing_rate", 0.4)).present
    c = drop_to_missing_rate(batch, 0.4, protocol_generator(1, "missing_rate", 0.4)).present
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert drop_to_missing_rate(batch, 0.4, protocol_generator(0, "missing_rate", 0.4)).frame_masks == batch.frame_masks
    with pytest.raises(ValueError, match="missing_rate"):
        drop_to_missing_rate(batch, 1.5)
