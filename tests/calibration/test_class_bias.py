"""``class_bias``: per-pattern class biases fitted with the temperature recover a known prior
shift, leave the empty pattern alone, change the argmax, and round-trip with a run."""

from __future__ import annotations

import pytest
import torch

from robustfusion.calibration import (
    Calibrated,
    ClassBias,
    TemperatureSets,
    load_calibrators,
    save_calibrators,
)
from robustfusion.uncertainty import fit_bias_and_temperature


def _shifted(n: int = 6000, seed: int = 0):
    """Logits ``z`` whose labels follow ``softmax(z / 2 + b)``: the true bias in logit units is ``2 b``."""
    g = torch.Generator().manual_seed(seed)
    z = 2 * torch.randn(n, 4, generator=g)
    b = torch.tensor([1.0, -0.5, 0.0, -0.5])
    y = torch.multinomial(torch.softmax(z / 2 + b, dim=1), 1, generator=g).squeeze(1)
    return z, y, 2 * b


def test_the_joint_fit_recovers_the_temperature_and_the_centred_bias():
    z, y, bias = _shifted()
    c, t = fit_bias_and_temperature(z, y)
    assert t == pytest.approx(2.0, rel=0.08)
    torch.testing.assert_close((t * c).float(), bias - bias.mean(), atol=0.15, rtol=0)
    assert abs(float(c.sum())) < 1e-9


def test_fit_per_pattern_then_temperature_finds_the_same_temperature():
    z, y, _ = _shifted()
    both = torch.ones(len(y), 2, dtype=torch.bool)
    text = torch.tensor([[True, False]] * len(y))
    cal = ClassBias(2, 4, l2=0.0)
    report = cal.fit(torch.cat([z, z]), torch.cat([y, y]), torch.cat([both, text]))
    assert set(report) == {3, 1} and torch.equal(cal.bias[0], torch.zeros(4)) and torch.equal(cal.bias[2], torch.zeros(4))
    out = cal.apply(Calibrated(z), both).prediction
    torch.testing.assert_close(out, z + cal.bias[3])
    temps = TemperatureSets(2, 4)
    temps.fit(out, y, both)
    assert float(temps.temperature[3]) == pytest.approx(report[3]["temperature"], rel=1e-3)
    assert (out.argmax(1) != z.argmax(1)).any()  # unlike a temperature, a bias moves decisions


def test_it_lowers_the_validation_nll_and_round_trips(tmp_path):
    z, y, _ = _shifted()
    present = torch.ones(len(y), 2, dtype=torch.bool)
    cal = ClassBias(2, 4)
    cal.fit(z, y, present)
    nll = lambda logits: float(torch.nn.functional.cross_entropy(logits, y))
    assert nll(cal.apply(Calibrated(z), present).prediction) < nll(z) - 0.05
    save_calibrators(tmp_path, [cal])
    [back] = load_calibrators(tmp_path)
    assert isinstance(back, ClassBias) and back.l2 == cal.l2 and torch.equal(back.bias, cal.bias)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="expected a task in"):
        ClassBias(2, 4).fit(torch.zeros(3, 4), torch.zeros(3), torch.ones(3, 2, dtype=torch.bool), task="regression")
    with pytest.raises(ValueError, match="l2 expected >= 0"):
        ClassBias(2, 4, l2=-1)
    with pytest.raises(ValueError, match=r"labels: expected classes in \[0, 3\]"):
        fit_bias_and_temperature(torch.zeros(3, 4), torch.tensor([0, 1, 7]))
