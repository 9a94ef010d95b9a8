"""The presence-affine calibrator: the exact affine fit, per-pattern application, identity by
default, fitting per presence pattern through the Calibrator interface."""

from __future__ import annotations

import itertools

import pytest
import torch

from robustfusion.calibration import Calibrated, PresenceAffine, fit_affine, presence_codes


def test_codes_are_the_binary_number_of_the_mask():
    present = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    assert presence_codes(present).tolist() == [1 + 4, 0, 7]


def _apply(ro: PresenceAffine, pred: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    return ro.apply(Calibrated(pred), present).prediction


def test_identity_until_set_then_one_map_per_pattern():
    ro = PresenceAffine(2, 1)
    pred = torch.tensor([[1.0], [2.0], [3.0]])
    present = torch.tensor([[True, False], [False, True], [True, True]])
    assert torch.equal(_apply(ro, pred, present), pred)
    ro.set_pattern(torch.tensor([True, False]), torch.tensor([0.5]), torch.tensor([1.0]))
    assert _apply(ro, pred, present).flatten().tolist() == [1.5, 2.0, 3.0]  # only the first sample's pattern changed
    ro.reset()
    assert torch.equal(_apply(ro, pred, present), pred)
    with pytest.raises(ValueError, match=r"expected 1 to 12 modalities, found 13"):
        PresenceAffine(13, 1)
    with pytest.raises(ValueError, match=r"loss expected 'l1' or 'mse', found 'huber'"):
        PresenceAffine(2, 1, loss="huber")


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
    ro = PresenceAffine(3, 1)
    rows = [torch.tensor(r) for r in itertools.product([False, True], repeat=3)]
    for k, r in enumerate(rows):
        ro.set_pattern(r, torch.tensor([float(k)]), torch.tensor([0.0]))
    present = torch.stack(rows)
    assert _apply(ro, torch.ones(8, 1), present).flatten().tolist() == [float(k) for k in range(8)]


@pytest.mark.parametrize("loss", ["l1", "mse"])
def test_fit_is_fit_affine_on_each_patterns_samples_and_leaves_the_empty_pattern_alone(loss):
    g = torch.Generator().manual_seed(3)
    present = torch.rand(60, 2, generator=g) > 0.4
    pred, y = torch.randn(60, 1, generator=g), torch.randn(60, 1, generator=g)
    ro = PresenceAffine(2, 1, loss=loss)
    ro.set_pattern(torch.tensor([True, True]), torch.tensor([9.0]), torch.tensor([9.0]))  # refit from scratch
    report = ro.fit(pred, y, present, task="regression")
    codes = presence_codes(present)
    assert set(report) == set(codes.tolist()) - {0}
    for code, fitted in report.items():
        a, b = fit_affine(pred[codes == code], y[codes == code], loss=loss)  # brute force per pattern
        assert fitted["scale"] == a.tolist() and fitted["shift"] == b.tolist()
        assert ro.scale[code].tolist() == a.tolist() and fitted["loss_after"] <= fitted["loss_before"] + 1e-6
    assert ro.scale[0].tolist() == [1.0] and ro.shift[0].tolist() == [0.0]
    out = _apply(ro, pred, present)
    none = ~present.any(1)
    assert torch.equal(out[none], pred[none])
    with pytest.raises(ValueError, match=r"presence_affine.*expected a task in \('regression',\), found task='classification'"):
        ro.fit(pred, y, present, task="classification")
    with pytest.raises(ValueError, match=r"expected present \[60, 2\], found \(60, 3\)"):
        ro.fit(pred, y, torch.ones(60, 3, dtype=torch.bool))
