"""Shared projection head (L2-normalised, one module for every modality) and prediction head."""

from __future__ import annotations

import torch

from robustfusion.heads import PredictionHead, SharedProjectionHead


def test_shared_projection_head_is_unit_norm_and_shared():
    torch.manual_seed(0)
    for hidden in (0, 16):
        head = SharedProjectionHead(8, 5, hidden_dim=hidden)
        h = 10 * torch.randn(4, 3, 8)  # any leading shape
        z = head(h)
        assert z.shape == (4, 3, 5)
        torch.testing.assert_close(z.norm(dim=-1), torch.ones(4, 3))
        # the same module maps every input the same way: g(h) depends only on h
        torch.testing.assert_close(head(h[0]), z[0])
        # normalised: only the direction of g(h) matters
        torch.testing.assert_close(z, torch.nn.functional.normalize(head.net(h), dim=-1))
    assert isinstance(SharedProjectionHead(8, 5).net, torch.nn.Linear)


def test_prediction_head_residual_formula():
    torch.manual_seed(0)
    head = PredictionHead(6, 3).eval()
    z = torch.randn(5, 6)
    expected = head.out(z + head.proj2(torch.relu(head.proj1(z))))
    torch.testing.assert_close(head(z), expected)
    assert head(z).shape == (5, 3)
