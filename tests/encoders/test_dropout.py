"""The 16-bit dropout draws: rate, scaling, gradients, and the fused ReLU variant."""

import pytest
import torch

from robustfusion.encoders.dropout import dropout, effective_rate, relu_dropout


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.9])
def test_keeps_each_element_with_probability_one_minus_the_effective_rate(p):
    torch.manual_seed(0)
    n = 2_000_003  # not a multiple of four: the last 64-bit word is used in part
    y = dropout(torch.ones(n), p, True)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - effective_rate(p)) < 4 * (p * (1 - p) / n) ** 0.5
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - effective_rate(p))))


def test_effective_rate_is_the_nearest_multiple_of_2_to_the_minus_16():
    assert effective_rate(0.25) == 0.25 and effective_rate(0.5) == 0.5
    assert effective_rate(0.1) == 6554 / 65536 and abs(effective_rate(0.1) - 0.1) <= 2**-17


def test_identity_outside_training_and_at_rate_zero_zero_at_rate_one():
    x = torch.randn(4, 5)
    assert dropout(x, 0.5, False) is x and dropout(x, 0.0, True) is x
    torch.testing.assert_close(dropout(x, 1.0, True), torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"rate in \[0, 1\], found 1.5"):
        dropout(x, 1.5, True)


def test_independent_draws_and_gradient_is_the_same_mask():
    torch.manual_seed(1)
    x = torch.randn(3, 50, 50, requires_grad=True)
    y = dropout(x, 0.3, True)
    (g,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(g, torch.where(y != 0, 1 / (1 - effective_rate(0.3)), 0.0))
    assert not torch.equal(dropout(x, 0.3, True) != 0, y != 0)


def test_relu_dropout_equals_dropout_of_relu_in_value_and_gradient():
    x = torch.randn(64, 240, requires_grad=True)
    torch.manual_seed(2)
    fused = relu_dropout(x, 0.1, True)
    torch.manual_seed(2)
    plain = dropout(torch.relu(x), 0.1, True)
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(torch.autograd.grad(fused.sum(), x)[0], torch.autograd.grad(plain.sum(), x)[0])
    torch.testing.assert_close(relu_dropout(x, 0.1, False), torch.relu(x))
