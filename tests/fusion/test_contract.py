"""Contract tests over every registered fusion layer (as timm's tests/test_models.py).

Every name in ``robustfusion.fusion.list_fusions()`` -- collected at import time, so a newly
registered fusion layer is covered automatically -- is built with small sizes
(``create_fusion(name, dim=H, num_modalities=M)``) and, for every presence pattern including
the all-absent one and batch sizes 1 and 2^M, must: give finite ``[B, out_dim]`` outputs that do
not change when absent modalities hold junk (NaN, +-inf, huge values); let no gradient reach an
absent modality; depend on the present ones; and raise ``ValueError`` for a presence mask of the
wrong shape.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from robustfusion.fusion import FUSIONS, create_fusion, list_fusions

H, M = 4, 3
NAMES = ("text", "audio", "vision")
FUSION_NAMES = list_fusions()
JUNK = ("nan", "inf", "-inf", "huge")

# Small sizes for layers we know; others get ``dim`` / ``num_modalities`` if they accept them.
SMALL_KWARGS: dict[str, dict] = {"lmf": {"out_dim": 8, "rank": 2}}


def build(name: str):
    torch.manual_seed(0)
    params = inspect.signature(FUSIONS.get(name)).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kw = {k: v for k, v in {"dim": H, "num_modalities": M}.items() if k in params or takes_any}
    return create_fusion(name, **kw, **SMALL_KWARGS.get(name, {})).eval()


def every_pattern() -> torch.Tensor:
    """``[2^M, M]``: every presence pattern, the all-absent one last."""
    rows = [[bool(i >> j & 1) for j in range(M)] for i in range(2**M - 1, -1, -1)]
    return torch.tensor(rows)


def features(b: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, H, generator=g) for m in NAMES}


def with_junk(feats: dict[str, torch.Tensor], present: torch.Tensor, kind: str) -> dict[str, torch.Tensor]:
    out = {}
    for i, (m, h) in enumerate(feats.items()):
        junk = (1e30 * torch.randn(h.shape, generator=torch.Generator().manual_seed(i)) if kind == "huge"
                else torch.full_like(h, float(kind)))
        out[m] = torch.where(present[:, i : i + 1], h, junk)
    return out


@pytest.mark.parametrize("b", ["one", "every-pattern"])
@pytest.mark.parametrize("name", FUSION_NAMES)
def test_junk_in_absent_modalities_changes_nothing(name: str, b: str):
    fusion = build(name)
    patterns = every_pattern()
    cases = [patterns[i : i + 1] for i in range(len(patterns))] if b == "one" else [patterns]
    for present in cases:
        feats = features(len(present))
        with torch.no_grad():
            ref = fusion(feats, present)
            assert ref.shape == (len(present), fusion.out_dim), name
            assert bool(torch.isfinite(ref).all()), f"{name} present={present.tolist()}: {ref}"
            for kind in JUNK:
                out = fusion(with_junk(feats, present, kind), present)
                where = f"{name} {kind} present={present.tolist()}"
                torch.testing.assert_close(out, ref, msg=lambda s, w=where: f"{w}: {s}")


@pytest.mark.parametrize("name", FUSION_NAMES)
def test_no_gradient_reaches_absent_modalities(name: str):
    fusion = build(name)
    present = every_pattern()
    feats = {m: h.requires_grad_(True) for m, h in with_junk(features(len(present)), present, "nan").items()}
    fusion(feats, present).sum().backward()
    for i, (m, h) in enumerate(feats.items()):
        g = h.grad if h.grad is not None else torch.zeros_like(h)
        assert bool(torch.isfinite(g).all()), f"{name}: gradient into {m} is not finite"
        assert torch.equal(g[~present[:, i]], torch.zeros_like(g[~present[:, i]])), f"{name}: absent {m} gets gradient"


@pytest.mark.parametrize("name", FUSION_NAMES)
def test_present_modalities_matter(name: str):
    fusion = build(name)
    present = every_pattern()
    feats = features(len(present))
    with torch.no_grad():
        ref = fusion(feats, present)
        for i, m in enumerate(NAMES):
            out = fusion(dict(feats, **{m: feats[m] + 1.0}), present)
            has = present[:, i]
            assert not torch.allclose(out[has], ref[has]), f"{name}: present {m} does not change the output"
            torch.testing.assert_close(out[~has], ref[~has])


@pytest.mark.parametrize("name", FUSION_NAMES)
def test_wrong_presence_shape_raises(name: str):
    fusion = build(name)
    feats = features(2)
    with pytest.raises(ValueError, match=r"present"):
        fusion(feats, torch.ones(2, M - 1, dtype=torch.bool))
