import itertools

import pytest
import torch

from robustfusion.uncertainty import monotone_probabilities, violation_rate

MODS = ("text", "audio", "vision")
PATTERNS = [c for k in (1, 2, 3) for c in itertools.combinations(MODS, k)]


def _probs(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {p: torch.softmax(torch.randn(n, 4, generator=g, dtype=torch.float64) * len(p), dim=1) for p in PATTERNS}


def test_violation_rate_matches_a_loop_over_samples_and_nested_pairs():
    conf = {p: q.max(1).values for p, q in _probs().items()}
    bad = total = 0
    for s, t in itertools.product(PATTERNS, PATTERNS):
        if set(t) < set(s):
            for i in range(300):
                total += 1
                bad += float(conf[t][i]) > float(conf[s][i]) + 1e-9
    got = violation_rate(conf)
    assert got["pairs"] == total == 300 * 12  # 12 proper (S, T) pairs among 7 subsets of 3
    assert got["VRR"] == pytest.approx(bad / total) and got["VRR"] > 0


def test_repair_removes_every_violation_and_keeps_the_predicted_class():
    probs = _probs(seed=1)
    fixed = monotone_probabilities(probs)
    assert violation_rate({p: q.max(1).values for p, q in fixed.items()}, tol=1e-7)["VRR"] == 0
    for p in PATTERNS:
        assert torch.equal(fixed[p].argmax(1), probs[p].argmax(1))
        assert torch.allclose(fixed[p].sum(1), torch.ones(300, dtype=torch.float64))
        assert bool((fixed[p].max(1).values >= probs[p].max(1).values - 1e-12).all())
    for p in PATTERNS[:3]:  # singletons have no subset: untouched
        assert torch.equal(fixed[p], probs[p])


def test_samples_without_violation_are_untouched():
    probs = _probs(seed=2)
    fixed = monotone_probabilities(probs)
    full = ("text", "audio", "vision")
    ok = torch.stack([fixed[t].max(1).values for t in PATTERNS if t != full]).max(0).values <= probs[full].max(1).values
    assert torch.equal(fixed[full][ok], probs[full][ok])


def test_violation_rate_refuses_different_sample_counts():
    with pytest.raises(ValueError, match="same samples"):
        violation_rate({("a",): torch.zeros(3), ("a", "b"): torch.zeros(4)})


def test_repaired_rows_take_each_rows_own_pattern_and_keep_the_rest():
    import torch

    from robustfusion.uncertainty import repaired_rows

    probs = torch.full((3, 2), 0.5, dtype=torch.float64)
    repaired = {("a",): torch.tensor([[0.9, 0.1]] * 3, dtype=torch.float64),
                ("a", "b"): torch.tensor([[0.2, 0.8]] * 3, dtype=torch.float64)}
    present = torch.tensor([[True, False], [True, True], [False, True]])
    out = repaired_rows(probs, repaired, present, ("a", "b"))
    assert out.tolist() == [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]] and probs.tolist() == [[0.5, 0.5]] * 3
