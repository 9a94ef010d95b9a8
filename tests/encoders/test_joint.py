"""Joint encoder: all present modalities -> h_joint, independent of absent modalities' values."""

from __future__ import annotations

import pytest
import torch

from robustfusion import MultimodalBatch
from robustfusion.dropping import all_subsets
from robustfusion.encoders import ConcatJointEncoder, create_joint_encoder

DIMS = {"text": 5, "audio": 3, "vision": 4}
B, T, OUT = 7, 6, 8


def _batch(present=None, frame_masks=None, seed: int = 0, validate: bool = True, **overrides) -> MultimodalBatch:
    g = torch.Generator().manual_seed(seed)
    inputs = {"text": torch.randn(B, T, 5, generator=g), "audio": torch.randn(B, 3, generator=g),
              "vision": torch.randn(B, T, 4, generator=g)}
    inputs.update(overrides)
    return MultimodalBatch(inputs, present=present, frame_masks=frame_masks, validate=validate)


@pytest.mark.parametrize("encoder", ["gru", "mlp", "transformer"])
def test_joint_output_shape_and_independence_of_absent_values(encoder):
    torch.manual_seed(0)
    kwargs = {"encoder_kwargs": {"num_heads": 2, "d_model": 8}} if encoder == "transformer" else {}
    joint = create_joint_encoder("concat", modality_dims=DIMS, out_dim=OUT, encoder=encoder, **kwargs).eval()
    assert isinstance(joint, ConcatJointEncoder) and joint.out_dim == OUT
    subsets = all_subsets(DIMS)
    present = torch.tensor([[m in subsets[i % len(subsets)] for m in DIMS] for i in range(B)])
    clean = _batch(present)
    out = joint(clean)
    assert out.shape == (B, OUT) and bool(torch.isfinite(out).all())
    g = torch.Generator().manual_seed(1)
    for fill in ("large", "nan"):
        junk = {}
        for i, (m, x) in enumerate(clean.inputs.items()):
            rows = (~present[:, i]).view(-1, *([1] * (x.dim() - 1)))
            noise = 1e3 * torch.randn(x.shape, generator=g) if fill == "large" else torch.full_like(x, float("nan"))
            junk[m] = torch.where(rows, noise, x)
        dirty = MultimodalBatch(junk, present=present, validate=False)
        torch.testing.assert_close(joint(dirty), out)
    # a present modality's values do matter
    changed = _batch(present, seed=0, text=clean.inputs["text"] + 1.0)
    has_text = present[:, 0]
    assert not torch.allclose(joint(changed)[has_text], out[has_text])
    torch.testing.assert_close(joint(changed)[~has_text], out[~has_text])


def test_joint_honours_frame_masks_and_all_absent_is_finite():
    torch.manual_seed(0)
    joint = create_joint_encoder("concat", modality_dims=DIMS, out_dim=OUT).eval()
    fm = torch.ones(B, T, dtype=torch.bool)
    fm[:, 3:] = False
    batch = _batch(frame_masks={"text": fm})
    junk = batch.inputs["text"].clone()
    junk[:, 3:] = 1e4
    dirty = MultimodalBatch(dict(batch.inputs, text=junk), frame_masks={"text": fm})
    torch.testing.assert_close(joint(dirty), joint(batch))
    none = joint(_batch(torch.zeros(B, 3, dtype=torch.bool)))
    assert bool(torch.isfinite(none).all())
    torch.testing.assert_close(none, none[:1].expand(B, -1))  # sees nothing: one constant vector


def test_joint_reads_modalities_by_name_not_position():
    torch.manual_seed(0)
    joint = create_joint_encoder("concat", modality_dims=DIMS, out_dim=OUT).eval()
    batch = _batch(torch.tensor([[True, False, True]] * B))
    reordered = MultimodalBatch({m: batch.inputs[m] for m in ("vision", "audio", "text")},
                                present={"audio": torch.zeros(B, dtype=torch.bool)})
    torch.testing.assert_close(joint(reordered), joint(batch))


def test_unknown_joint_encoder_lists_registered_names():
    with pytest.raises(KeyError, match=r"unknown joint encoder 'attention'.*'concat'"):
        create_joint_encoder("attention", modality_dims=DIMS, out_dim=OUT)


def test_concat_joint_mlp_is_the_concat_fusion_layer():
    """The joint encoder inlines the zero-fill MLP (encoders do not import fusion): same
    parameter names and the same output as ConcatFusion(append_mask=True) with the same weights."""
    from robustfusion.encoders.joint import ConcatMLP
    from robustfusion.fusion import ConcatFusion

    torch.manual_seed(0)
    mlp = ConcatMLP(4, 3, out_dim=5).eval()
    torch.manual_seed(0)
    fusion = ConcatFusion(4, 3, out_dim=5).eval()
    assert list(mlp.state_dict()) == list(fusion.state_dict())
    for k, v in mlp.state_dict().items():
        assert torch.equal(v, fusion.state_dict()[k])
    feats = {m: torch.randn(4, 4) for m in DIMS}
    present = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=torch.bool)
    torch.testing.assert_close(mlp(feats, present), fusion(feats, present))
