"""Crossmodal attention blocks and the MulT encoder (pairwise crossmodal transformers).

Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences", ACL 2019,
arXiv 1906.00295: "a crossmodal transformer enables one modality for receiving information
from another modality" -- queries come from the target modality alpha, keys and values from the
source modality beta (``CM_{beta -> alpha}``); for each target modality the outputs of its
crossmodal transformers are concatenated and passed through a self-attention transformer, and
"the last elements of the sequence models are extracted" and concatenated for prediction.

Used by the ``"mult"`` model (:mod:`robustfusion.models.mult`) and by the ``"crossmodal"``
joint encoder (:mod:`robustfusion.encoders.joint_crossmodal`), as in GMC's affect experiments.

:class:`MulTEncoder` encodes several named sequences at once (``inputs, present, frame_masks
-> [B, out_dim]``), so it is neither a per-modality encoder of the ``create_encoder`` registry
nor a fusion layer of the ``fusion(features, present)`` signature (it was
``robustfusion.fusion.crossmodal`` before). The zero-filling rule it applies is
:func:`robustfusion.masking.zero_fill_sequences`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from robustfusion.masking import key_padding_mask, masked_last, masked_mean, zero_fill_sequences

__all__ = [
    "CrossmodalLayer",
    "CrossmodalTransformer",
    "MulTEncoder",
    "sinusoidal_positions",
]


def sinusoidal_positions(length: int, dim: int, device=None, dtype=torch.float32) -> Tensor:
    """``[length, dim]`` fixed sinusoidal position embeddings (Vaswani et al. 2017; MulT uses them)."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe.to(dtype)


class CrossmodalLayer(nn.Module):
    """One pre-norm crossmodal attention layer ``[B, T_a, d], [B, T_b, d] -> [B, T_a, d]``.

    MulT (arXiv 1906.00295, eq. 4) writes ``Z = CM(LN(Z_a), LN(X_b)) + LN(Z_a)`` followed by
    ``f(LN(Z)) + LN(Z)``; this layer uses the standard pre-norm residual form
    ``Z = Z_a + MHA(LN(Z_a), LN(X_b), LN(X_b))``, ``Z = Z + FFN(LN(Z))`` (a documented
    deviation: the residual path skips the LayerNorm). Keys marked True in
    ``key_padding_mask`` are ignored.
    """

    def __init__(self, d_model: int, num_heads: int = 4, dim_feedforward: int | None = None,
                 dropout: float = 0.1, attn_dropout: float = 0.1) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(d_model), nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, num_heads, dropout=attn_dropout, batch_first=True)
        ff = dim_feedforward or 4 * d_model
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, source: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        q, kv = self.norm_q(query), self.norm_kv(source)
        attended, _ = self.attn(q, kv, kv, key_padding_mask=key_padding_mask, need_weights=False)
        x = query + self.dropout(attended)
        return x + self.dropout(self.ff(self.norm_ff(x)))


class CrossmodalTransformer(nn.Module):
    """``CM_{beta -> alpha}``: ``num_layers`` :class:`CrossmodalLayer` s, each attending from the
    running target sequence to the (fixed) source sequence; a final LayerNorm."""

    def __init__(self, d_model: int, num_heads: int = 4, num_layers: int = 2, dim_feedforward: int | None = None,
                 dropout: float = 0.1, attn_dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList([CrossmodalLayer(d_model, num_heads, dim_feedforward, dropout, attn_dropout)
                                     for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)

    def forward(self, target: Tensor, source: Tensor, source_mask: Tensor | None = None) -> Tensor:
        """``target`` ``[B, T_a, d]``, ``source`` ``[B, T_b, d]``, ``source_mask`` ``[B, T_b]``
        (True = observed) -> ``[B, T_a, d]``."""
        kpm = key_padding_mask(source_mask)
        for layer in self.layers:
            target = layer(target, source, kpm)
        return self.norm(target)


class MulTEncoder(nn.Module):
    """MulT's encoder: named sequences -> ``[B, out_dim]``.

    For every modality: a temporal Conv1d (kernel ``conv_kernel``) to ``d_model``, scaled by
    ``sqrt(d_model)``, plus sinusoidal positions. For every target modality ``alpha`` and
    source ``beta != alpha`` a :class:`CrossmodalTransformer`; the ``M - 1`` outputs of a
    target are concatenated (``[B, T_a, (M-1) d]``), passed through a self-attention
    transformer and pooled (``"last"`` observed frame, as MulT, or ``"mean"``); the pooled
    vectors of all targets are concatenated. With a single modality the stream is
    self-attention only. ``out_dim = M * max(M - 1, 1) * d_model``.

    Missing-modality rule (MulT itself assumes every modality is present; common practice when
    evaluating it with missing inputs): zero-fill the absent modality's input sequence
    (:func:`robustfusion.masking.zero_fill_sequences`). Unobserved frames of present modalities
    are zeroed and excluded as attention keys and from pooling. The output never depends on
    values stored in absent modalities or unobserved frames.

    Args:
        modality_dims: ``{name: D}``.
        d_model: width of every crossmodal stream (default 32; MulT used 30-40).
        num_heads, num_layers: attention heads and layers per crossmodal / self-attention
            transformer (defaults 4 and 2).
        dropout, attn_dropout, embed_dropout: dropout rates.
        pooling: ``"last"`` (default, MulT) or ``"mean"`` over observed target frames.
        conv_kernel: kernel size of the input Conv1d (default 1).
    """

    def __init__(self, modality_dims: Mapping[str, int], d_model: int = 32, num_heads: int = 4, num_layers: int = 2,
                 dropout: float = 0.1, attn_dropout: float = 0.1, embed_dropout: float = 0.1,
                 pooling: str = "last", conv_kernel: int = 1) -> None:
        super().__init__()
        if pooling not in ("last", "mean"):
            raise ValueError(f"MulTEncoder pooling: expected 'last' or 'mean', found {pooling!r}")
        if d_model % num_heads:
            raise ValueError(f"MulTEncoder: d_model={d_model} must be divisible by num_heads={num_heads}")
        if conv_kernel < 1 or conv_kernel % 2 == 0:
            raise ValueError(f"MulTEncoder: expected an odd conv_kernel >= 1, found {conv_kernel}")
        self.modality_dims = {str(k): int(v) for k, v in modality_dims.items()}
        self.modalities = tuple(self.modality_dims)
        self.d_model, self.pooling = d_model, pooling
        m = len(self.modalities)
        streams = max(m - 1, 1)
        self.proj = nn.ModuleDict({k: nn.Conv1d(d, d_model, conv_kernel, padding=conv_kernel // 2, bias=False)
                                   for k, d in self.modality_dims.items()})
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.cross = nn.ModuleDict({
            f"{src}_to_{tgt}": CrossmodalTransformer(d_model, num_heads, num_layers, None, dropout, attn_dropout)
            for tgt in self.modalities for src in self.modalities if src != tgt
        })
        d_stream = streams * d_model
        heads = num_heads if d_stream % num_heads == 0 else 1
        self.memory = nn.ModuleDict({
            tgt: nn.TransformerEncoder(
                nn.TransformerEncoderLayer(d_stream, heads, 4 * d_stream, dropout, batch_first=True, norm_first=True),
                num_layers, enable_nested_tensor=False)
            for tgt in self.modalities
        })
        self.memory_norm = nn.ModuleDict({tgt: nn.LayerNorm(d_stream) for tgt in self.modalities})
        self.out_dim = m * d_stream

    def forward(self, inputs: Mapping[str, Tensor], present: Tensor,
                frame_masks: Mapping[str, Tensor | None] | None = None) -> Tensor:
        """``inputs`` ``{name: [B, T_m, D_m] or [B, D_m]}`` (at least this encoder's modalities),
        ``present`` ``[B, M]`` in this encoder's modality order, ``frame_masks``
        ``{name: [B, T_m]}`` -> ``[B, out_dim]``."""
        if present.dim() != 2 or present.shape[1] != len(self.modalities):
            raise ValueError(f"MulTEncoder: expected present of shape [B, {len(self.modalities)}] for "
                             f"{list(self.modalities)}, found {tuple(present.shape)}")
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise ValueError(f"MulTEncoder: inputs lack modalities {missing}; expected {list(self.modalities)}")
        seqs, masks = zero_fill_sequences({m: inputs[m] for m in self.modalities}, present, frame_masks)
        h = {}
        for m, x in seqs.items():
            e = self.proj[m](x.transpose(1, 2)).transpose(1, 2) * math.sqrt(self.d_model)
            e = e + sinusoidal_positions(e.shape[1], self.d_model, e.device, e.dtype)
            h[m] = self.embed_dropout(e)
        pooled = []
        for tgt in self.modalities:
            sources = [s for s in self.modalities if s != tgt]
            if sources:
                z = torch.cat([self.cross[f"{s}_to_{tgt}"](h[tgt], h[s], masks[s]) for s in sources], dim=-1)
            else:
                z = h[tgt]
            z = self.memory_norm[tgt](self.memory[tgt](z, src_key_padding_mask=key_padding_mask(masks[tgt])))
            pooled.append(masked_last(z, masks[tgt]) if self.pooling == "last" else masked_mean(z, masks[tgt]))
        return torch.cat(pooled, dim=-1)
