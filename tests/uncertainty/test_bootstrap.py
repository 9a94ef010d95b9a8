import numpy as np
import pytest

from robustfusion.uncertainty import group_bootstrap_counts, paired_delta_ci, weighted_metric

MAE = weighted_metric("MAE")


def test_replicates_take_whole_groups_and_as_many_groups_as_there_are():
    groups = np.repeat(np.arange(10), [3, 1, 4, 2, 5, 1, 1, 2, 3, 4])
    counts = group_bootstrap_counts(groups, 50, seed=0)
    assert counts.shape == (50, len(groups))
    for row in counts:
        per_group = [set(row[groups == g].tolist()) for g in range(10)]
        assert all(len(s) == 1 for s in per_group)  # a group comes whole, however often drawn
        assert sum(s.pop() for s in per_group) == 10  # G draws of G groups


def test_delta_and_its_interval():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 10)
    y = rng.normal(size=300)
    a = [y + rng.normal(scale=0.5, size=300) for _ in range(3)]
    b = [y + rng.normal(scale=1.0, size=300)]
    delta, lo, hi = paired_delta_ci(MAE, a, b, y, groups, n_boot=300)
    assert delta == pytest.approx(np.mean([np.abs(p - y).mean() for p in a]) - np.abs(b[0] - y).mean())
    assert lo < delta < hi < 0  # a is clearly better (lower MAE)


def test_identical_sides_have_a_zero_interval_and_seed_spread_widens_it():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(20), 5)
    y = rng.normal(size=100)
    p = y + rng.normal(size=100)
    assert paired_delta_ci(MAE, [p], [p], y, groups, n_boot=100) == (0.0, 0.0, 0.0)
    _, lo1, hi1 = paired_delta_ci(MAE, [p], [p + 0.01], y, groups, n_boot=200)
    spread = [p + rng.normal(scale=0.8, size=100) for _ in range(3)]
    _, lo2, hi2 = paired_delta_ci(MAE, spread, [p + 0.01], y, groups, n_boot=200)
    assert hi2 - lo2 > hi1 - lo1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="rows"):
        paired_delta_ci(MAE, [np.zeros(3)], [np.zeros(4)], np.zeros(4), np.arange(4))
    with pytest.raises(ValueError, match="n_boot"):
        group_bootstrap_counts(np.arange(4), 0)
