"""Heads: GMC's shared projection head and the prediction head."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PredictionHead", "SharedProjectionHead"]


class SharedProjectionHead(nn.Module):
    """One head ``g`` applied to every modality's and the joint intermediate vector.

    GMC (Poklukar et al., arXiv 2202.03390): "a shared projection head g ... maps the
    intermediate representations of all modalities and the joint one to a common latent space",
    ``z = g(h) / ||g(h)||``. Sharing ``g`` is what aligns the modality-specific and joint
    representations in one space.

    Args:
        in_dim: size of the intermediate vectors ``h``.
        latent_dim: size of ``z``.
        hidden_dim: ``0`` (default) = a single Linear (as in GMC's affect experiments);
            otherwise Linear-GELU-Linear.

    Shapes: ``[..., in_dim] -> [..., latent_dim]``, unit L2 norm along the last axis.
    """

    def __init__(self, in_dim: int, latent_dim: int, hidden_dim: int = 0) -> None:
        super().__init__()
        self.in_dim, self.latent_dim = in_dim, latent_dim
        if hidden_dim:
            self.net: nn.Module = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(),
                                                nn.Linear(hidden_dim, latent_dim))
        else:
            self.net = nn.Linear(in_dim, latent_dim)

    def forward(self, h: Tensor) -> Tensor:
        return F.normalize(self.net(h), dim=-1)


class PredictionHead(nn.Module):
    """GMC's classifier: a residual block ``z + W2 relu(W1 z)`` and a Linear to ``out_dim``.

    ``out_dim`` is 1 for sentiment regression, the number of classes for classification, the
    number of labels for multilabel emotion.
    """

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj1, self.proj2 = nn.Linear(in_dim, in_dim), nn.Linear(in_dim, in_dim)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(in_dim, out_dim)

    def forward(self, z: Tensor) -> Tensor:
        return self.out(z + self.proj2(self.dropout(F.relu(self.proj1(z)))))
