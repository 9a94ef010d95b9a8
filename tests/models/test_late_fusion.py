"""Tests of the plain late-fusion model ("late_fusion")."""

from __future__ import annotations

import pytest
import torch

from robustfusion.batch import MultimodalBatch
from robustfusion.dropping import all_subsets
from robustfusion.encoders import create_encoder
from robustfusion.fusion import ConcatFusion
from robustfusion.models import create_model
from robustfusion.models.late_fusion import LateFusion

DIMS = {"text": 5, "audio": 3, "vision": 2}
B, T, H = 3, 4, 6


def every_subset_present() -> torch.Tensor:
    """One row per non-empty subset, plus an all-absent row: ``[8, 3]``."""
    rows = [[m in s for m in DIMS] for s in all_subsets(DIMS)] + [[False] * len(DIMS)]
    return torch.tensor(rows)


def make_batch(present: torch.Tensor, seed: int = 0, targets: bool = True) -> MultimodalBatch:
    g = torch.Generator().manual_seed(seed)
    b = present.shape[0]
    inputs = {m: torch.randn(b, T, d, generator=g) for m, d in DIMS.items()}
    return MultimodalBatch(inputs, present=present, targets=torch.randn(b, generator=g) if targets else None)


def build(**kw) -> LateFusion:
    torch.manual_seed(0)
    kw = {"hidden_dim": H, "encoder_kwargs": {"hidden_dim": 4}, **kw}
    return create_model("late_fusion", modality_dims=DIMS, task="regression", num_outputs=1, **kw)


def test_constructible_with_only_the_required_arguments():
    model = create_model("late_fusion", modality_dims=DIMS, task="regression", num_outputs=1)
    out = model(make_batch(torch.ones(B, 3, dtype=torch.bool)))
    assert out.prediction.shape == (B, 1) and torch.isfinite(out.loss)
    assert model.registry_name == "late_fusion"


def test_prediction_is_head_of_mean_over_present_modalities_brute_force():
    model = build().eval()
    model.set_fallback(-0.25)
    present = every_subset_present()
    batch = make_batch(present)
    pred = model(batch).prediction
    for i in range(present.shape[0]):
        names = [m for j, m in enumerate(DIMS) if present[i, j]]
        if not names:
            torch.testing.assert_close(pred[i], torch.tensor([-0.25]))
            continue
        hs = [model.encoders[m](batch.inputs[m][i : i + 1]) for m in names]
        expected = model.head(torch.stack(hs).mean(dim=0))[0]
        torch.testing.assert_close(pred[i], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fusion", ["mean", "concat"])
def test_output_ignores_junk_in_absent_modalities(fusion: str):
    model = build(fusion=fusion).eval()
    present = every_subset_present()
    batch = make_batch(present, targets=False)
    g = torch.Generator().manual_seed(5)
    junk = {m: torch.where(present[:, j].view(-1, 1, 1), x, 100 * torch.randn(x.shape, generator=g))
            for j, (m, x) in enumerate(batch.inputs.items())}
    with torch.no_grad():
        torch.testing.assert_close(model(batch.replace(inputs=junk)).prediction, model(batch).prediction)


def test_regression_loss_options_and_classification():
    batch = make_batch(torch.ones(B, 3, dtype=torch.bool))
    l1, mse = build(regression_loss="l1"), build(regression_loss="mse")
    p = l1(batch).prediction.squeeze(1)
    torch.testing.assert_close(l1(batch).loss, (p - batch.targets).abs().mean())
    torch.testing.assert_close(mse(batch).loss, ((p - batch.targets) ** 2).mean())
    clf = create_model("late_fusion", modality_dims=DIMS, task="classification", num_outputs=3, hidden_dim=H)
    out = clf(batch.replace(targets=torch.tensor([0, 2, 1])))
    assert out.prediction.shape == (B, 3)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.prediction, torch.tensor([0, 2, 1])))


def test_given_modules_are_used_as_is():
    encs = {m: create_encoder("mlp", in_dim=d, out_dim=H) for m, d in DIMS.items()}
    fusion = ConcatFusion(H, len(DIMS), out_dim=7)
    head = torch.nn.Linear(7, 1)
    model = create_model("late_fusion", modality_dims=DIMS, encoders=encs, fusion=fusion, head=head)
    assert all(model.encoders[m] is encs[m] for m in DIMS)
    assert model.fusion is fusion and model.head is head
    assert model(make_batch(torch.ones(B, 3, dtype=torch.bool))).prediction.shape == (B, 1)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"encoders: expected one module per modality"):
        create_model("late_fusion", modality_dims=DIMS,
                     encoders={"text": create_encoder("mlp", in_dim=5, out_dim=H)})
    with pytest.raises(TypeError, match="fusion: expected a registered fusion name or an nn.Module"):
        create_model("late_fusion", modality_dims=DIMS, fusion=3)
    with pytest.raises(KeyError, match="unknown fusion layer 'no_such_fusion'"):
        create_model("late_fusion", modality_dims=DIMS, fusion="no_such_fusion")
