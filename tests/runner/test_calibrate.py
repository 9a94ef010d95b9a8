"""Post-hoc calibration of the partial-fusion weights on the validation split."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from robustfusion.data import MultimodalDataset
from robustfusion.dropping import keep_subset
from robustfusion.models import create_model
from robustfusion.runner.api import train_run
from robustfusion.runner.calibrate import calibrate_partial_fusion, calibrate_presence_readout
from robustfusion.runner.config import load_config
from robustfusion.runner.rundir import build_model_from_run
from tests.test_cli import TINY as CLI_TINY

ROOT = Path(__file__).resolve().parents[2]
TINY = [*CLI_TINY, "train.device=cpu"]


DIMS = {"good": 3, "noise": 3, "noise2": 2}


def _valid(n: int = 96, seed: int = 0) -> MultimodalDataset:
    """'good' carries the target, the others do not (three modalities: GMC's rule fuses pairs)."""
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.randn(n, d, generator=g) for m, d in DIMS.items()}
    return MultimodalDataset(x, x["good"][:, 0], task="regression", name="toy")


def _model(name: str = "gmc", **kw):
    torch.manual_seed(0)
    model = create_model(name, modality_dims=DIMS, encoder="mlp", hidden_dim=8, latent_dim=8,
                         partial_fusion="weighted_mean", **kw)
    model.set_fallback(0.0)
    return model


def _fit_head_on_good(model, data: MultimodalDataset) -> None:
    """Make the single-modality path of 'good' predictive (so the weights have something to find)."""
    opt = torch.optim.Adam([p for n, p in model.named_parameters() if "partial_fusion" not in n], lr=1e-2)
    batch = data.full_batch()
    only_good = batch.with_present(torch.tensor([[True, False, False]]).expand(len(data), 3))
    for _ in range(150):
        opt.zero_grad()
        model(only_good).loss.backward()
        opt.step()


@pytest.mark.parametrize("name", ["gmc", "gmc_pf"])
def test_calibration_moves_weight_to_the_informative_modality_and_nothing_else(name):
    kw = {"predict_from": "modalities"} if name == "gmc_pf" else {}
    model = _model(name, **kw)
    data = _valid()
    _fit_head_on_good(model, data)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    info = calibrate_partial_fusion(model, data)
    assert not model.training
    assert info["loss_after"] < info["loss_before"]
    good, noise, noise2 = info["parameters"]["logits"]
    assert good > max(noise, noise2)
    for n, p in model.named_parameters():
        assert p.requires_grad and p.grad is None
        if "partial_fusion" not in n:
            assert torch.equal(p.detach(), before[n]), n
    # deterministic: the same start gives the same calibrated weights
    again = _model(name, **kw)
    again.load_state_dict({n: v for n, v in before.items()}, strict=False)
    assert calibrate_partial_fusion(again, data)["parameters"] == info["parameters"]


def test_models_without_learnable_partial_fusion_are_refused():
    data = _valid()
    for model in (create_model("gmc", modality_dims=DIMS, encoder="mlp"),
                  create_model("late_fusion", modality_dims=DIMS, encoder="mlp")):
        with pytest.raises(ValueError, match=r"calibrate_fusion: expected a model with a learnable partial_fusion"):
            calibrate_partial_fusion(model, data)


def test_train_run_calibrates_saves_and_reloads(tmp_path):
    cfg = load_config(ROOT / "configs" / "synthetic" / "gmc_pf.yaml",
                      [*TINY, "model.params.partial_fusion=weighted_mean", "train.calibrate_fusion=true"])
    run_dir = train_run(cfg, run_dir=tmp_path / "run").dir
    final = json.loads((run_dir / "final.json").read_text())
    logits = final["calibration"]["parameters"]["logits"]
    assert len(logits) == 3 and logits != [0.0, 0.0, 0.0]
    assert final["calibration"]["loss_after"] <= final["calibration"]["loss_before"]
    model = build_model_from_run(run_dir)
    assert model.partial_fusion.logits.tolist() == pytest.approx(logits)


def test_train_run_refuses_an_uncalibratable_model_before_training(tmp_path):
    cfg = load_config(ROOT / "configs" / "synthetic" / "gmc.yaml",
                      [*TINY, "model.params.partial_fusion=mean", "train.calibrate_fusion=true"])
    with pytest.raises(ValueError, match=r"partial_fusion=weighted_mean"):
        train_run(cfg, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize("name", ["gmc", "gmc_pf", "late_fusion"])
def test_presence_readout_fits_each_subset_and_nothing_else(name):
    torch.manual_seed(0)
    model = create_model(name, modality_dims=DIMS, encoder="mlp", hidden_dim=8, latent_dim=8) if name != "late_fusion" \
        else create_model(name, modality_dims=DIMS, encoder="mlp", hidden_dim=8)
    data = _valid()
    raw = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in model.state_dict().items() if not n.startswith("readout.")}
    info = calibrate_presence_readout(model, data)
    assert len(info) == 7  # every non-empty subset of three modalities
    batch = data.full_batch()
    for subset, fit in info.items():
        assert fit["loss_after"] <= fit["loss_before"] + 1e-6, subset
        # the model now predicts exactly the fitted map of its raw prediction for that subset
        b = keep_subset(batch, subset.split("+"))
        expected = raw.predict(b) * torch.tensor(fit["scale"]) + torch.tensor(fit["shift"])
        torch.testing.assert_close(model.predict(b), expected)
        assert float((model.predict(b).flatten() - data.targets).abs().mean()) == pytest.approx(fit["loss_after"], abs=1e-5)
    for n, v in model.state_dict().items():
        if not n.startswith("readout."):
            assert torch.equal(v, before[n]), n
    again = create_model(name, modality_dims=DIMS, encoder="mlp", hidden_dim=8, **({"latent_dim": 8} if name != "late_fusion" else {}))
    again.load_state_dict(model.state_dict())
    assert calibrate_presence_readout(again, data) == info  # deterministic, starting from any read-out


def test_presence_readout_is_refused_for_classification():
    x = {m: torch.randn(16, d) for m, d in DIMS.items()}
    data = MultimodalDataset(x, torch.randint(0, 3, (16,)), task="classification", num_outputs=3, name="toy")
    model = create_model("gmc", modality_dims=DIMS, task="classification", num_outputs=3, encoder="mlp")
    with pytest.raises(ValueError, match=r"calibrate_subsets: expected a regression task.*'classification'"):
        calibrate_presence_readout(model, data)


def test_train_run_fits_the_readout_saves_and_reloads(tmp_path):
    cfg = load_config(ROOT / "configs" / "synthetic" / "gmc_pf.yaml", [*TINY, "train.calibrate_subsets=true"])
    run_dir = train_run(cfg, run_dir=tmp_path / "run").dir
    final = json.loads((run_dir / "final.json").read_text())
    assert set(final["readout"]) == {"text", "audio", "vision", "text+audio", "text+vision", "audio+vision",
                                     "text+audio+vision"}
    model = build_model_from_run(run_dir)
    code = 1 + 2 + 4  # all three modalities present
    assert model.readout.scale[code].tolist() == pytest.approx(final["readout"]["text+audio+vision"]["scale"])
    assert final["valid"]["MAE"] <= final["readout"]["text+audio+vision"]["loss_before"] + 1e-6
