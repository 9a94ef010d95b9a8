"""Raw video frames ``[B, T, C, H, W]`` travel in a MultimodalBatch and through a model whose
vision encoder is a timm backbone (random weights, no download)."""

from __future__ import annotations

import pytest
import torch

from robustfusion import MultimodalBatch, create_model
from robustfusion.dropping import drop_frames, protocol_generator
from robustfusion.encoders import create_encoder

pytest.importorskip("timm", reason="timm (a dependency) does not import here")


def _model():
    torch.manual_seed(0)
    encoders = {"text": create_encoder("gru", in_dim=6, out_dim=8),
                "vision": create_encoder("timm_frames", in_dim=3, out_dim=8, model_name="test_resnet")}
    return create_model("late_fusion", modality_dims={"text": 6, "vision": 3}, hidden_dim=8, encoders=encoders)


def _batch(b=2, t=3):
    g = torch.Generator().manual_seed(1)
    return MultimodalBatch({"text": torch.randn(b, 4, 6, generator=g),
                            "vision": torch.rand(b, t, 3, 32, 32, generator=g)}, targets=torch.randn(b))


def test_late_fusion_with_a_timm_frame_encoder_trains_and_drops_frames():
    model = _model()
    batch = _batch()
    out = model(batch)
    out.loss.backward()
    assert out.prediction.shape == (2, 1) and torch.isfinite(out.loss)
    gens = {"vision": protocol_generator(0, "frame_rate", 0.5, "vision"), "text": protocol_generator(0, "frame_rate", 0.5, "text")}
    dropped = drop_frames(batch, 0.5, gens)
    assert dropped.frame_mask("vision").shape == (2, 3)
    model.eval()
    with torch.no_grad():
        ref = model(dropped).prediction
        junk = dropped.inputs["vision"].clone()
        junk[~dropped.frame_mask("vision")] = 1e3  # what unobserved frames hold must not matter
        again = model(dropped.replace(inputs={**dropped.inputs, "vision": junk})).prediction
    torch.testing.assert_close(ref, again)


def test_channel_count_is_checked_for_raw_frames():
    model = _model()
    bad = MultimodalBatch({"text": torch.randn(1, 4, 6), "vision": torch.rand(1, 2, 1, 32, 32)})
    try:
        model(bad)
    except ValueError as err:
        assert "channel count 3, found 1" in str(err)
    else:
        raise AssertionError("a wrong channel count was accepted")
