"""Behaviour of the baseline models and their fusion blocks against brute-force references."""

from __future__ import annotations

import itertools

import pytest
import torch

from robustfusion.batch import MultimodalBatch
from robustfusion.encoders.crossmodal import MulTEncoder
from robustfusion.fusion.low_rank import LowRankFusion
from robustfusion.fusion.tensor import TensorFusion, tensor_fusion
from robustfusion.masking import zero_fill_sequences
from robustfusion.models import create_model

DIMS = {"text": 6, "audio": 5, "vision": 4}


def _feats(b=3, dims=(2, 3, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f"m{i}": torch.randn(b, d, generator=g) for i, d in enumerate(dims)}


# ---------------------------------------------------------------- tensor fusion (TFN)
def test_tensor_fusion_matches_explicit_outer_product():
    f = _feats()
    present = torch.ones(3, 3, dtype=torch.bool)
    z = tensor_fusion(f, present).view(3, 3, 4, 5)
    a, b, c = (torch.cat([h, torch.ones(3, 1)], 1) for h in f.values())
    for n, i, j, k in itertools.product(range(3), range(3), range(4), range(5)):
        assert torch.isclose(z[n, i, j, k], a[n, i] * b[n, j] * c[n, k])


def test_tensor_fusion_keeps_unimodal_and_bimodal_terms():
    """The appended 1 keeps h_m itself and the pairwise products inside the tensor."""
    f = _feats()
    z = tensor_fusion(f, torch.ones(3, 3, dtype=torch.bool)).view(3, 3, 4, 5)
    h0, h1 = f["m0"], f["m1"]
    torch.testing.assert_close(z[:, :2, -1, -1], h0)
    torch.testing.assert_close(z[:, :2, :3, -1], torch.einsum("bi,bj->bij", h0, h1))
    torch.testing.assert_close(z[:, -1, -1, -1], torch.ones(3))


def test_tensor_fusion_absent_equals_zero_filled():
    f = _feats()
    present = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1]], dtype=torch.bool)
    zeroed = {k: v * present[:, i : i + 1] for i, (k, v) in enumerate(f.items())}
    torch.testing.assert_close(tensor_fusion(f, present), tensor_fusion(zeroed, torch.ones_like(present)))


def test_tensor_fusion_errors():
    with pytest.raises(ValueError, match="max_size"):
        TensorFusion([64] * 5)
    with pytest.raises(ValueError, match="num_modalities"):
        TensorFusion(8)
    with pytest.raises(ValueError, match="feature sizes"):
        TensorFusion([2, 3, 4])(_feats(dims=(2, 3, 5)), torch.ones(3, 3, dtype=torch.bool))


# ---------------------------------------------------------------- low-rank fusion (LMF)
def test_low_rank_fusion_equals_full_tensor_with_reconstructed_weight():
    """LMF == TFN with the weight tensor W = sum_r (x)_m w_m^(r) (LMF eq. 6)."""
    torch.manual_seed(0)
    lmf = LowRankFusion([2, 3, 4], out_dim=5, rank=3)
    f = _feats()
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1]], dtype=torch.bool)
    w0, w1, w2 = lmf.factors
    weight = torch.zeros(3, 4, 5, 5)  # [D0+1, D1+1, D2+1, out]
    for r in range(3):
        weight += lmf.rank_weights[0, r] * torch.einsum("io,jo,ko->ijko", w0[r], w1[r], w2[r])
    z = tensor_fusion(f, present)
    expected = z @ weight.reshape(-1, 5) + lmf.bias
    torch.testing.assert_close(lmf(f, present), expected, rtol=1e-4, atol=1e-5)


def test_low_rank_fusion_independent_of_absent_values():
    torch.manual_seed(0)
    lmf = LowRankFusion(3, num_modalities=3, out_dim=4, rank=2)
    f = _feats(dims=(3, 3, 3))
    present = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 1]], dtype=torch.bool)
    junk = {k: torch.where(present[:, i : i + 1], v, 1e3 * torch.randn_like(v)) for i, (k, v) in enumerate(f.items())}
    torch.testing.assert_close(lmf(f, present), lmf(junk, present))
    with pytest.raises(ValueError, match="rank"):
        LowRankFusion(3, num_modalities=2, rank=0)


# ---------------------------------------------------------------- crossmodal blocks (MulT)
def test_mult_encoder_ignores_masked_source_frames_and_absent_modalities():
    torch.manual_seed(0)
    enc = MulTEncoder({"a": 3, "b": 2, "c": 4}, d_model=8, num_heads=2, num_layers=2, dropout=0.0,
                      attn_dropout=0.0, embed_dropout=0.0, causal=True).eval()
    x = {"a": torch.randn(3, 5, 3), "b": torch.randn(3, 4, 2), "c": torch.randn(3, 6, 4)}
    present = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=torch.bool)
    frames = {"c": torch.tensor([[1, 1, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.bool)}
    ref = enc(x, present, frames)
    junk = {k: 100 * torch.randn_like(v) for k, v in x.items()}
    mixed = {"a": torch.where(present[:, 0, None, None], x["a"], junk["a"]),
             "b": torch.where(present[:, 1, None, None], x["b"], junk["b"]),
             "c": torch.where(frames["c"].unsqueeze(-1), x["c"], junk["c"])}
    torch.testing.assert_close(enc(mixed, present, frames), ref)
    assert torch.isfinite(ref).all()


def test_zero_fill_sequences_rule():
    x = {"a": torch.randn(2, 3, 2), "b": torch.randn(2, 4)}
    present = torch.tensor([[1, 0], [0, 1]], dtype=torch.bool)
    fm = {"a": torch.tensor([[1, 0, 1], [0, 0, 0]], dtype=torch.bool)}
    seqs, masks = zero_fill_sequences(x, present, fm)
    assert seqs["b"].shape == (2, 1, 4)
    torch.testing.assert_close(seqs["a"][0, 1], torch.zeros(2))
    torch.testing.assert_close(seqs["a"][1], torch.zeros(3, 2))
    assert masks["a"][1].all() and masks["a"][0].tolist() == [True, False, True]
    torch.testing.assert_close(seqs["b"][0], torch.zeros(1, 4))


@pytest.mark.parametrize("dims", [{"a": 3}, {"a": 3, "b": 2}, {"a": 3, "b": 2, "c": 4, "d": 1}])
def test_mult_encoder_any_number_of_modalities(dims):
    enc = MulTEncoder(dims, d_model=8, num_heads=2, num_layers=1)
    m = len(dims)
    assert enc.out_dim == m * max(m - 1, 1) * 8
    assert enc.num_crossmodal == m * (m - 1)
    x = {k: torch.randn(2, 3 + i, d) for i, (k, d) in enumerate(dims.items())}  # unaligned lengths
    out = enc(x, torch.ones(2, m, dtype=torch.bool))
    assert out.shape == (2, enc.out_dim) and torch.isfinite(out).all()


def test_mult_encoder_errors():
    with pytest.raises(ValueError, match="divisible"):
        MulTEncoder({"a": 3, "b": 2}, d_model=10, num_heads=4)
    with pytest.raises(ValueError, match="pooling"):
        MulTEncoder({"a": 3}, pooling="max")
    enc = MulTEncoder({"a": 3, "b": 2}, d_model=8, num_heads=2)
    with pytest.raises(ValueError, match="present"):
        enc({"a": torch.randn(2, 3), "b": torch.randn(2, 2)}, torch.ones(2, 3, dtype=torch.bool))


# ---------------------------------------------------------------- models: documented zero-fill rules
@pytest.mark.parametrize("name,kw", [("early_fusion", {}), ("mult", {"d_model": 8, "num_heads": 2, "num_layers": 1})])
def test_input_zero_fill_models_absent_equals_present_zeros(name, kw):
    """early_fusion / mult: an absent modality is read as an all-zero (fully observed) input."""
    torch.manual_seed(0)
    model = create_model(name, modality_dims=DIMS, **kw).eval()
    x = {m: torch.randn(3, 4, d) for m, d in DIMS.items()}
    present = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    a = model.predict(MultimodalBatch(x, present=present))
    zeroed = {m: x[m] * present[:, i].view(-1, 1, 1) for i, m in enumerate(DIMS)}
    b = model.predict(MultimodalBatch(zeroed))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["tfn", "lmf"])
def test_representation_zero_fill_models_match_fusion_of_zeroed_embeddings(name):
    torch.manual_seed(0)
    model = create_model(name, modality_dims=DIMS, hidden_dim=4).eval()
    batch = MultimodalBatch({m: torch.randn(3, 4, d) for m, d in DIMS.items()},
                            present=torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 1]], dtype=torch.bool))
    h = {m: enc(batch.inputs[m]) for m, enc in model.encoders.items()}
    zeroed = {m: h[m] * batch.present[:, i : i + 1] for i, m in enumerate(DIMS)}
    with torch.no_grad():
        torch.testing.assert_close(model.fuse(batch, batch.present), model.fusion(zeroed, torch.ones_like(batch.present)))


def test_tfn_hidden_dim_per_modality_and_errors():
    model = create_model("tfn", modality_dims=DIMS, hidden_dim={"text": 3, "audio": 2, "vision": 1})
    assert model.fusion.out_dim == 4 * 3 * 2
    with pytest.raises(ValueError, match="vision"):
        create_model("tfn", modality_dims=DIMS, hidden_dim={"text": 3, "audio": 2})


def test_early_fusion_aligned_and_unaligned_inputs():
    torch.manual_seed(0)
    model = create_model("early_fusion", modality_dims=DIMS, append_mask=True).eval()
    x = {m: torch.randn(2, 5, d) for m, d in DIMS.items()}
    fx, mask = model.fuse_inputs(MultimodalBatch(x), torch.ones(2, 3, dtype=torch.bool))
    assert fx.shape == (2, 5, 15 + 3) and mask.all()
    # unaligned lengths, default "pad": concatenated by frame index, padding unobserved
    x["audio"] = torch.randn(2, 7, 5)
    present = torch.tensor([[1, 1, 1], [1, 0, 1]], dtype=torch.bool)
    fx, mask = model.fuse_inputs(MultimodalBatch(x), present)
    assert fx.shape == (2, 7, 18)
    assert mask[0].tolist() == [True] * 7 and mask[1].tolist() == [True] * 5 + [False] * 2
    torch.testing.assert_close(fx[0, :, 6:11], x["audio"][0])
    torch.testing.assert_close(fx[0, 5:, :6], torch.zeros(2, 6))
    torch.testing.assert_close(fx[1, :, 6:11], torch.zeros(7, 5))
    torch.testing.assert_close(fx[:, 0, 15:], present.float())
    # "pool": utterance-level concatenation of mean-pooled sequences
    pooled = create_model("early_fusion", modality_dims=DIMS, unaligned="pool").eval()
    fx, mask = pooled.fuse_inputs(MultimodalBatch(x), torch.ones(2, 3, dtype=torch.bool))
    assert fx.shape == (2, 15) and mask is None
    torch.testing.assert_close(fx[:, 6:11], x["audio"].mean(1))
    for m in (model, pooled):
        assert torch.isfinite(m.predict(MultimodalBatch(x))).all()
    with pytest.raises(ValueError, match="unaligned"):
        create_model("early_fusion", modality_dims=DIMS, unaligned="crop")


def test_gmc_with_crossmodal_joint_encoder():
    torch.manual_seed(0)
    model = create_model("gmc", modality_dims=DIMS, hidden_dim=8, latent_dim=8, joint_encoder="crossmodal",
                         joint_kwargs={"d_model": 8, "num_heads": 2})
    batch = MultimodalBatch({m: torch.randn(4, 5, d) for m, d in DIMS.items()}, targets=torch.randn(4))
    out = model(batch)
    assert out.z_joint.shape == (4, 8) and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.joint_encoder.crossmodal.proj["text"].weight.grad is not None
