"""Mask-aware fusion layers: mean of present modalities and zero-filled concatenation."""

from __future__ import annotations

import pytest
import torch

from robustfusion.fusion import (
    ConcatFusion,
    MeanOfPresent,
    create_fusion,
    list_fusions,
    mean_of_present,
)

B, H = 6, 4


def _features(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(B, H, generator=g) for m in ("text", "audio", "vision")}


PRESENT = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 1], [0, 0, 1]], dtype=torch.bool)


def _with_junk(features, present, fill):
    return {m: torch.where(present[:, i : i + 1], h, torch.full_like(h, fill)) for i, (m, h) in enumerate(features.items())}


def test_mean_of_present_by_hand():
    f = _features()
    t, a, v = f["text"], f["audio"], f["vision"]
    expected = torch.stack([(t[0] + a[0] + v[0]) / 3, t[1], (a[2] + v[2]) / 2, torch.zeros(H),
                            (t[4] + v[4]) / 2, v[5]])
    torch.testing.assert_close(mean_of_present(f, PRESENT), expected)
    torch.testing.assert_close(MeanOfPresent(H)(f, PRESENT), expected)
    torch.testing.assert_close(create_fusion("mean", dim=H)(f, PRESENT), expected)


@pytest.mark.parametrize("fill", [1e6, float("nan"), float("-inf")])
def test_mean_of_present_ignores_absent_junk(fill):
    f = _features()
    torch.testing.assert_close(mean_of_present(_with_junk(f, PRESENT, fill), PRESENT), mean_of_present(f, PRESENT))


def test_mean_of_present_all_absent_is_zero_with_finite_gradients():
    f = {m: h.requires_grad_(True) for m, h in _features().items()}
    out = mean_of_present(f, torch.zeros(B, 3, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(B, H))
    out.sum().backward()
    assert all(torch.equal(h.grad, torch.zeros(B, H)) for h in f.values())


def test_mean_of_present_accepts_0_1_masks():
    f = _features()
    torch.testing.assert_close(mean_of_present(f, PRESENT.long()), mean_of_present(f, PRESENT))


@pytest.mark.parametrize("fill", [1e6, float("nan"), float("inf")])
def test_concat_fusion_ignores_absent_junk(fill):
    torch.manual_seed(0)
    fusion = ConcatFusion(H, 3, out_dim=5).eval()
    assert fusion.out_dim == 5
    f = _features()
    clean = fusion(f, PRESENT)
    assert clean.shape == (B, 5) and bool(torch.isfinite(clean).all())
    torch.testing.assert_close(fusion(_with_junk(f, PRESENT, fill), PRESENT), clean)


def test_concat_fusion_is_zero_fill_plus_mask_into_mlp():
    torch.manual_seed(0)
    fusion = ConcatFusion(H, 3, dropout=0.0).eval()
    f = _features()
    w = PRESENT.float()
    x = torch.cat([f["text"] * w[:, :1], f["audio"] * w[:, 1:2], f["vision"] * w[:, 2:], w], dim=-1)
    torch.testing.assert_close(fusion(f, PRESENT), fusion.net(x))
    # without append_mask the MLP cannot tell an absent modality from a present zero vector
    plain = ConcatFusion(H, 3, append_mask=False).eval()
    zeroed = {m: torch.where(PRESENT[:, i : i + 1], h, torch.zeros_like(h)) for i, (m, h) in enumerate(f.items())}
    torch.testing.assert_close(plain(f, PRESENT), plain(zeroed, torch.ones(B, 3, dtype=torch.bool)))


def test_fusion_registry_and_shape_errors():
    assert {"mean", "concat"} <= set(list_fusions())
    assert isinstance(create_fusion("concat", dim=H, num_modalities=3), ConcatFusion)
    with pytest.raises(KeyError, match=r"unknown fusion layer 'sum'.*registered: \[.*'mean'"):
        create_fusion("sum", dim=H)
    f = _features()
    with pytest.raises(ValueError, match=r"present of shape \[B, 3\].*found \(6, 2\)"):
        mean_of_present(f, PRESENT[:, :2])
    with pytest.raises(ValueError, match=r"features of 'audio'.*\[B=6, H\].*found \(5, 4\)"):
        mean_of_present(dict(f, audio=f["audio"][:5]), PRESENT)
    with pytest.raises(ValueError, match=r"present of shape \[B, 3\].*found \(6, 2\)"):
        ConcatFusion(H, 3)(f, PRESENT[:, :2])
