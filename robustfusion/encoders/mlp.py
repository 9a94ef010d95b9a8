"""MLP encoder for utterance-level vectors (e.g. the MOSI bc-LSTM features)."""

from __future__ import annotations

from torch import Tensor, nn

from robustfusion.encoders.base import ModalityEncoder, register_encoder
from robustfusion.encoders.context import ContextInjection
from robustfusion.masking import masked_mean

__all__ = ["MLPEncoder"]


@register_encoder("mlp")
class MLPEncoder(ModalityEncoder):
    """``[B, D] -> [B, out_dim]`` with ``layers`` Linear-GELU-Dropout blocks and a final Linear.

    A sequence input ``[B, T, D]`` is first mean-pooled over its observed frames.

    Args:
        in_dim, out_dim, context_dim: see :class:`ModalityEncoder`.
        hidden_dim: width of the hidden layers (default 128).
        layers: number of hidden layers (default 1).
        dropout: dropout after each hidden layer (default 0.1).
        context_mode: how a context enters (``"add"``, ``"concat"`` or ``"gate"``).
    """

    def __init__(self, in_dim: int, out_dim: int, context_dim: int = 0, hidden_dim: int = 128,
                 layers: int = 1, dropout: float = 0.1, context_mode: str = "add") -> None:
        super().__init__(in_dim, out_dim, context_dim)
        self.inject = ContextInjection(in_dim, context_dim, context_mode)
        blocks: list[nn.Module] = []
        d = self.inject.out_dim
        for _ in range(layers):
            blocks += [nn.Linear(d, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
            d = hidden_dim
        blocks.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor, mask: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        if x.dim() == 3:
            x = masked_mean(x, mask)
        return self.net(self.inject(x, context))
