"""Context injection: how a back-connected fused vector enters an encoder's early layers.

Progressive Fusion (Shankar, Thompson, Fiterau, arXiv 2209.00302): "backward connections make
late-stage fused representations available to early layers". The paper does not fix *how*
the context enters; this module offers three modes (this library's choice, documented):

* ``"concat"``: ``x' = [x; c]`` (the encoder's first layer sees ``D + K`` features);
* ``"add"`` (default): ``x' = x + P c`` with ``P`` a bias-free ``K -> D`` linear map;
* ``"gate"``: ``x' = x + sigmoid(G [x; c]) * (P c)``, a sigmoid-gated add.

Every mode maps ``c = 0`` (and ``c = None``) to the plain input, so an encoder with a context
port behaves exactly like the same encoder without one until a context arrives. For sequences
``x`` is ``[B, T, D]`` and ``c`` ``[B, K]`` is broadcast over time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["CONTEXT_MODES", "ContextInjection"]

CONTEXT_MODES = ("concat", "add", "gate")


class ContextInjection(nn.Module):
    """Injects a context vector ``[B, K]`` into features ``[B, D]`` or ``[B, T, D]``.

    Args:
        in_dim: feature size ``D``.
        context_dim: context size ``K``; ``0`` disables the port (identity).
        mode: one of ``CONTEXT_MODES``.

    Attributes:
        out_dim: size of the returned features (``D + K`` for ``concat``, else ``D``).
    """

    def __init__(self, in_dim: int, context_dim: int = 0, mode: str = "add") -> None:
        super().__init__()
        if mode not in CONTEXT_MODES:
            raise ValueError(f"context mode: expected one of {CONTEXT_MODES}, found {mode!r}")
        self.in_dim, self.context_dim, self.mode = in_dim, context_dim, mode
        self.out_dim = in_dim + context_dim if (mode == "concat" and context_dim > 0) else in_dim
        self.proj = nn.Linear(context_dim, in_dim, bias=False) if context_dim and mode != "concat" else None
        self.gate = nn.Linear(in_dim + context_dim, in_dim) if context_dim and mode == "gate" else None

    def forward(self, x: Tensor, context: Tensor | None) -> Tensor:
        if self.context_dim == 0:
            if context is not None:
                raise ValueError("this encoder was built with context_dim=0 and takes no context")
            return x
        if context is None:
            if self.mode == "concat":
                return torch.cat([x, x.new_zeros(*x.shape[:-1], self.context_dim)], dim=-1)
            return x
        if context.shape != (x.shape[0], self.context_dim):
            raise ValueError(
                f"context: expected shape ({x.shape[0]}, {self.context_dim}), found {tuple(context.shape)}"
            )
        c = context.unsqueeze(1).expand(-1, x.shape[1], -1) if x.dim() == 3 else context
        if self.mode == "concat":
            return torch.cat([x, c], dim=-1)
        added = self.proj(c)
        if self.mode == "gate":
            added = torch.sigmoid(self.gate(torch.cat([x, c], dim=-1))) * added
        return x + added
