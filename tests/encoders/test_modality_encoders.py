"""Modality base encoders: shapes, frame-mask honouring, the context port, the registry."""

from __future__ import annotations

import pytest
import torch

from robustfusion.encoders import (
    CONTEXT_MODES,
    ContextInjection,
    GRUEncoder,
    MLPEncoder,
    ModalityEncoder,
    TransformerEncoder,
    create_encoder,
    list_encoders,
    masked_last,
    masked_mean,
)
from tests.encoders.masks import OUT, B, D, K, T, frame_mask

# name -> (registry name, extra kwargs); every configuration below is checked by every test
CONFIGS = {
    "mlp": ("mlp", {"hidden_dim": 16, "dropout": 0.0}),
    "gru-mean": ("gru", {"hidden_dim": 8, "pooling": "mean"}),
    "gru-last": ("gru", {"hidden_dim": 8, "pooling": "last"}),
    "gru-flatten": ("gru", {"hidden_dim": 8, "pooling": "flatten", "seq_len": T}),
    "transformer": ("transformer", {"d_model": 16, "num_heads": 2, "num_layers": 1, "dim_feedforward": 32,
                                    "dropout": 0.0}),
}


def build(config: str, context_dim: int = 0, context_mode: str = "add", seed: int = 0) -> ModalityEncoder:
    name, kwargs = CONFIGS[config]
    torch.manual_seed(seed)
    enc = create_encoder(name, in_dim=D, out_dim=OUT, context_dim=context_dim, context_mode=context_mode, **kwargs)
    return enc.eval()


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(B, T, D, generator=torch.Generator().manual_seed(seed))


def test_registry_lists_the_three_encoders():
    assert {"mlp", "gru", "transformer"} <= set(list_encoders())
    assert isinstance(create_encoder("gru", in_dim=D, out_dim=OUT), GRUEncoder)
    assert isinstance(create_encoder("mlp", in_dim=D, out_dim=OUT), MLPEncoder)
    assert isinstance(create_encoder("transformer", in_dim=D, out_dim=OUT), TransformerEncoder)
    with pytest.raises(KeyError, match=r"unknown encoder 'lstm'.*registered: \[.*'gru'"):
        create_encoder("lstm", in_dim=D, out_dim=OUT)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_maps_sequences_and_vectors_to_fixed_size(config):
    enc = build(config)
    assert (enc.in_dim, enc.out_dim, enc.context_dim) == (D, OUT, 0)
    out = enc(_x())
    assert out.shape == (B, OUT) and bool(torch.isfinite(out).all())
    if config != "gru-flatten":  # flatten needs exactly seq_len frames
        v = enc(torch.randn(B, D))
        assert v.shape == (B, OUT) and bool(torch.isfinite(v).all())
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad and p.grad is not None)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_output_ignores_values_in_unobserved_frames(config):
    enc = build(config)
    x, mask = _x(), frame_mask()
    clean = enc(x, mask)
    for junk in (1e4 * torch.randn(B, T, D), torch.full((B, T, D), float("nan")), torch.full((B, T, D), float("-inf"))):
        dirty = torch.where(mask.unsqueeze(-1), x, junk)
        torch.testing.assert_close(enc(dirty, mask), clean)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_zero_observed_frames_give_finite_output_and_gradients(config):
    enc = build(config)
    x = _x().requires_grad_(True)
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[0] = True  # one normal sample, the rest empty
    out = enc(x, mask)
    assert bool(torch.isfinite(out).all())
    # every empty sample encodes to the same vector (it sees no data)
    torch.testing.assert_close(out[1:], out[1:2].expand(B - 1, -1))
    out.sum().backward()
    assert bool(torch.isfinite(x.grad).all())
    assert torch.equal(x.grad[1:], torch.zeros_like(x.grad[1:]))


@pytest.mark.parametrize("config", list(CONFIGS))
def test_all_true_mask_equals_no_mask(config):
    enc = build(config)
    x = _x()
    torch.testing.assert_close(enc(x, torch.ones(B, T, dtype=torch.bool)), enc(x))


@pytest.mark.parametrize("config", ["mlp", "gru-mean", "gru-last", "transformer"])
def test_padding_at_the_end_equals_the_shorter_sequence(config):
    """Mean/last pooling over observed frames only: a padded sequence encodes like its prefix
    (GRU and Transformer process frames causally/with key masking, so the prefix is unaffected)."""
    enc = build(config)
    x = _x()
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[:, 4:] = False
    torch.testing.assert_close(enc(x, mask), enc(x[:, :4]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_wrong_frame_mask_shape_raises(config):
    enc = build(config)
    with pytest.raises(ValueError, match=r"frame mask.*expected shape \(5, 6\).*found \(5, 5\)"):
        enc(_x(), torch.ones(B, T - 1, dtype=torch.bool))


def test_encoder_specific_errors():
    with pytest.raises(ValueError, match="pooling.*found 'max'"):
        GRUEncoder(D, OUT, pooling="max")
    with pytest.raises(ValueError, match="flatten.*seq_len"):
        GRUEncoder(D, OUT, pooling="flatten")
    with pytest.raises(ValueError, match=r"expected T=6 frames, found 5"):
        build("gru-flatten")(_x()[:, :5])
    with pytest.raises(ValueError, match=r"max_len=4 frames, found 6"):
        TransformerEncoder(D, OUT, d_model=8, num_heads=2, max_len=4)(_x())
    with pytest.raises(ValueError, match=r"context mode.*found 'mul'"):
        ContextInjection(D, K, "mul")


# --------------------------------------------------------------------------- context port
def _copy_without_context(plain: torch.nn.Module, with_ctx: torch.nn.Module) -> None:
    """Load ``plain``'s weights into ``with_ctx``; where the context widens a weight (concat mode),
    the extra input columns keep their own values (a zero context never reaches them)."""
    state = with_ctx.state_dict()
    for key, value in plain.state_dict().items():
        target = state[key]
        if target.shape == value.shape:
            state[key] = value.clone()
        else:
            assert target.shape[:-1] == value.shape[:-1] and target.shape[-1] == value.shape[-1] + K, key
            target[..., : value.shape[-1]] = value
    with_ctx.load_state_dict(state)


@pytest.mark.parametrize("mode", CONTEXT_MODES)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_context_none_equals_zeros_equals_no_context_port(config, mode):
    plain = build(config, seed=1)
    enc = build(config, context_dim=K, context_mode=mode, seed=2)
    assert enc.context_dim == K
    _copy_without_context(plain, enc)
    x, mask = _x(), frame_mask()
    reference = plain(x, mask)
    torch.testing.assert_close(enc(x, mask, None), reference)
    torch.testing.assert_close(enc(x, mask, torch.zeros(B, K)), reference)
    # and a non-zero context does change the output
    c = torch.randn(B, K, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(enc(x, mask, c), reference, atol=1e-4)


@pytest.mark.parametrize("mode", CONTEXT_MODES)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_context_gets_gradient_and_ignores_unobserved_junk(config, mode):
    enc = build(config, context_dim=K, context_mode=mode)
    x, mask = _x(), frame_mask()
    c = torch.randn(B, K, requires_grad=True)
    out = enc(x, mask, c)
    out[:4].sum().backward()
    assert c.grad is not None and bool(torch.isfinite(c.grad).all()) and c.grad.abs().sum() > 0
    junk = torch.where(mask.unsqueeze(-1), x, torch.full_like(x, float("nan")))
    torch.testing.assert_close(enc(junk, mask, c.detach()), out.detach())


@pytest.mark.parametrize("mode", CONTEXT_MODES)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_wrong_context_shape_raises(config, mode):
    enc = build(config, context_dim=K, context_mode=mode)
    with pytest.raises(ValueError, match=r"context: expected shape \(5, 3\), found \(5, 2\)"):
        enc(_x(), None, torch.zeros(B, K - 1))
    with pytest.raises(ValueError, match=r"context: expected shape \(5, 3\), found \(4, 3\)"):
        enc(_x(), None, torch.zeros(B - 1, K))
    with pytest.raises(ValueError, match="context_dim=0"):
        build(config)(_x(), None, torch.zeros(B, K))


@pytest.mark.parametrize("mode", CONTEXT_MODES)
def test_context_injection_formulas(mode):
    inj = ContextInjection(D, K, mode)
    x, c = torch.randn(B, T, D), torch.randn(B, K)
    out = inj(x, c)
    assert out.shape == (B, T, inj.out_dim)
    c_t = c.unsqueeze(1).expand(B, T, K)
    if mode == "concat":
        assert inj.out_dim == D + K
        torch.testing.assert_close(out, torch.cat([x, c_t], dim=-1))
    elif mode == "add":
        torch.testing.assert_close(out, x + c_t @ inj.proj.weight.T)
    else:
        gate = torch.sigmoid(torch.cat([x, c_t], dim=-1) @ inj.gate.weight.T + inj.gate.bias)
        torch.testing.assert_close(out, x + gate * (c_t @ inj.proj.weight.T))
    assert ContextInjection(D, 0, mode)(x, None) is x


# --------------------------------------------------------------------------- pooling helpers
def test_masked_pooling_by_hand():
    h = torch.arange(2 * 4 * 2, dtype=torch.float32).reshape(2, 4, 2)
    mask = torch.tensor([[True, False, True, False], [False, False, False, False]])
    torch.testing.assert_close(masked_mean(h, mask), torch.stack([(h[0, 0] + h[0, 2]) / 2, torch.zeros(2)]))
    torch.testing.assert_close(masked_last(h, mask), torch.stack([h[0, 2], torch.zeros(2)]))
    torch.testing.assert_close(masked_mean(h, None), h.mean(dim=1))
    torch.testing.assert_close(masked_last(h, None), h[:, -1])


@pytest.mark.parametrize(("name", "kwargs"), [("mlp", {"layers": -1}), ("mlp", {"hidden_dim": 0}),
                                              ("gru", {"num_layers": 0}), ("transformer", {"num_heads": 0})])
def test_sizes_below_their_minimum_are_refused(name, kwargs):
    key, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=rf"encoder '{name}': {key}: expected a size >= \d, found {value}"):
        create_encoder(name, in_dim=D, out_dim=OUT, **kwargs)
