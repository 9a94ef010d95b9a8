"""Contract tests over every registered encoder and joint encoder (as timm's tests/test_models.py).

Every name in ``robustfusion.encoders.list_encoders()`` and ``JOINT_ENCODERS`` -- collected at
import time, so a newly registered encoder is covered automatically -- is built with small sizes
and must: give finite ``[B, out_dim]`` outputs that do not change when unobserved frames (and,
for joint encoders, absent modalities) hold junk (NaN, +-inf, huge values); let no gradient reach
unobserved frames; encode every sequence with no observed frame to the same finite vector; treat
an all-True frame mask as no mask; and, with a context port, treat ``context=None`` as zeros.

Inputs: feature encoders get ``[B, T, D]`` features; ``timm_frames`` gets raw frames
``[B, T, C, H, W]`` (32x32 RGB) and timm's tiny ``test_resnet`` (random weights, no download).
The sentence-transformers text encoder (:mod:`robustfusion.encoders.text`) takes strings and is not
in the registry, so it is not covered here (``tests/encoders/test_text.py`` tests it).
"""

from __future__ import annotations

import pytest
import torch

from robustfusion.batch import MultimodalBatch
from robustfusion.dropping import all_subsets
from robustfusion.encoders import (
    CONTEXT_MODES,
    JOINT_ENCODERS,
    create_encoder,
    create_joint_encoder,
    list_encoders,
)
from tests.encoders.masks import OUT, B, D, K, T, frame_mask

ENCODERS = list_encoders()
JOINTS = JOINT_ENCODERS.names()

# Small sizes for encoders we know; other registered encoders are built with their defaults.
SMALL_KWARGS: dict[str, dict] = {
    "gru": {"hidden_dim": 8},
    "mlp": {"hidden_dim": 8, "dropout": 0.0},
    "transformer": {"d_model": 8, "num_heads": 2, "num_layers": 1, "dim_feedforward": 16, "dropout": 0.0},
    "timm_frames": {"model_name": "test_resnet"},
}
RAW_FRAMES = {"timm_frames"}  # encoders that read [B, T, C, H, W] frames; in_dim = channels
JOINT_SMALL_KWARGS: dict[str, dict] = {
    "concat": {"encoder": "gru", "encoder_kwargs": {"hidden_dim": 8}},
    "crossmodal": {"d_model": 8, "num_heads": 2},
}
JUNK = ("nan", "inf", "-inf", "huge")


def build(name: str, context_dim: int = 0, context_mode: str = "add"):
    if name == "timm_frames":
        pytest.importorskip("timm", reason="timm_frames needs timm")
    torch.manual_seed(0)
    ctx = {"context_dim": context_dim, "context_mode": context_mode} if context_dim else {}
    in_dim = 3 if name in RAW_FRAMES else D
    return create_encoder(name, in_dim=in_dim, out_dim=OUT, **ctx, **SMALL_KWARGS.get(name, {})).eval()


def inputs(name: str, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (B, T, 3, 32, 32) if name in RAW_FRAMES else (B, T, D)
    return torch.randn(shape, generator=g)


def fill(x: torch.Tensor, keep: torch.Tensor, kind: str, seed: int = 1) -> torch.Tensor:
    """``x`` where ``keep`` (broadcast over trailing axes), junk of ``kind`` elsewhere."""
    keep = keep.view(*keep.shape, *([1] * (x.dim() - keep.dim())))
    if kind == "huge":
        junk = 1e30 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    else:
        junk = torch.full_like(x, float(kind))
    return torch.where(keep, x, junk)


def context() -> torch.Tensor:
    return torch.randn(B, K, generator=torch.Generator().manual_seed(2))


# ------------------------------------------------------------------ per-modality encoders
@pytest.mark.parametrize("mode", ["no-port", *CONTEXT_MODES])
@pytest.mark.parametrize("name", ENCODERS)
def test_junk_in_unobserved_frames_changes_nothing(name: str, mode: str):
    enc = build(name, *((0,) if mode == "no-port" else (K, mode)))
    x, mask = inputs(name), frame_mask()
    c = None if mode == "no-port" else context()
    with torch.no_grad():
        ref = enc(x, mask, c)
        assert ref.shape == (B, OUT) and bool(torch.isfinite(ref).all()), f"{name}: {ref}"
        for kind in JUNK:
            where = f"{name} {kind}"
            torch.testing.assert_close(enc(fill(x, mask, kind), mask, c), ref, msg=lambda s, w=where: f"{w}: {s}")


@pytest.mark.parametrize("name", ENCODERS)
def test_no_gradient_reaches_unobserved_frames(name: str):
    enc = build(name, K)
    mask = frame_mask()
    x = fill(inputs(name), mask, "nan").requires_grad_(True)
    c = context().requires_grad_(True)
    enc(x, mask, c).sum().backward()
    unobserved = (~mask).view(B, T, *([1] * (x.dim() - 2))).expand_as(x)
    assert bool(torch.isfinite(x.grad).all()) and bool(torch.isfinite(c.grad).all()), name
    assert torch.equal(x.grad[unobserved], torch.zeros_like(x.grad[unobserved])), name
    assert bool(x.grad[mask].abs().sum() > 0), f"{name}: observed frames get no gradient"


@pytest.mark.parametrize("name", ENCODERS)
def test_sequences_with_no_observed_frame_encode_alike(name: str):
    enc = build(name)
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[0] = True
    with torch.no_grad():
        out = enc(fill(inputs(name), mask, "nan"), mask)
    assert bool(torch.isfinite(out).all()), name
    torch.testing.assert_close(out[1:], out[1:2].expand(B - 1, -1))  # they see nothing


@pytest.mark.parametrize("name", ENCODERS)
def test_all_true_mask_equals_no_mask(name: str):
    enc = build(name)
    x = inputs(name)
    with torch.no_grad():
        torch.testing.assert_close(enc(x, torch.ones(B, T, dtype=torch.bool)), enc(x, None))


@pytest.mark.parametrize("mode", CONTEXT_MODES)
@pytest.mark.parametrize("name", ENCODERS)
def test_context_none_equals_zero_context(name: str, mode: str):
    enc = build(name, K, mode)
    x, mask = inputs(name), frame_mask()
    with torch.no_grad():
        torch.testing.assert_close(enc(x, mask, None), enc(x, mask, torch.zeros(B, K)))


# ------------------------------------------------------------------ joint encoders
JOINT_DIMS = {"text": 5, "audio": 3, "vision": 4}


def joint_batch(seed: int = 0) -> MultimodalBatch:
    """One row per modality subset plus an all-absent row; audio is an utterance vector
    ``[B, D]``, text and vision are sequences with unobserved frames."""
    subsets = all_subsets(JOINT_DIMS)
    present = torch.tensor([[m in s for m in JOINT_DIMS] for s in subsets] + [[False] * len(JOINT_DIMS)])
    b = present.shape[0]
    g = torch.Generator().manual_seed(seed)
    inputs = {"text": torch.randn(b, T, 5, generator=g), "audio": torch.randn(b, 3, generator=g),
              "vision": torch.randn(b, T + 2, 4, generator=g)}
    fm = {m: torch.rand(b, inputs[m].shape[1], generator=g) > 0.4 for m in ("text", "vision")}
    for v in fm.values():
        v[:, 0] = True
    return MultimodalBatch(inputs, present=present, frame_masks=fm)


def build_joint(name: str):
    torch.manual_seed(0)
    return create_joint_encoder(name, modality_dims=JOINT_DIMS, out_dim=OUT, **JOINT_SMALL_KWARGS.get(name, {})).eval()


@pytest.mark.parametrize("name", JOINTS)
def test_joint_junk_in_absent_modalities_and_unobserved_frames_changes_nothing(name: str):
    joint = build_joint(name)
    batch = joint_batch()
    with torch.no_grad():
        ref = joint(batch)
        assert ref.shape == (len(batch), OUT) and bool(torch.isfinite(ref).all()), name
        for kind in JUNK:
            dirty = {}
            for i, (m, x) in enumerate(batch.inputs.items()):
                keep = batch.present[:, i].view(-1, *([1] * (x.dim() - 1))).expand_as(x)
                fm = batch.frame_mask(m)
                if fm is not None:
                    keep = keep & fm.unsqueeze(-1)
                dirty[m] = fill(x, keep, kind)
            out = joint(MultimodalBatch(dirty, present=batch.present, frame_masks=batch.frame_masks, validate=False))
            where = f"{name} {kind}"
            torch.testing.assert_close(out, ref, msg=lambda s, w=where: f"{w}: {s}")
