"""Post-hoc calibration in a run: the partial-fusion weights, and the run's calibrators fitted,
saved with the run and reloaded (also from the weights of an earlier version)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from robustfusion.calibration import CalibratedModel
from robustfusion.data import MultimodalDataset
from robustfusion.models import create_model
from robustfusion.runner.api import load_run, train_run
from robustfusion.runner.calibrate import calibrate_partial_fusion
from robustfusion.runner.config import load_config
from robustfusion.runner.rundir import build_model_from_run
from robustfusion.runner.scoring import evaluate_dataset
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
    model = build_model_from_run(run_dir)  # the preset also fits the read-out: a CalibratedModel
    assert model.model.partial_fusion.logits.tolist() == pytest.approx(logits)


def test_train_run_refuses_an_uncalibratable_model_before_training(tmp_path):
    cfg = load_config(ROOT / "configs" / "synthetic" / "gmc.yaml",
                      [*TINY, "model.params.partial_fusion=mean", "train.calibrate_fusion=true"])
    with pytest.raises(ValueError, match=r"partial_fusion=weighted_mean"):
        train_run(cfg, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_train_run_fits_the_readout_saves_and_reloads(tmp_path):
    cfg = load_config(ROOT / "configs" / "synthetic" / "gmc_pf.yaml",
                      [*TINY, "train.calibrate_subsets=true", "train.calibrators=[]"])  # the read-out alone
    run_dir = train_run(cfg, run_dir=tmp_path / "run").dir
    final = json.loads((run_dir / "final.json").read_text())
    assert set(final["readout"]) == {"text", "audio", "vision", "text+audio", "text+vision", "audio+vision",
                                     "text+audio+vision"}
    model = build_model_from_run(run_dir)
    assert isinstance(model, CalibratedModel) and json.loads((run_dir / "calibration.json").read_text()) == [
        {"name": "presence_affine", "params": {"num_modalities": 3, "num_outputs": 1, "loss": "l1", "max_scale": 2.0}}]
    code = 1 + 2 + 4  # all three modalities present
    assert model.calibrators[0].scale[code].tolist() == pytest.approx(final["readout"]["text+audio+vision"]["scale"])
    assert final["valid"]["MAE"] <= final["readout"]["text+audio+vision"]["loss_before"] + 1e-6
    valid = load_run(run_dir).data.splits["valid"]
    assert evaluate_dataset(model, valid) == final["valid"]  # the reloaded run predicts as the trained one

    # a run of the previous version: the read-out inside model.safetensors, no calibration files
    weights = load_file(run_dir / "model.safetensors")
    weights.update({"readout.scale": model.calibrators[0].scale, "readout.shift": model.calibrators[0].shift})
    save_file(weights, run_dir / "model.safetensors")
    (run_dir / "calibration.json").unlink()
    (run_dir / "calibration.safetensors").unlink()
    legacy = build_model_from_run(run_dir)
    assert isinstance(legacy, CalibratedModel) and evaluate_dataset(legacy, valid) == final["valid"]
    weights.update({"readout.scale": torch.ones_like(weights["readout.scale"]),
                    "readout.shift": torch.zeros_like(weights["readout.shift"])})
    save_file(weights, run_dir / "model.safetensors")
    assert not isinstance(build_model_from_run(run_dir), CalibratedModel)  # an unfitted read-out: no calibrator


def test_train_run_refuses_a_calibrator_the_task_cannot_have_before_training(tmp_path):
    cfg = load_config(ROOT / "configs" / "synthetic" / "gmc.yaml", [*TINY, "data.options.target=emotion"])
    with pytest.raises(ValueError, match=r"train.calibrate_subsets: calibrator 'presence_affine': expected a task "
                                         r"in \('regression',\), found task='classification'"):
        train_run(cfg, run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    cfg = load_config(ROOT / "configs" / "synthetic" / "late_fusion.yaml", [*TINY, "train.calibrators=[{name: affine}]"])
    with pytest.raises(ValueError, match=r"calibrator: expected one of \['class_bias', 'conformal_intervals', 'presence_affine', 'temperature_sets'\], found 'affine'"):
        train_run(cfg, run_dir=tmp_path / "run2")
