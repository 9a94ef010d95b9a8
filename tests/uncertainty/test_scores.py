import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss

from robustfusion.uncertainty import interval_scores, probability_scores, set_scores


def _probs(n=500, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(2 * torch.randn(n, c, generator=g, dtype=torch.float64), dim=1)
    y = torch.randint(0, c, (n,), generator=g)
    return p, y


def test_ece_nll_brier_match_a_loop_over_bins_samples_and_classes():
    p, y = _probs()
    conf, pred = p.max(1)
    edges = np.linspace(0, 1, 16)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        inb = (conf > lo) & (conf <= hi)
        if inb.any():
            ece += float(inb.double().mean()) * abs(float((pred[inb] == y[inb]).double().mean()) - float(conf[inb].mean()))
    brier = np.mean([sum((float(p[i, c]) - (c == int(y[i]))) ** 2 for c in range(4)) for i in range(len(y))])
    got = probability_scores(p, y)
    assert got["ECE"] == pytest.approx(ece, abs=1e-5)
    assert got["NLL"] == pytest.approx(log_loss(y.numpy(), p.numpy(), labels=range(4)), rel=1e-9)
    assert got["Brier"] == pytest.approx(brier, rel=1e-9)


def test_logits_are_refused_by_probability_scores():
    with pytest.raises(ValueError, match="sum to 1"):
        probability_scores(torch.randn(5, 3), torch.zeros(5))


def test_interval_and_set_scores_match_loops():
    g = torch.Generator().manual_seed(3)
    y = torch.randn(200, generator=g)
    lo = y + 0.3 - torch.rand(200, generator=g)  # some intervals miss the target from above
    hi = lo + torch.rand(200, generator=g)
    cov = np.mean([float(lo[i]) <= float(y[i]) <= float(hi[i]) for i in range(200)])
    got = interval_scores(lo, hi, y)
    assert got["PI_coverage"] == pytest.approx(cov)
    assert got["PI_width"] == pytest.approx(float((hi - lo).mean()))
    sets = torch.rand(200, 4, generator=g) > 0.5
    labels = torch.randint(0, 4, (200,), generator=g)
    s = set_scores(sets, labels)
    assert s["Set_coverage"] == pytest.approx(np.mean([bool(sets[i, labels[i]]) for i in range(200)]))
    assert s["Set_size"] == pytest.approx(float(sets.sum()) / 200)
    with pytest.raises(ValueError, match="lo <= hi"):
        interval_scores(hi, lo, y)
