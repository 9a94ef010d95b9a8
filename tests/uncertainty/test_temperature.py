import pytest
import torch

from robustfusion.uncertainty import fit_temperature


def test_recovers_the_temperature_that_generated_the_labels():
    g = torch.Generator().manual_seed(0)
    z = 3 * torch.randn(20000, 4, generator=g)
    y = torch.multinomial(torch.softmax(z / 2.0, dim=1), 1, generator=g).squeeze(1)
    assert fit_temperature(z, y) == pytest.approx(2.0, rel=0.05)


def test_calibrated_logits_keep_a_temperature_near_one():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(20000, 3, generator=g)
    y = torch.multinomial(torch.softmax(z, dim=1), 1, generator=g).squeeze(1)
    assert fit_temperature(z, y) == pytest.approx(1.0, rel=0.06)


def test_bad_shapes_and_labels_are_refused():
    with pytest.raises(ValueError, match=r"\[n, C\]"):
        fit_temperature(torch.zeros(4, 3), torch.zeros(5))
    with pytest.raises(ValueError, match="classes in"):
        fit_temperature(torch.zeros(4, 3), torch.tensor([0, 1, 2, 3]))
