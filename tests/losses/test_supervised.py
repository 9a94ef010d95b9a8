"""Supervised losses for regression, classification and multilabel tasks, and target checks."""

from __future__ import annotations

import pytest
import torch

from robustfusion.losses import TASKS, check_targets, supervised_loss


def test_regression_l1_and_mse_by_hand():
    pred = torch.tensor([[0.5], [2.0], [-1.0]])
    target = torch.tensor([1.0, 1.0, 1.0])
    assert supervised_loss(pred, target).item() == pytest.approx((0.5 + 1.0 + 2.0) / 3)
    assert supervised_loss(pred, target, regression_loss="mse").item() == pytest.approx((0.25 + 1.0 + 4.0) / 3)
    assert supervised_loss(pred, target.unsqueeze(1)).item() == pytest.approx(3.5 / 3)  # [B, 1] targets too
    two = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    assert supervised_loss(two, torch.tensor([[1.0, 1.0], [1.0, 3.0]])).item() == pytest.approx(3.0 / 4)


def test_classification_is_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([0, 2])
    expected = -(torch.log_softmax(logits, 1)[0, 0] + torch.log_softmax(logits, 1)[1, 2]) / 2
    assert supervised_loss(logits, target, "classification").item() == pytest.approx(expected.item())


def test_multilabel_is_binary_cross_entropy_on_logits():
    logits = torch.tensor([[0.0, 3.0], [-2.0, 1.0]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.sigmoid(logits)
    expected = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    assert supervised_loss(logits, target, "multilabel").item() == pytest.approx(expected.item(), rel=1e-6)


def test_bad_targets_raise():
    assert set(TASKS) == {"regression", "classification", "multilabel"}
    with pytest.raises(ValueError, match=r"task.*found 'ranking'"):
        supervised_loss(torch.zeros(2, 1), torch.zeros(2), "ranking")
    with pytest.raises(ValueError, match=r"regression targets: expected shape \(2, 1\).*found \(2, 2\)"):
        supervised_loss(torch.zeros(2, 1), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"regression_loss.*found 'huber'"):
        supervised_loss(torch.zeros(2, 1), torch.zeros(2), regression_loss="huber")
    with pytest.raises(ValueError, match=r"classification targets: expected integer class indices of shape \(2,\)"):
        check_targets(torch.zeros(2, 3), torch.zeros(2), "classification")
    with pytest.raises(ValueError, match=r"classes in \[0, 2\], found range \[0, 3\]"):
        check_targets(torch.zeros(2, 3), torch.tensor([0, 3]), "classification")
    with pytest.raises(ValueError, match=r"classes in \[0, 2\], found range \[-1, 1\]"):
        check_targets(torch.zeros(2, 3), torch.tensor([-1, 1]), "classification")
    with pytest.raises(ValueError, match=r"multilabel targets: expected shape \(2, 4\)"):
        check_targets(torch.zeros(2, 4), torch.zeros(2, 3), "multilabel")
