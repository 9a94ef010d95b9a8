"""The mosi_mult / mosei_mult gmc and gmc_pf presets are GMC's published affect model and schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from robustfusion import create_model
from robustfusion.cli import main
from robustfusion.data.mult import write_example_mult_pickle
from robustfusion.runner.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DIMS = {"mosei_mult": {"text": 300, "audio": 74, "vision": 35}, "mosi_mult": {"text": 300, "audio": 5, "vision": 20}}
GMC_MOSEI_PARAMETERS = 1_411_081  # AffectGMC of miguelsvasco/gmc on MOSEI, counted


def _model(dataset: str, method: str):
    cfg = load_config(CONFIGS / dataset / f"{method}.yaml")
    return cfg, create_model(cfg.model.name, modality_dims=DIMS[dataset], **OmegaConf.to_container(cfg.model.params))


def test_mosei_gmc_preset_has_gmcs_parameter_count_and_schedule():
    cfg, model = _model("mosei_mult", "gmc")
    assert sum(p.numel() for p in model.parameters()) == GMC_MOSEI_PARAMETERS
    t = cfg.train
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.epochs, t.grad_clip, t.selection) == \
        ("adam", 1e-3, 0.0, 24, 40, 0.8, "last")
    assert (t.scheduler, t.plateau_patience, t.plateau_factor) == ("plateau", 20, 0.1)
    assert model.contrastive.temperature == pytest.approx(0.3)


@pytest.mark.parametrize("dataset", ["mosi_mult", "mosei_mult"])
def test_gmc_and_gmc_pf_presets_share_the_architecture(dataset):
    _, gmc = _model(dataset, "gmc")
    _, pf = _model(dataset, "gmc_pf")
    n_gmc, n_pf = (sum(p.numel() for p in m.parameters()) for m in (gmc, pf))
    # MOSI differs from MOSEI only in the input layers; gmc_pf adds its back-connections
    assert abs(n_gmc - GMC_MOSEI_PARAMETERS) <= 0.02 * GMC_MOSEI_PARAMETERS
    assert n_gmc < n_pf <= 1.05 * n_gmc
    assert "Deviations" in (CONFIGS / dataset / "gmc.yaml").read_text()


def test_mosei_gmc_preset_trains_through_the_cli(tmp_path, capsys):
    data = write_example_mult_pickle(tmp_path / "mosei_senti_data.pkl", layout="mosei_senti", sizes=(48, 24, 24))
    assert main(["train", str(CONFIGS / "mosei_mult" / "gmc.yaml"), f"data.path={data}", "train.epochs=2",
                 "train.progress=false", "train.num_threads=1", "--out", str(tmp_path / "runs")]) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all("valid/loss" in r and r["lr"] == 1e-3 for r in rows)
    assert {"MAE", "Corr", "Non0_acc_2", "Non0_F1_score", "Mult_acc_7"} <= set(json.loads((run_dir / "final.json").read_text())["test"])
