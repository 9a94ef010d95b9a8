import math

import pytest
import torch

from robustfusion.uncertainty import (
    conformal_quantile,
    monotone_quantiles,
    prediction_sets,
    set_threshold,
)


def test_quantile_is_the_ceil_n_plus_one_level_order_statistic():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(37, generator=g)
    for level in (0.5, 0.8, 0.9, 0.95):
        k = math.ceil(38 * level)
        assert conformal_quantile(s, level) == pytest.approx(float(sorted(s.tolist())[k - 1]))


def test_too_few_scores_give_an_infinite_quantile():
    assert conformal_quantile(torch.ones(5), 0.9) == math.inf  # ceil(6 * 0.9) = 6 > 5


def test_marginal_coverage_is_nominal_on_exchangeable_scores():
    # n = 19 at 0.9: the 18th of 20 exchangeable scores, coverage exactly 18/20 in expectation
    g = torch.Generator().manual_seed(1)
    trials = torch.randn(6000, 20, generator=g).abs()
    q = torch.tensor([conformal_quantile(row[:19], 0.9) for row in trials])
    assert float((trials[:, 19] <= q).double().mean()) == pytest.approx(0.9, abs=0.012)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_level_outside_open_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match="level"):
        conformal_quantile(torch.ones(10), bad)


def test_empty_or_nonfinite_scores_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        conformal_quantile(torch.ones(0))
    with pytest.raises(ValueError, match="finite"):
        conformal_quantile(torch.tensor([1.0, float("nan")]))


def test_monotone_quantiles_never_shrink_when_a_modality_is_removed():
    q = {("t",): 0.5, ("a",): 1.2, ("v",): 1.1, ("t", "a"): 0.4, ("t", "v"): 0.7, ("a", "v"): 1.3,
         ("t", "a", "v"): 0.6}
    m = monotone_quantiles(q)
    for s, qs in q.items():
        assert m[s] >= qs
        for t in q:
            if set(t) < set(s):
                assert m[t] >= m[s]
    assert m[("t", "a", "v")] == 0.6 and m[("t",)] == 0.7 and m[("a",)] == 1.3
    assert monotone_quantiles(m) == m  # already monotone: unchanged


def test_lac_sets_cover_at_the_nominal_level_and_hold_the_top_class():
    g = torch.Generator().manual_seed(2)
    probs = torch.softmax(2 * torch.randn(8000, 5, generator=g), dim=1)
    labels = torch.multinomial(probs, 1, generator=g).squeeze(1)
    qhat = set_threshold(probs[:4000], labels[:4000], 0.9)
    sets = prediction_sets(probs[4000:], qhat)
    cover = float(sets.gather(1, labels[4000:, None]).double().mean())
    assert cover == pytest.approx(0.9, abs=0.02)
    assert bool(sets.gather(1, probs[4000:].argmax(1, keepdim=True)).all())
    assert bool(prediction_sets(probs, math.inf).all())
