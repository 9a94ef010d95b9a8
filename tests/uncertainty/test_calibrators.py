import itertools
import json

import pytest
import torch

from robustfusion.uncertainty import ConformalIntervals, TemperatureSets, patterns_of, probability_scores, violation_rate

MODS = ("text", "audio", "vision")
PATTERNS = [c for k in (1, 2, 3) for c in itertools.combinations(MODS, k)]
NOISE = {"text": 0.5, "audio": 1.5, "vision": 1.2}


def _regression(n, seed):
    """Each pattern's prediction error scales with its best modality's noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, generator=g)
    preds = {p: (y + min(NOISE[m] for m in p) * torch.randn(n, generator=g)).unsqueeze(1) for p in PATTERNS}
    return y, preds


def _present(pattern, n):
    return torch.tensor([[m in pattern for m in MODS]] * n)


def test_intervals_cover_each_pattern_at_the_nominal_level():
    y, preds = _regression(2000, 0)
    cal = ConformalIntervals.fit(preds, y, MODS, level=0.9)
    y2, preds2 = _regression(4000, 1)
    for p in PATTERNS:
        lo, hi = cal.apply(preds2[p], _present(p, 4000))
        cover = float(((lo[:, 0] <= y2) & (y2 <= hi[:, 0])).double().mean())
        assert cover == pytest.approx(0.9, abs=0.025), p
    assert cal.half_width[("text",)][0] < cal.half_width[("audio",)][0]


def test_monotone_intervals_never_narrow_when_a_modality_is_removed():
    y, preds = _regression(500, 2)
    preds[("text", "audio", "vision")] = preds[("text", "audio", "vision")] + 3.0  # the full pattern is worst
    cal = ConformalIntervals.fit(preds, y, MODS)
    width = {p: -cal.widths(_present(p, 1))[0, 0] for p in PATTERNS}
    assert violation_rate({p: w.reshape(1) for p, w in width.items()})["VRR"] == 0
    raw = ConformalIntervals.fit(preds, y, MODS, monotone=False)
    assert violation_rate({p: -raw.widths(_present(p, 1))[0] for p in PATTERNS})["VRR"] > 0


def test_an_unfitted_pattern_gets_the_widest_interval_and_the_state_round_trips_through_json():
    y, preds = _regression(300, 3)
    cal = ConformalIntervals.fit(preds, y, MODS)
    lo, hi = cal.apply(torch.zeros(1, 1), torch.zeros(1, 3, dtype=torch.bool))  # nothing present
    assert float(hi[0, 0]) == pytest.approx(max(q[0] for q in cal.half_width.values()))
    back = ConformalIntervals.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert back == cal


def test_refused_inputs():
    with pytest.raises(ValueError, match="level"):
        ConformalIntervals.fit({("text",): torch.zeros(5, 1)}, torch.zeros(5), MODS, level=1.0)
    with pytest.raises(ValueError, match="targets"):
        ConformalIntervals.fit({("text",): torch.zeros(5, 1)}, torch.zeros(4), MODS)
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        patterns_of(torch.ones(2, 2, dtype=torch.bool), MODS)


def _classification(n, seed):
    """Overconfident logits (3x the true ones), sharper the more modalities are present."""
    g = torch.Generator().manual_seed(seed)
    true = {p: torch.randn(n, 4, generator=g) * (0.5 + 0.4 * len(p)) for p in PATTERNS}
    y = torch.multinomial(torch.softmax(true[("text", "audio", "vision")], 1), 1, generator=g).squeeze(1)
    return y, {p: 3 * z for p, z in true.items()}


def test_temperatures_calibrate_and_sets_cover_per_pattern():
    y, logits = _classification(3000, 0)
    cal = TemperatureSets.fit(logits, y, MODS, level=0.9, monotone=False)
    full = ("text", "audio", "vision")
    assert cal.temperature[full] == pytest.approx(3.0, rel=0.12)
    y2, logits2 = _classification(3000, 1)
    pres = _present(full, 3000)
    probs = cal.probabilities(logits2[full], pres)
    raw = torch.softmax(logits2[full].double(), 1)
    assert probability_scores(probs, y2)["ECE"] < 0.03 < probability_scores(raw, y2)["ECE"]
    cover = float(cal.sets(probs, pres).gather(1, y2[:, None]).double().mean())
    assert cover == pytest.approx(0.9, abs=0.03)


def test_state_round_trips_and_monotone_thresholds_are_fitted_on_repaired_probabilities():
    y, logits = _classification(500, 2)
    mono = TemperatureSets.fit(logits, y, MODS)
    plain = TemperatureSets.fit(logits, y, MODS, monotone=False)
    assert mono.temperature == plain.temperature
    assert mono.threshold != plain.threshold
    assert TemperatureSets.from_dict(json.loads(json.dumps(mono.to_dict()))) == mono
