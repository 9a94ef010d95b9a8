"""Learned weighted mean over present modalities."""

from __future__ import annotations

import pytest
import torch

from robustfusion.fusion import create_fusion, mean_of_present
from robustfusion.fusion.weighted_mean import WeightedMeanOfPresent
from tests.fusion.test_mean_concat import PRESENT, B, H, _features, _with_junk


def test_untrained_layer_is_gmc_mean():
    fusion = create_fusion("weighted_mean", dim=H, num_modalities=3)
    assert isinstance(fusion, WeightedMeanOfPresent) and fusion.out_dim == H
    f = _features()
    torch.testing.assert_close(fusion(f, PRESENT), mean_of_present(f, PRESENT))


def test_weights_by_hand():
    fusion = WeightedMeanOfPresent(H, 3)
    with torch.no_grad():
        fusion.logits.copy_(torch.tensor([2.0, 0.0, -1.0]))
    e = torch.exp(torch.tensor([2.0, 0.0, -1.0]))
    f = _features()
    t, a, v = f["text"], f["audio"], f["vision"]
    expected = torch.stack([
        (e[0] * t[0] + e[1] * a[0] + e[2] * v[0]) / e.sum(),
        t[1],                                            # one present modality: weight 1
        (e[1] * a[2] + e[2] * v[2]) / (e[1] + e[2]),     # renormalised over the present ones
        torch.zeros(H),                                  # none present: zero vector
        (e[0] * t[4] + e[2] * v[4]) / (e[0] + e[2]),
        v[5],
    ])
    torch.testing.assert_close(fusion(f, PRESENT), expected)
    torch.testing.assert_close(fusion.weights(PRESENT).sum(1), PRESENT.any(1).float())


@pytest.mark.parametrize("fill", [1e6, float("nan"), float("-inf")])
def test_absent_junk_never_leaks_into_outputs_or_gradients(fill):
    fusion = WeightedMeanOfPresent(H, 3)
    with torch.no_grad():
        fusion.logits.copy_(torch.tensor([0.5, -0.3, 1.0]))
    f = _features()
    clean = fusion(f, PRESENT)
    out = fusion(_with_junk(f, PRESENT, fill), PRESENT)
    torch.testing.assert_close(out, clean)
    out.sum().backward()
    assert bool(torch.isfinite(fusion.logits.grad).all())


def test_logits_learn_to_favour_the_informative_modality():
    torch.manual_seed(0)
    fusion = WeightedMeanOfPresent(1, 2)
    opt = torch.optim.SGD(fusion.parameters(), lr=1.0)
    target = torch.randn(B * 10, 1)
    f = {"good": target, "noise": torch.randn(B * 10, 1)}
    both = torch.ones(B * 10, 2, dtype=torch.bool)
    for _ in range(200):
        opt.zero_grad()
        ((fusion(f, both) - target) ** 2).mean().backward()
        opt.step()
    w = fusion.weights(both[:1])[0]
    assert w[0] > 0.9 and w[1] < 0.1
