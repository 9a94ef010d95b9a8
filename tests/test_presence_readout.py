"""Presence read-out: the exact affine fit, per-pattern application, identity by default."""

from __future__ import annotations

import itertools

import pytest
import torch

from robustfusion.presence_readout import PresenceReadout, fit_affine, presence_codes


def test_codes_are_the_binary_number_of_the_mask():
    present = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    assert presence_codes(present).tolist() == [1 + 4, 0, 7]


def test_identity_until_set_then_one_map_per_pattern():
    ro = PresenceReadout(2, 1)
    pred = torch.tensor([[1.0], [2.0], [3.0]])
    present = torch.tensor([[True, False], [False, True], [True, True]])
    assert torch.equal(ro(pred, present), pred)
    ro.set_pattern(torch.tensor([True, False]), torch.tensor([0.5]), torch.tensor([1.0]))
    assert ro(pred, present).flatten().tolist() == [1.5, 2.0, 3.0]  # only the first sample's pattern changed
    ro.reset()
    assert torch.equal(ro(pred, present), pred)
    with pytest.raises(ValueError, match=r"expected 1 to 12 modalities, found 13"):
        PresenceReadout(13, 1)


def _brute_force_l1(p: torch.Tensor, y: torch.Tensor) -> float:
    """min over a in the grid and b in every candidate value of the mean |y - a p - b| (the L1
    optimum for fixed a is attained at a data point's residual)."""
    best = float("inf")
    for a in torch.linspace(0.0, 2.0, 401, dtype=torch.float64):
        r = y - a * p
        for b in r:
            best = min(best, float((r - b).abs().mean()))
    return best


@pytest.mark.parametrize("seed", [0, 1])
def test_l1_fit_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(25, 1, generator=g, dtype=torch.float64)
    y = 0.4 * p + 0.3 + 0.5 * torch.randn(25, 1, generator=g, dtype=torch.float64)
    a, b = fit_affine(p, y)
    got = float((y - a.double() * p - b.double()).abs().mean())
    assert got == pytest.approx(_brute_force_l1(p[:, 0], y[:, 0]), abs=1e-6)


def test_fit_shrinks_an_uninformative_prediction_to_a_constant_and_keeps_a_good_one():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(200, 2, generator=g)
    p = torch.stack([torch.randn(200, generator=g), 3.0 * y[:, 1]], dim=1)  # col 0: noise; col 1: 3x too wide
    for loss in ("l1", "mse"):
        a, b = fit_affine(p, y, loss=loss)
        assert a[0] < 0.15 and a[1] == pytest.approx(1 / 3, abs=0.01) and b[1] == pytest.approx(0.0, abs=0.01)
    a, _ = fit_affine(-p, y, loss="mse")
    assert a[1] == 0.0  # scales are clipped to [0, max_scale]: a read-out never flips a model's sign


def test_fit_errors():
    with pytest.raises(ValueError, match=r"two equal \[N, K\] tensors"):
        fit_affine(torch.zeros(3, 1), torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"loss expected 'l1' or 'mse', found 'huber'"):
        fit_affine(torch.zeros(3, 1), torch.zeros(3, 1), loss="huber")


def test_every_pattern_of_three_modalities_is_independent():
    ro = PresenceReadout(3, 1)
    rows = [torch.tensor(r) for r in itertools.product([False, True], repeat=3)]
    for k, r in enumerate(rows):
        ro.set_pattern(r, torch.tensor([float(k)]), torch.tensor([0.0]))
    present = torch.stack(rows)
    assert ro(torch.ones(8, 1), present).flatten().tolist() == [float(k) for k in range(8)]
