"""GRU sequence encoder: GMC's affect encoder (GRU over time, flatten or pool, Linear)."""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from robustfusion.encoders.base import ModalityEncoder, register_encoder
from robustfusion.encoders.context import ContextInjection
from robustfusion.masking import POOLINGS, masked_last, masked_mean, zero_unobserved

__all__ = ["GRUEncoder"]


@register_encoder("gru")
class GRUEncoder(ModalityEncoder):
    """``[B, T, D] -> [B, out_dim]``: GRU over the frames, then pooling, then a Linear.

    GMC (Poklukar et al., arXiv 2202.03390) encodes each affect modality with a GRU whose
    outputs over all ``T`` timesteps are flattened and projected (``pooling="flatten"``, which
    needs a fixed ``seq_len``). ``"mean"`` (default) and ``"last"`` pool over observed frames
    only and accept any ``T``.

    Frame masks: unobserved frames are zeroed before the GRU (the EMT-DLFR / TFR-Net convention
    for dropped frames), and excluded from mean/last pooling; the output therefore does not
    depend on what is stored in unobserved frames. A ``[B, D]`` input is treated as ``T = 1``.
    """

    def __init__(self, in_dim: int, out_dim: int, context_dim: int = 0, hidden_dim: int = 64,
                 pooling: str = "mean", seq_len: int | None = None, num_layers: int = 1,
                 dropout: float = 0.0, context_mode: str = "add") -> None:
        super().__init__(in_dim, out_dim, context_dim)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {POOLINGS}, found {pooling!r}")
        if pooling == "flatten" and not seq_len:
            raise ValueError("pooling='flatten' needs seq_len (the fixed number of frames T)")
        self.pooling, self.seq_len = pooling, seq_len
        self.inject = ContextInjection(in_dim, context_dim, context_mode)
        self.gru = nn.GRU(self.inject.out_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.proj = nn.Linear(hidden_dim * (seq_len if pooling == "flatten" else 1), out_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if self.pooling == "flatten" and x.shape[1] != self.seq_len:
            raise ValueError(f"GRUEncoder(pooling='flatten'): expected T={self.seq_len} frames, found {x.shape[1]}")
        x = zero_unobserved(x, mask)
        h, _ = self.gru(self.inject(x, context))
        if self.pooling == "flatten":
            pooled = rearrange(zero_unobserved(h, mask), "b t h -> b (t h)")
        elif self.pooling == "last":
            pooled = masked_last(h, mask)
        else:
            pooled = masked_mean(h, mask)
        return self.proj(pooled)
