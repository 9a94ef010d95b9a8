"""Small Transformer sequence encoder with masked pooling."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from robustfusion.encoders.base import ModalityEncoder, register_encoder
from robustfusion.encoders.context import ContextInjection
from robustfusion.masking import key_padding_mask, masked_mean, zero_unobserved

__all__ = ["TransformerEncoder"]


@register_encoder("transformer")
class TransformerEncoder(ModalityEncoder):
    """``[B, T, D] -> [B, out_dim]``: Linear to ``d_model``, learned positions, pre-norm
    Transformer layers with a key-padding mask, masked mean pooling, Linear.

    Unobserved frames are excluded as attention keys and from pooling; a sample with no
    observed frame encodes to ``proj(0)`` (never NaN). Sequences longer than ``max_len`` raise
    a ``ValueError``.
    """

    def __init__(self, in_dim: int, out_dim: int, context_dim: int = 0, d_model: int = 64,
                 num_heads: int = 4, num_layers: int = 2, dim_feedforward: int = 128,
                 dropout: float = 0.1, max_len: int = 512, context_mode: str = "add") -> None:
        super().__init__(in_dim, out_dim, context_dim)
        self.inject = ContextInjection(in_dim, context_dim, context_mode)
        self.inp = nn.Linear(self.inject.out_dim, d_model)
        self.pos = nn.Parameter(torch.zeros(1, max_len, d_model))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout,
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.proj = nn.Linear(d_model, out_dim)
        self.max_len = max_len

    def forward(self, x: Tensor, mask: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        t = x.shape[1]
        if t > self.max_len:
            raise ValueError(f"TransformerEncoder: expected at most max_len={self.max_len} frames, found {t}")
        x = zero_unobserved(x, mask)
        h = self.inp(self.inject(x, context)) + self.pos[:, :t]
        # rows with no observed frame attend everywhere (their pooled output is zeroed below)
        h = self.norm(self.layers(h, src_key_padding_mask=key_padding_mask(mask)))
        return self.proj(masked_mean(h, mask))
