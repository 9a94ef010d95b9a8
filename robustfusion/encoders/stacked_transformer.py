"""MulT's transformer encoder, with ``S`` independent copies evaluated as one batched computation.

MulT (Tsai et al., ACL 2019, arXiv 1906.00295) and GMC's affect joint encoder (Poklukar et al.,
ICML 2022, arXiv 2202.03390) run many small transformers of one shape side by side: six
crossmodal transformers and three "memory" (self-attention) transformers for three modalities.
Run one after the other, each of them is a long chain of small kernels, and on a CPU the
per-kernel overhead costs more than the arithmetic. :class:`StackedTransformer` stores the
parameters of ``S`` such transformers stacked along a leading "stream" axis and runs every layer
of all ``S`` at once (batched matrix products, one fused attention call), so it launches the
kernels of one transformer, not of ``S``. Each stream keeps its own parameters and its own
dropout draws: the mathematics is that of ``S`` separate transformers.

What one stream computes is MulT's ``TransformerEncoder`` (``src/models/transformer.py`` in
MulT's code, reused by GMC):

* the input is scaled by ``sqrt(d)`` and sinusoidal positions ``1..T`` are added
  (:func:`mult_positions`, fairseq's layout: sines in the first half of the channels, cosines in
  the second), then embedding dropout; a crossmodal transformer treats its source the same way,
  and, as in MulT's code, draws separate dropout masks for the keys' and the values' copy of it;
* ``num_layers`` pre-norm layers: ``x = x + drop(MHA(LN(x), LN(k), LN(v)))`` with one LayerNorm
  for query, keys and values, then ``x = x + drop(W2 drop(relu(W1 LN(x))))`` (width ``4 d``);
* a final LayerNorm.

``causal=True`` is MulT's ``attn_mask``: query ``i`` may attend to key ``j`` only when
``j <= i + |T_k - T_q|`` (its ``buffered_future_mask``). Keys marked unobserved in
``key_mask`` are never attended to; a query left with no key attends to every key it may see
instead of producing NaN (its frames are zeros and pooling ignores it).

Deviation from MulT's code: MulT gives position 0 (a zero vector) to frames whose first input
feature is exactly 0, which is how its zero padding shows; here every frame ``t`` gets position
``t + 1`` and padding is expressed by frame masks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from robustfusion.encoders.dropout import dropout, relu_dropout

__all__ = ["StackedTransformer", "allowed_keys", "mult_positions"]


def _additive(mask: Tensor | None, heads: int) -> Tensor | None:
    """Boolean mask ``[t_q, t_k]`` or ``[N, 1, t_q, t_k]`` -> additive ``0 / -inf`` bias that
    broadcasts against ``[N * heads, t_q, t_k]`` scores."""
    if mask is None:
        return None
    bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_fill_(~mask, float("-inf"))
    if bias.dim() == 2:
        return bias
    return bias.expand(-1, heads, -1, -1).reshape(-1, *bias.shape[-2:])


_CAUSAL_BLOCKS = 3  # causal attention runs in this many blocks of queries (see _attention)


def _attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, p: float, bias: Tensor | None,
               offset: int | None) -> Tensor:
    """Scaled dot-product attention over ``[N, heads, T, e]``; ``mask`` True = may attend.

    Without dropout or a causal mask: PyTorch's fused kernel. Otherwise written out, so the
    attention weights are dropped by :func:`dropout` (the fused CPU kernel falls back to an
    unfused path anyway, with the slower ``bernoulli_`` draw): one ``baddbmm`` scales the scores
    and adds ``bias`` (the mask as ``0 / -inf``). Under a causal mask (``offset``: query ``i``
    sees keys ``j <= i + offset``) the queries go in ``_CAUSAL_BLOCKS`` blocks, each against the
    keys it may see only: the same result, without computing, dropping and differentiating most
    of the masked half of the ``T x T`` weights.
    """
    if p == 0.0 and offset is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    n, heads, t_q, e = q.shape
    t_k = k.shape[2]
    q3, k3, v3 = (z.reshape(n * heads, z.shape[2], e) for z in (q, k, v))
    scale = e ** -0.5
    step = t_q if offset is None else -(-t_q // _CAUSAL_BLOCKS)
    outs = []
    for start in range(0, t_q, step):
        stop = min(start + step, t_q)
        keys = t_k if offset is None else min(t_k, stop + offset)
        qb, kb = q3[:, start:stop], k3[:, :keys].transpose(1, 2)
        if bias is None:
            scores = torch.bmm(qb * scale, kb)
        else:
            scores = torch.baddbmm(bias[..., start:stop, :keys].to(q.dtype), qb, kb, alpha=scale)
        outs.append(torch.bmm(dropout(scores.softmax(dim=-1), p, True), v3[:, :keys]))
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
    return out.view(n, heads, t_q, e)


def mult_positions(length: int, dim: int, device=None, dtype=torch.float32) -> Tensor:
    """``[length, dim]`` sinusoidal embeddings of positions ``1..length`` in MulT's (fairseq's)
    layout: ``sin(p w_i)`` in the first ``dim // 2`` channels, ``cos(p w_i)`` in the next, with
    ``w_i = 10000^(-i / (dim // 2 - 1))``, and a zero channel when ``dim`` is odd."""
    half = dim // 2
    step = math.log(10000.0) / max(half - 1, 1)
    freq = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * -step)
    angles = torch.arange(1, length + 1, device=device, dtype=torch.float32).unsqueeze(1) * freq
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros(length, 1, device=device)], dim=1)
    return emb.to(dtype)


def allowed_keys(t_q: int, t_k: int, causal: bool, key_mask: Tensor | None) -> Tensor | None:
    """Boolean attention mask (True = may attend), broadcastable to ``[..., t_q, t_k]``.

    ``key_mask`` ``[N, t_k]`` (True = observed) gives ``[N, 1, t_q, t_k]``; ``causal`` alone
    gives ``[t_q, t_k]``; neither gives ``None``. A query with no allowed key gets every key the
    causal rule lets it see (every key without ``causal``).
    """
    visible = None
    if causal:
        device = None if key_mask is None else key_mask.device
        i = torch.arange(t_q, device=device).unsqueeze(1)
        j = torch.arange(t_k, device=device).unsqueeze(0)
        visible = j <= i + abs(t_k - t_q)
    if key_mask is None:
        return visible
    keys = key_mask.bool()[:, None, None, :]
    allowed = (keys if visible is None else keys & visible).expand(key_mask.shape[0], 1, t_q, t_k)
    empty = ~allowed.any(dim=-1, keepdim=True)
    return allowed | (empty if visible is None else empty & visible)


def _mask_rows(mask: Tensor | None, rows: Tensor, n: int) -> Tensor | None:
    """The rows ``rows`` ``[N]`` (one query per sequence) of an :func:`allowed_keys` mask, as
    ``[N, 1, 1, t_k]``."""
    if mask is None:
        return None
    if mask.dim() == 2:
        return mask[rows][:, None, None, :]
    return mask[torch.arange(n, device=mask.device), :, rows].unsqueeze(2)


def _linear(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Per-stream Linear: ``x`` ``[S, N, in]``, ``weight`` ``[S, out, in]``, ``bias`` ``[S, out]``."""
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def _standardise(x: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:])


def _norm(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Per-stream LayerNorm over the last axis of ``x`` ``[S, ..., d]``."""
    shape = (weight.shape[0],) + (1,) * (x.dim() - 2) + (weight.shape[1],)
    return torch.addcmul(bias.view(shape), _standardise(x), weight.view(shape))


def _norm_linear(x_hat: Tensor, norm_w: Tensor, norm_b: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Per-stream ``Linear(LayerNorm(x))`` from ``x_hat = F.layer_norm(x)`` (no affine): the
    LayerNorm's scale and shift are folded into the Linear's weight and bias (a ``[S, out, in]``
    product instead of a pass over the activations, forward and backward)."""
    folded_bias = torch.baddbmm(bias.unsqueeze(-1), weight, norm_b.unsqueeze(-1)).squeeze(-1)
    return _linear(x_hat, weight * norm_w.unsqueeze(1), folded_bias)


class _Layer(nn.Module):
    """The parameters of one layer of every stream."""

    def __init__(self, streams: int, d: int) -> None:
        super().__init__()
        ones, zeros = torch.ones(streams, d), torch.zeros(streams, d)
        self.norm_attn_w, self.norm_attn_b = nn.Parameter(ones.clone()), nn.Parameter(zeros.clone())
        self.norm_ff_w, self.norm_ff_b = nn.Parameter(ones.clone()), nn.Parameter(zeros.clone())
        self.in_proj_w = nn.Parameter(torch.empty(streams, 3 * d, d))
        self.in_proj_b = nn.Parameter(torch.zeros(streams, 3 * d))
        self.out_proj_w = nn.Parameter(torch.empty(streams, d, d))
        self.out_proj_b = nn.Parameter(zeros.clone())
        self.fc1_w, self.fc1_b = nn.Parameter(torch.empty(streams, 4 * d, d)), nn.Parameter(torch.zeros(streams, 4 * d))
        self.fc2_w, self.fc2_b = nn.Parameter(torch.empty(streams, d, 4 * d)), nn.Parameter(zeros.clone())
        for w in (self.in_proj_w, self.out_proj_w, self.fc1_w, self.fc2_w):
            for s in range(streams):  # MulT: xavier-uniform weights, zero biases, per transformer
                nn.init.xavier_uniform_(w.data[s])


class StackedTransformer(nn.Module):
    """``S`` MulT transformer encoders of width ``d_model``, run together.

    Args:
        streams: ``S``, the number of independent transformers.
        d_model, num_heads, num_layers: width, attention heads, layers of each.
        dropout: ReLU and residual dropout (MulT's ``relu_dropout`` and ``res_dropout``).
        attn_dropout: dropout on the attention weights (one rate for all ``S`` streams: group
            transformers of different rates into different stacks).
        embed_dropout: dropout on the embedded inputs.
        causal: MulT's ``attn_mask`` (see the module docstring).

    ``forward(x, source=None, key_mask=None, streams=None)``: ``x`` ``[S', B, T, d]`` (the
    inputs of the selected streams, not yet scaled or position-embedded), ``source``
    ``[S', B, T_k, d]`` for crossmodal attention (``None``: self-attention), ``key_mask``
    ``[S', B, T_k]`` observed keys; ``streams`` selects which of the ``S`` parameter sets to use
    (default all, ``S' = S``). Returns ``[S', B, T, d]``.
    """

    def __init__(self, streams: int, d_model: int, num_heads: int, num_layers: int, dropout: float = 0.1,
                 attn_dropout: float = 0.0, embed_dropout: float = 0.0, causal: bool = False) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"StackedTransformer: d_model={d_model} must be divisible by num_heads={num_heads}")
        self.streams, self.d_model, self.num_heads = streams, d_model, num_heads
        self.dropout, self.attn_dropout, self.embed_dropout = dropout, attn_dropout, embed_dropout
        self.causal = causal
        self.layers = nn.ModuleList([_Layer(streams, d_model) for _ in range(num_layers)])
        self.norm_w = nn.Parameter(torch.ones(streams, d_model))
        self.norm_b = nn.Parameter(torch.zeros(streams, d_model))

    def _scaled(self, x: Tensor) -> Tensor:
        """``x * sqrt(d)`` plus positions, before embedding dropout."""
        return x * math.sqrt(self.d_model) + mult_positions(x.shape[-2], self.d_model, x.device, x.dtype)

    def _embed(self, x: Tensor) -> Tensor:
        return dropout(self._scaled(x), self.embed_dropout, self.training)

    def forward(self, x: Tensor, source: Tensor | None = None, key_mask: Tensor | None = None,
                streams: Sequence[int] | None = None, query_index: Tensor | None = None) -> Tensor:
        s, b, t, d = x.shape
        idx = None if streams is None else torch.as_tensor(list(streams), device=x.device)
        expected = self.streams if idx is None else len(idx)
        if s != expected:
            raise ValueError(f"StackedTransformer: expected {expected} streams, found input of shape {tuple(x.shape)}")
        if query_index is not None and tuple(query_index.shape) != (s, b):
            raise ValueError(f"StackedTransformer: expected query_index of shape {(s, b)}, "
                             f"found {tuple(query_index.shape)}")

        def param(p: Tensor) -> Tensor:
            return p if idx is None else p.index_select(0, idx)

        h = self._embed(x).reshape(s, b * t, d)
        if source is None:
            k_in = v_in = None
            t_k = t
        else:
            t_k = source.shape[2]
            # the source is the same in every layer: standardise it once (each layer's LayerNorm
            # differs only in its affine part, folded into that layer's projection)
            # keys and values get their own embedding-dropout draws (MulT's code)
            scaled = self._scaled(source).reshape(s, b * t_k, d)
            k_in = _standardise(dropout(scaled, self.embed_dropout, self.training))
            v_in = (_standardise(dropout(scaled, self.embed_dropout, self.training))
                    if self.training and self.embed_dropout else k_in)
        mask = allowed_keys(t, t_k, self.causal, None if key_mask is None else key_mask.reshape(s * b, t_k))
        attn_p = self.attn_dropout if self.training else 0.0
        bias = _additive(mask, self.num_heads) if attn_p or self.causal else None
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last and query_index is not None:
                # only one query per sequence is read: the final layer computes that row alone
                rows = query_index.reshape(s * b)
                picked = h.view(s * b, t, d)[torch.arange(s * b, device=h.device), rows].view(s, b, d)
                kv = (_standardise(h),) * 2 if k_in is None else (k_in, v_in)
                mask = _mask_rows(mask, rows, s * b)
                bias = _additive(mask, self.num_heads) if attn_p or self.causal else None
                h = self._block(layer, picked, *kv, param, b, 1, t_k, mask, bias)
                return _norm(h, param(self.norm_w), param(self.norm_b))
            h = self._block(layer, h, k_in, v_in, param, b, t, t_k, mask, bias)
        return _norm(h, param(self.norm_w), param(self.norm_b)).reshape(s, b, t, d)

    def _block(self, layer: _Layer, h: Tensor, k_in: Tensor | None, v_in: Tensor | None, param, b: int, t: int,
               t_k: int, mask: Tensor | None, score_bias: Tensor | None) -> Tensor:
        """One pre-norm layer on ``h`` ``[S, B * t, d]``; keys from ``k_in``, values from ``v_in``,
        both already standardised (``None``: self-attention on ``h``)."""
        d = self.d_model
        nw, nb = param(layer.norm_attn_w), param(layer.norm_attn_b)
        w, w_b = param(layer.in_proj_w), param(layer.in_proj_b)
        h_hat = _standardise(h)
        if k_in is None:
            q, k, v = _norm_linear(h_hat, nw, nb, w, w_b).chunk(3, dim=-1)
        else:
            q = _norm_linear(h_hat, nw, nb, w[:, :d], w_b[:, :d])
            if v_in is k_in:
                k, v = _norm_linear(k_in, nw, nb, w[:, d:], w_b[:, d:]).chunk(2, dim=-1)
            else:
                k = _norm_linear(k_in, nw, nb, w[:, d : 2 * d], w_b[:, d : 2 * d])
                v = _norm_linear(v_in, nw, nb, w[:, 2 * d :], w_b[:, 2 * d :])
        q = rearrange(q, "s (b t) (h e) -> (s b) h t e", b=b, h=self.num_heads)
        k, v = (rearrange(z, "s (b t) (h e) -> (s b) h t e", b=b, h=self.num_heads) for z in (k, v))
        attn_p = self.attn_dropout if self.training else 0.0
        offset = abs(t_k - t) if self.causal and t > 1 else None  # t = 1: one picked row, its mask given
        o = _attention(q, k, v, mask, attn_p, score_bias, offset)
        o = rearrange(o, "(s b) h t e -> s (b t) (h e)", b=b)
        h = h + dropout(_linear(o, param(layer.out_proj_w), param(layer.out_proj_b)), self.dropout, self.training)
        f = _norm_linear(_standardise(h), param(layer.norm_ff_w), param(layer.norm_ff_b), param(layer.fc1_w),
                         param(layer.fc1_b))
        f = _linear(relu_dropout(f, self.dropout, self.training), param(layer.fc2_w), param(layer.fc2_b))
        return h + dropout(f, self.dropout, self.training)
