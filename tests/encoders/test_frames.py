"""TimmFrameEncoder ("timm_frames"): per-frame timm backbone with masked temporal pooling.

Uses timm's tiny ``test_resnet`` / ``test_vit`` architectures (random weights, nothing downloads).
"""

from __future__ import annotations

import pytest
import torch

from robustfusion.encoders import create_encoder
from robustfusion.encoders.frames import TimmFrameEncoder, create_timm_backbone

pytest.importorskip("timm", reason="timm (a dependency) does not import here")


def _frames(b=2, t=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 3, 32, 32, generator=g)


def _enc(**kw):
    torch.manual_seed(0)
    return create_encoder("timm_frames", in_dim=3, model_name="test_resnet", **kw).eval()


def test_output_is_masked_mean_of_per_frame_features():
    enc = _enc()
    x = _frames()
    mask = torch.tensor([[1, 0, 1], [0, 1, 0]], dtype=torch.bool)
    out = enc(x, mask)
    assert out.shape == (2, enc.backbone.num_features) and enc.out_dim == enc.backbone.num_features
    with torch.no_grad():
        ref0 = enc.backbone(x[0, [0, 2]]).mean(0)
        ref1 = enc.backbone(x[1, [1]])[0]
    torch.testing.assert_close(out[0], ref0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out[1], ref1, rtol=1e-4, atol=1e-5)


def test_unobserved_frames_do_not_matter_and_empty_sequence_is_zero():
    enc = _enc(out_dim=6, pooling="last")
    x = _frames()
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    junk = torch.where(mask.view(2, 3, 1, 1, 1), x, 100 * torch.randn_like(x))
    out = enc(x, mask)
    torch.testing.assert_close(enc(junk, mask), out)
    torch.testing.assert_close(out[1], enc.proj(torch.zeros(enc.feature_dim)))


def test_single_frame_input_chunking_and_gradients():
    enc = _enc(out_dim=4, chunk_size=2).train()
    x = _frames(b=3, t=2)
    out = enc(x)
    out.sum().backward()
    assert all(p.grad is not None for p in enc.backbone.parameters() if p.requires_grad)
    enc.eval()
    torch.testing.assert_close(enc(x[:, 0]), enc(x[:, :1]))
    unchunked = _enc(out_dim=4)
    unchunked.load_state_dict(enc.state_dict())
    torch.testing.assert_close(unchunked(x), enc(x), rtol=1e-4, atol=1e-5)


def test_freeze_keeps_backbone_frozen_and_in_eval_mode():
    enc = _enc(out_dim=4, freeze=True).train()
    assert not enc.backbone.training and enc.proj.training
    enc(_frames()).sum().backward()
    assert all(p.grad is None for p in enc.backbone.parameters())
    assert enc.proj.weight.grad is not None


def test_features_only_uses_last_feature_map():
    torch.manual_seed(0)
    enc = TimmFrameEncoder(3, None, model_name="test_vit", features_only=True, img_size=32).eval()
    x = _frames(t=2)
    with torch.no_grad():
        fmap = enc.backbone.forward_intermediates(x[:, 0], indices=1, intermediates_only=True)[-1]
    out = enc(x, torch.tensor([[1, 0], [1, 0]], dtype=torch.bool))
    torch.testing.assert_close(out, fmap.mean(dim=(-2, -1)), rtol=1e-4, atol=1e-5)


def test_context_port():
    enc = _enc(out_dim=4, context_dim=3)
    x = _frames()
    torch.testing.assert_close(enc(x, context=torch.zeros(2, 3)), enc(x))
    assert enc(x, context=torch.randn(2, 3)).shape == (2, 4)


@pytest.mark.parametrize("fmt", ["safetensors", "pth", "wrapped"])
def test_local_checkpoint_roundtrip_drops_classifier(tmp_path, fmt):
    torch.manual_seed(1)
    source = create_timm_backbone("test_resnet", num_classes=10)  # checkpoint with a classifier
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    path = tmp_path / ("w.safetensors" if fmt == "safetensors" else "w.pth")
    if fmt == "safetensors":
        from safetensors.torch import save_file
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state} if fmt == "wrapped" else state, path)
    enc = _enc(checkpoint_path=path)
    for k, v in enc.backbone.state_dict().items():
        torch.testing.assert_close(v, state[k])


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing at"):
        _enc(checkpoint_path=tmp_path / "missing.pth")
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        _enc(checkpoint_path=bad)
    other = tmp_path / "vit.pth"
    torch.save(create_timm_backbone("test_vit").state_dict(), other)
    with pytest.raises(ValueError, match="does not match"):
        _enc(checkpoint_path=other)


def test_unknown_name_pretrained_and_bad_input_errors():
    with pytest.raises(ValueError, match="unknown timm model.*resnet18"):
        create_encoder("timm_frames", in_dim=3, model_name="resnet_18")
    with pytest.raises(ValueError, match="download"):
        create_encoder("timm_frames", in_dim=3, model_name="test_resnet", pretrained=True)
    enc = _enc()
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        enc(torch.randn(2, 3, 1, 32, 32))
    with pytest.raises(ValueError, match="frame mask"):
        enc(_frames(), torch.ones(2, 4, dtype=torch.bool))
