"""MulT's encoder: pairwise crossmodal transformers, memory transformers, last-step pooling.

Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences", ACL 2019,
arXiv 1906.00295: "a crossmodal transformer enables one modality for receiving information
from another modality" -- queries come from the target modality alpha, keys and values from the
source modality beta (``CM_{beta -> alpha}``); for each target modality the outputs of its
crossmodal transformers are concatenated and passed through a self-attention ("memory")
transformer, and "the last elements of the sequence models are extracted" and concatenated.

Used by the ``"mult"`` model (:mod:`robustfusion.models.mult`) and by the ``"crossmodal"``
joint encoder (:mod:`robustfusion.encoders.joint_crossmodal`), as in GMC's affect experiments.
Every transformer is MulT's (:mod:`robustfusion.encoders.stacked_transformer`); transformers of
one shape and dropout rate run as one :class:`~robustfusion.encoders.stacked_transformer.StackedTransformer`.

:class:`MulTEncoder` encodes several named sequences at once (``inputs, present, frame_masks
-> [B, out_dim]``), so it is neither a per-modality encoder of the ``create_encoder`` registry
nor a fusion layer of the ``fusion(features, present)`` signature. The zero-filling rule it
applies is :func:`robustfusion.masking.zero_fill_sequences`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from robustfusion.encoders.dropout import dropout
from robustfusion.encoders.stacked_transformer import StackedTransformer
from robustfusion.masking import last_observed, masked_mean, zero_fill_sequences

__all__ = ["MulTEncoder"]


def _rates(value: float | Mapping[str, float], modalities: tuple[str, ...], what: str) -> dict[str, float]:
    """One dropout rate per modality from a float or a ``{modality: rate}`` mapping (others 0)."""
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(modalities))
        if unknown:
            raise ValueError(f"MulTEncoder {what}: expected modalities among {list(modalities)}, found {unknown}")
        rates = {m: float(value.get(m, 0.0)) for m in modalities}
    else:
        rates = {m: float(value) for m in modalities}
    bad = {m: r for m, r in rates.items() if not 0.0 <= r < 1.0}
    if bad:
        raise ValueError(f"MulTEncoder {what}: expected rates in [0, 1), found {bad}")
    return rates


class MulTEncoder(nn.Module):
    """MulT's encoder: named sequences -> ``[B, out_dim]``.

    For every modality: optional input dropout, then a temporal Conv1d (kernel ``conv_kernel``,
    no bias) to ``d_model``. For every target modality ``alpha`` and source ``beta != alpha`` a
    crossmodal transformer (queries from ``alpha``, keys and values from ``beta``); the
    ``M - 1`` outputs of a target are concatenated (``[B, T_a, (M-1) d]``), passed through a
    memory transformer of that width and pooled (``"last"`` observed frame, as MulT, or
    ``"mean"``); the pooled vectors of all targets are concatenated. With a single modality the
    stream is the memory transformer alone. ``out_dim = M * max(M - 1, 1) * d_model``. Every
    transformer scales its input by ``sqrt(width)`` and adds positions itself, as in MulT's code.

    Missing-modality rule (MulT itself assumes every modality is present; common practice when
    evaluating it with missing inputs): zero-fill the absent modality's input sequence
    (:func:`robustfusion.masking.zero_fill_sequences`). Unobserved frames of present modalities
    are zeroed and excluded as attention keys and from pooling. The output never depends on
    values stored in absent modalities or unobserved frames.

    Args:
        modality_dims: ``{name: D}``.
        d_model: width of every crossmodal stream (default 32; MulT used 30-40, GMC 30).
        num_heads, num_layers: attention heads and layers of every crossmodal and memory
            transformer (defaults 4 and 2; GMC 5 and 5). The memory transformers use
            ``num_heads`` if it divides their width, else 1.
        dropout: ReLU and residual dropout of every transformer (MulT's ``relu_dropout`` and
            ``res_dropout``; default 0.1).
        attn_dropout: dropout on the crossmodal attention weights: one rate, or
            ``{source modality: rate}`` (others 0). MulT's and GMC's code set it by the source
            (key) modality: GMC uses ``{"text": 0.1}``.
        memory_attn_dropout: dropout on the memory transformers' attention weights (default
            ``None``: ``dropout``; GMC 0.1).
        embed_dropout: dropout on every transformer's embedded input (GMC 0.25).
        input_dropout: ``{modality: rate}`` dropout on raw inputs before the Conv1d (GMC: text
            0.25); default none.
        causal: MulT's ``attn_mask`` (query ``i`` sees keys up to ``i + |T_k - T_q|``); MulT's and
            GMC's code use it; default False.
        pooling: ``"last"`` (default, MulT) or ``"mean"`` over observed target frames.
        conv_kernel: kernel size of the input Conv1d (default 1).
    """

    def __init__(self, modality_dims: Mapping[str, int], d_model: int = 32, num_heads: int = 4, num_layers: int = 2,
                 dropout: float = 0.1, attn_dropout: float | Mapping[str, float] = 0.1,
                 memory_attn_dropout: float | None = None, embed_dropout: float = 0.1,
                 input_dropout: Mapping[str, float] | None = None, causal: bool = False,
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
        self.input_dropout = _rates(input_dropout or {}, self.modalities, "input_dropout")
        source_rates = _rates(attn_dropout, self.modalities, "attn_dropout")
        memory_rate = dropout if memory_attn_dropout is None else memory_attn_dropout
        m = len(self.modalities)
        self.proj = nn.ModuleDict({k: nn.Conv1d(d, d_model, conv_kernel, padding=conv_kernel // 2, bias=False)
                                   for k, d in self.modality_dims.items()})
        # (source, target) pairs in MulT's order, grouped into one stack per attention-dropout rate
        pairs = [(src, tgt) for tgt in self.modalities for src in self.modalities if src != tgt]
        rates = sorted({source_rates[src] for src, _ in pairs})
        self.cross_pairs = [[p for p in pairs if source_rates[p[0]] == r] for r in rates]
        self.cross = nn.ModuleList([
            StackedTransformer(len(group), d_model, num_heads, num_layers, dropout, r, embed_dropout, causal)
            for group, r in zip(self.cross_pairs, rates, strict=True)])
        d_stream = max(m - 1, 1) * d_model
        heads = num_heads if d_stream % num_heads == 0 else 1
        self.memory = StackedTransformer(m, d_stream, heads, num_layers, dropout, memory_rate, embed_dropout, causal)
        self.out_dim = m * d_stream

    @property
    def num_crossmodal(self) -> int:
        """``M (M - 1)``: the number of crossmodal transformers."""
        return sum(len(g) for g in self.cross_pairs)

    @staticmethod
    def _run(stack: StackedTransformer, queries: list[Tensor], sources: list[Tensor] | None,
             masks: list[Tensor | None], query_index: list[Tensor] | None = None) -> list[Tensor]:
        """Every stream of ``stack`` at once when their shapes agree, else one at a time."""
        shapes = {(q.shape, None if sources is None else sources[i].shape) for i, q in enumerate(queries)}
        if len(shapes) == 1:
            key_mask = None
            if any(k is not None for k in masks):
                key_mask = torch.stack([torch.ones(queries[0].shape[0], (queries if sources is None else sources)[i]
                                                   .shape[1], dtype=torch.bool, device=queries[0].device)
                                        if k is None else k for i, k in enumerate(masks)])
            src = None if sources is None else torch.stack(sources)
            index = None if query_index is None else torch.stack(query_index)
            return list(stack(torch.stack(queries), src, key_mask, query_index=index).unbind(0))
        return [stack(q.unsqueeze(0), None if sources is None else sources[i].unsqueeze(0),
                      None if masks[i] is None else masks[i].unsqueeze(0), streams=[i],
                      query_index=None if query_index is None else query_index[i].unsqueeze(0))[0]
                for i, q in enumerate(queries)]

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
        frame_masks = frame_masks or {}
        seqs, full_masks = zero_fill_sequences({m: inputs[m] for m in self.modalities}, present, frame_masks)
        # without a frame mask every frame is observed: no key mask (the fast attention path)
        masks = {m: full_masks[m] if frame_masks.get(m) is not None else None for m in self.modalities}
        h = {m: self.proj[m](dropout(x, self.input_dropout[m], self.training).transpose(1, 2)).transpose(1, 2)
             for m, x in seqs.items()}
        cross = {}
        for stack, group in zip(self.cross, self.cross_pairs, strict=True):
            outs = self._run(stack, [h[t] for _, t in group], [h[s] for s, _ in group], [masks[s] for s, _ in group])
            cross.update(zip(group, outs, strict=True))
        streams = [torch.cat([cross[(s, t)] for s in self.modalities if s != t], dim=-1) if len(self.modalities) > 1
                   else h[t] for t in self.modalities]
        if self.pooling == "mean":
            memory = self._run(self.memory, streams, None, [masks[t] for t in self.modalities])
            return torch.cat([masked_mean(z, masks[t]) for z, t in zip(memory, self.modalities, strict=True)], dim=-1)
        # last-frame pooling reads one frame per sequence: the memory stack's final layer computes only it
        last = {t: None if masks[t] is None else last_observed(masks[t]) for t in self.modalities}
        index = [torch.full((z.shape[0],), z.shape[1] - 1, device=z.device) if last[t] is None else last[t].clamp_min(0)
                 for z, t in zip(streams, self.modalities, strict=True)]
        memory = self._run(self.memory, streams, None, [masks[t] for t in self.modalities], index)
        return torch.cat([z if last[t] is None else torch.where((last[t] >= 0).unsqueeze(-1), z, torch.zeros_like(z))
                          for z, t in zip(memory, self.modalities, strict=True)], dim=-1)
