"""StackedTransformer against a plain, one-transformer-at-a-time reference written out here."""

import math

import pytest
import torch
import torch.nn.functional as F

from robustfusion.encoders.stacked_transformer import StackedTransformer, mult_positions


def _reference(model: StackedTransformer, s: int, x, source, key_mask):
    """Stream ``s`` of ``model`` as MulT writes it: LayerNorm with affine, Linear, explicit
    softmax attention over the allowed keys, ReLU feed-forward, one sequence at a time."""
    d, heads = model.d_model, model.num_heads
    e = d // heads

    def embed(z):
        return z * math.sqrt(d) + mult_positions(z.shape[0], d)

    out = []
    for b in range(x.shape[0]):
        h = embed(x[b])
        src = None if source is None else embed(source[b])
        t, t_k = h.shape[0], (h if src is None else src).shape[0]
        allowed = torch.ones(t, t_k, dtype=torch.bool)
        for i in range(t):
            for j in range(t_k):
                if model.causal and j > i + abs(t_k - t):
                    allowed[i, j] = False
                if key_mask is not None and not key_mask[b, j]:
                    allowed[i, j] = False
            if not allowed[i].any():  # no allowed key: every key the causal rule lets it see
                allowed[i] = torch.tensor([not model.causal or j <= i + abs(t_k - t) for j in range(t_k)])
        for layer in model.layers:
            norm = (d,), layer.norm_attn_w[s], layer.norm_attn_b[s]
            w, bias = layer.in_proj_w[s], layer.in_proj_b[s]
            kv = F.layer_norm(h if src is None else src, *norm)
            q = F.linear(F.layer_norm(h, *norm), w[:d], bias[:d])
            k = F.linear(kv, w[d : 2 * d], bias[d : 2 * d])
            v = F.linear(kv, w[2 * d :], bias[2 * d :])
            o = []
            for head in range(heads):
                sl = slice(head * e, (head + 1) * e)
                scores = (q[:, sl] @ k[:, sl].T) / math.sqrt(e)
                o.append(scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v[:, sl])
            h = h + F.linear(torch.cat(o, -1), layer.out_proj_w[s], layer.out_proj_b[s])
            f = F.layer_norm(h, (d,), layer.norm_ff_w[s], layer.norm_ff_b[s])
            f = F.linear(F.relu(F.linear(f, layer.fc1_w[s], layer.fc1_b[s])), layer.fc2_w[s], layer.fc2_b[s])
            h = h + f
        out.append(F.layer_norm(h, (d,), model.norm_w[s], model.norm_b[s]))
    return torch.stack(out)


def _perturbed(model):
    """Non-trivial LayerNorm affines and biases (initialised to 1 and 0)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("_b"):
                p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("attn_dropout", [0.0, 1e-9])  # 1e-9: the written-out attention, dropping nothing
@pytest.mark.parametrize("crossmodal", [False, True])
def test_matches_per_stream_reference_forward_and_backward(causal, attn_dropout, crossmodal):
    torch.manual_seed(0)
    model = _perturbed(StackedTransformer(3, 12, 3, 2, dropout=0.0, attn_dropout=attn_dropout, causal=causal))
    model.train()
    x = torch.randn(3, 2, 7, 12, requires_grad=True)
    source = torch.randn(3, 2, 9, 12, requires_grad=True) if crossmodal else None
    t_k = 9 if crossmodal else 7
    key_mask = torch.rand(3, 2, t_k) > 0.4
    key_mask[1, 0] = False  # a sequence with no observed key
    key_mask[2, 1, 0] = False  # the first query of a causal stream sees no observed key
    out = model(x, source, key_mask)
    ref = torch.stack([_reference(model, s, x[s], None if source is None else source[s], key_mask[s]) for s in range(3)])
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    weights = torch.randn_like(out)
    inputs = [x] + ([source] if crossmodal else []) + list(model.parameters())
    grads = torch.autograd.grad((out * weights).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * weights).sum(), inputs)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_query_index_computes_only_the_asked_rows(causal):
    torch.manual_seed(1)
    model = _perturbed(StackedTransformer(2, 8, 2, 3, dropout=0.0, causal=causal)).eval()
    x, key_mask = torch.randn(2, 4, 11, 8), torch.rand(2, 4, 11) > 0.3
    rows = torch.randint(0, 11, (2, 4))
    full = model(x, key_mask=key_mask)
    picked = model(x, key_mask=key_mask, query_index=rows)
    assert picked.shape == (2, 4, 8)
    torch.testing.assert_close(picked, full.gather(2, rows[..., None, None].expand(-1, -1, 1, 8)).squeeze(2))
    with pytest.raises(ValueError, match="query_index"):
        model(x, query_index=rows[:, :3])


def test_streams_keep_their_own_parameters_and_masks_hide_values():
    torch.manual_seed(2)
    model = _perturbed(StackedTransformer(3, 8, 2, 2, dropout=0.0)).eval()
    x, source = torch.randn(3, 2, 5, 8), torch.randn(3, 2, 6, 8)
    key_mask = torch.rand(3, 2, 6) > 0.5
    both = model(x, source, key_mask)
    alone = model(x[1:2], source[1:2], key_mask[1:2], streams=[1])
    torch.testing.assert_close(alone[0], both[1])
    junk = torch.where(key_mask.unsqueeze(-1), source, 100 * torch.randn_like(source))
    torch.testing.assert_close(model(x, junk, key_mask), both)
    with pytest.raises(ValueError, match="expected 3 streams"):
        model(x[:2], source[:2])
    with pytest.raises(ValueError, match="divisible"):
        StackedTransformer(2, 10, 4, 1)


def test_training_draws_dropout_and_eval_does_not():
    torch.manual_seed(3)
    model = StackedTransformer(2, 8, 2, 2, dropout=0.3, attn_dropout=0.2, embed_dropout=0.25, causal=True)
    x, source = torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8)
    model.eval()
    torch.testing.assert_close(model(x, source), model(x, source))
    model.train()
    a, b = model(x, source), model(x, source)
    assert not torch.allclose(a, b) and torch.isfinite(a).all()
