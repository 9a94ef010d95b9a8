import itertools

import pytest
import torch

from robustfusion.calibration import Calibrated, ConformalIntervals, TemperatureSets, presence_codes
from robustfusion.uncertainty import probability_scores, violation_rate

M = 3
PATTERNS = [c for k in (1, 2, 3) for c in itertools.combinations(range(M), k)]
NOISE = (0.5, 1.5, 1.2)


def _present(pattern, n):
    return torch.tensor([[i in pattern for i in range(M)]] * n)


def _stacked(per_pattern, n):
    """Rows stacked pattern by pattern, as fit_on_subsets stacks them."""
    return (torch.cat([per_pattern[p] for p in PATTERNS]), torch.cat([_present(p, n) for p in PATTERNS]))


def _regression(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, generator=g)
    preds = {p: (y + min(NOISE[i] for i in p) * torch.randn(n, generator=g)).unsqueeze(1) for p in PATTERNS}
    return y, preds


def test_intervals_cover_each_pattern_at_the_nominal_level():
    y, preds = _regression(2000, 0)
    p, present = _stacked(preds, 2000)
    cal = ConformalIntervals(M, 1, level=0.9)
    cal.fit(p, y.repeat(len(PATTERNS)), present, task="regression")
    y2, preds2 = _regression(4000, 1)
    for pat in PATTERNS:
        out = cal.apply(Calibrated(preds2[pat]), _present(pat, 4000))
        cover = float(((out.lower[:, 0] <= y2) & (y2 <= out.upper[:, 0])).double().mean())
        assert cover == pytest.approx(0.9, abs=0.025), pat


def test_monotone_half_widths_never_shrink_when_a_modality_is_removed_and_empty_is_widest():
    y, preds = _regression(500, 2)
    preds[(0, 1, 2)] = preds[(0, 1, 2)] + 3.0  # the full pattern is the worst
    p, present = _stacked(preds, 500)
    widths = {}
    for monotone in (True, False):
        cal = ConformalIntervals(M, 1, monotone=monotone)
        cal.fit(p, y.repeat(len(PATTERNS)), present, task="regression")
        widths[monotone] = {pat: -cal.half_width[presence_codes(_present(pat, 1))][0] for pat in PATTERNS}
        assert float(cal.half_width[0, 0]) == pytest.approx(float(cal.half_width[1:].max()))  # nothing present
    assert violation_rate(widths[True])["VRR"] == 0
    assert violation_rate(widths[False])["VRR"] > 0


def _classification(n, seed):
    """Overconfident logits (3x the true ones), sharper the more modalities are present."""
    g = torch.Generator().manual_seed(seed)
    true = {p: torch.randn(n, 4, generator=g) * (0.5 + 0.4 * len(p)) for p in PATTERNS}
    y = torch.multinomial(torch.softmax(true[(0, 1, 2)], 1), 1, generator=g).squeeze(1)
    return y, {p: 3 * z for p, z in true.items()}


def test_temperatures_calibrate_and_sets_cover_per_pattern():
    y, logits = _classification(3000, 0)
    z, present = _stacked(logits, 3000)
    cal = TemperatureSets(M, 4, level=0.9, monotone=False)
    cal.fit(z, y.repeat(len(PATTERNS)), present, task="classification")
    full = _present((0, 1, 2), 3000)
    assert float(cal.temperature[7]) == pytest.approx(3.0, rel=0.12)
    y2, logits2 = _classification(3000, 1)
    out = cal.apply(Calibrated(logits2[(0, 1, 2)]), full)
    raw = torch.softmax(logits2[(0, 1, 2)].double(), 1)
    assert probability_scores(out.probabilities, y2)["ECE"] < 0.03 < probability_scores(raw, y2)["ECE"]
    assert float(out.sets.gather(1, y2[:, None]).double().mean()) == pytest.approx(0.9, abs=0.03)


def test_monotone_thresholds_are_fitted_on_repaired_probabilities():
    y, logits = _classification(500, 2)
    z, present = _stacked(logits, 500)
    mono, plain = TemperatureSets(M, 4), TemperatureSets(M, 4, monotone=False)
    for cal in (mono, plain):
        cal.fit(z, y.repeat(len(PATTERNS)), present, task="classification")
    assert torch.equal(mono.temperature, plain.temperature)
    assert not torch.equal(mono.threshold, plain.threshold)


def test_bad_level_and_task_are_refused():
    with pytest.raises(ValueError, match="level"):
        ConformalIntervals(M, 1, level=1.0)
    with pytest.raises(ValueError, match="task"):
        TemperatureSets(M, 4).check_task("regression")


def test_equal_half_widths_give_equal_widths_whatever_the_prediction():
    """Monotone widths tie across patterns; float32 rounding of (p + w) - (p - w) must not break the tie."""
    y, preds = _regression(300, 4)
    p, present = _stacked(preds, 300)
    cal = ConformalIntervals(M, 1)
    cal.fit(p, y.repeat(len(PATTERNS)), present, task="regression")
    cal.half_width.fill_(0.7)
    widths = {}
    for pat in PATTERNS:
        out = cal.apply(Calibrated(100 * torch.randn(300, 1)), _present(pat, 300))
        widths[pat] = -(out.upper - out.lower)[:, 0]
    assert violation_rate(widths)["VRR"] == 0
