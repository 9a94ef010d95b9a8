"""Fitting a calibrator on a validation split (every modality subset) and the one wrapper that
applies it: the wrapped model predicts exactly the fitted map of the raw model's prediction, the
latent-reuse path agrees with the plain one, and the calibrators round-trip through the store."""

from __future__ import annotations

import copy

import pytest
import torch

from robustfusion.calibration import (
    CalibratedModel,
    PresenceAffine,
    create_calibrator,
    fit_on_subsets,
    list_calibrators,
    load_calibrators,
    save_calibrators,
)
from robustfusion.data import MultimodalDataset
from robustfusion.dropping import keep_subset
from robustfusion.models import create_model
from robustfusion.robustness import evaluate

DIMS = {"good": 3, "noise": 3, "noise2": 2}


def _valid(n: int = 96, seed: int = 0) -> MultimodalDataset:
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.randn(n, d, generator=g) for m, d in DIMS.items()}
    return MultimodalDataset(x, x["good"][:, 0], task="regression", name="toy")


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    kw = {} if name == "late_fusion" else {"latent_dim": 8}
    return create_model(name, modality_dims=DIMS, encoder="mlp", hidden_dim=8, **kw)


@pytest.mark.parametrize("name", ["gmc", "gmc_pf", "late_fusion"])
def test_fit_on_subsets_fits_each_subset_and_leaves_the_model_alone(name):
    model, data = _model(name), _valid()
    weights = copy.deepcopy(model.state_dict())
    cal = PresenceAffine(3, 1)
    info = fit_on_subsets(cal, model, data)
    assert len(info) == 7  # every non-empty subset of three modalities
    wrapped = CalibratedModel(model, [cal])
    batch = data.full_batch()
    for subset, fit in info.items():
        assert fit["loss_after"] <= fit["loss_before"] + 1e-6, subset
        b = keep_subset(batch, subset.split("+"))
        expected = model.predict(b) * torch.tensor(fit["scale"]) + torch.tensor(fit["shift"])
        torch.testing.assert_close(wrapped.predict(b), expected)
        assert float((wrapped.predict(b).flatten() - data.targets).abs().mean()) == pytest.approx(fit["loss_after"],
                                                                                                   abs=1e-5)
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert fit_on_subsets(PresenceAffine(3, 1), model, data) == info  # deterministic


def test_the_wrapper_is_a_predictor_with_the_models_latent_reuse():
    model, data = _model("gmc"), _valid()
    cal = PresenceAffine(3, 1)
    fit_on_subsets(cal, model, data)
    wrapped = CalibratedModel(model, [cal])
    assert wrapped.supports_latent_reuse and wrapped.registry_name == "gmc" and wrapped.task == "regression"
    reuse = evaluate(wrapped, data, protocols=["subsets", "sample_rate"], levels=[0.0, 0.5], seed=1)
    plain = evaluate(wrapped, data, protocols=["subsets", "sample_rate"], levels=[0.0, 0.5], seed=1,
                     reuse_latents=False)
    assert [r["value"] for r in reuse] == pytest.approx([r["value"] for r in plain], abs=1e-5)
    raw = evaluate(model, data, protocols=["subsets"], seed=1)
    assert [r["value"] for r in raw] != [r["value"] for r in reuse[:len(raw)]]
    full = wrapped.calibrated(data.full_batch())
    assert full.lower is None and full.probabilities is None and full.prediction.shape == (96, 1)


def test_store_round_trip_and_errors(tmp_path):
    model, data = _model("late_fusion"), _valid()
    cal = PresenceAffine(3, 1, loss="mse", max_scale=1.5)
    fit_on_subsets(cal, model, data)
    save_calibrators(tmp_path, [cal])
    (back,) = load_calibrators(tmp_path)
    assert isinstance(back, PresenceAffine) and back.params() == cal.params()
    assert torch.equal(back.scale, cal.scale) and torch.equal(back.shift, cal.shift)
    assert load_calibrators(tmp_path / "none") == []
    (tmp_path / "calibration.safetensors").unlink()
    with pytest.raises(ValueError, match=r"calibration.safetensors is missing"):
        load_calibrators(tmp_path)
    save_calibrators(tmp_path, [PresenceAffine(2, 1)])
    (tmp_path / "calibration.json").write_text('[{"name": "presence_affine", "params": {"num_modalities": 3, '
                                               '"num_outputs": 1}}]')
    with pytest.raises(ValueError, match=r"calibrator 0 \(presence_affine\) does not fit its state"):
        load_calibrators(tmp_path)


def test_registry():
    assert list_calibrators() == ["class_bias", "conformal_intervals", "presence_affine", "temperature_sets"]
    assert isinstance(create_calibrator("presence_affine", num_modalities=2, num_outputs=1), PresenceAffine)
    with pytest.raises(ValueError, match=r"calibrator 'presence_affine': bad parameters .*unexpected keyword argument 'scale'"):
        create_calibrator("presence_affine", num_modalities=2, num_outputs=1, scale=2)
