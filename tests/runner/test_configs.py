"""Shipped configs: in sync with the presets, loadable, free of machine paths, and their models build."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from robustfusion import MultimodalBatch, create_model
from robustfusion.runner.config import load_config
from robustfusion.runner.presets import DATASET_DEFAULTS, GRIDS, METHODS, method_config, preset_yaml

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# feature sizes, frames and task of each dataset's published files (for building the models)
SHAPES = {
    "synthetic": ({"text": 24, "audio": 16, "vision": 20}, 10, "regression", 1),
    "mosi_utterance": ({"text": 100, "audio": 73, "vision": 100}, 0, "regression", 1),
    "iemocap_utterance": ({"text": 384, "audio": 8}, 0, "classification", 4),
    "mosi_mult": ({"text": 300, "audio": 5, "vision": 20}, 50, "regression", 1),
    "mosei_mult": ({"text": 300, "audio": 74, "vision": 35}, 50, "regression", 1),
    "iemocap_mult": ({"text": 300, "audio": 74, "vision": 35}, 20, "multilabel", 4),
    "mosi_mmsa": ({"text": 768, "audio": 5, "vision": 20}, 50, "regression", 1),
    "mosei_mmsa": ({"text": 768, "audio": 74, "vision": 35}, 50, "regression", 1),
    "sims_mmsa": ({"text": 768, "audio": 33, "vision": 709}, 39, "regression", 1),
    "npz": ({"text": 6, "audio": 4, "vision": 3}, 5, "regression", 1),
}
ALL = [(d, m) for d in DATASET_DEFAULTS for m in METHODS.ordered()]


def test_every_dataset_and_method_has_a_config():
    shipped = {(p.parent.name, p.stem) for p in CONFIGS.glob("*/*.yaml")}
    assert shipped == set(ALL)


@pytest.mark.parametrize(("dataset", "method"), ALL)
def test_config_matches_its_preset_and_has_no_machine_path(dataset, method):
    path = CONFIGS / dataset / f"{method}.yaml"
    assert path.read_text() == preset_yaml(dataset, method), "run `python configs/generate.py`"
    cfg = load_config(path)
    assert cfg.data.name == dataset and cfg.data.path is None


@pytest.mark.parametrize(("dataset", "method"), ALL)
def test_config_builds_a_model_that_runs(dataset, method):
    cfg = load_config(CONFIGS / dataset / f"{method}.yaml")
    dims, frames, task, k = SHAPES[dataset]
    params = OmegaConf.to_container(cfg.model.params)
    model = create_model(cfg.model.name, modality_dims=dims, task=task, num_outputs=k, **params)
    shape = (lambda d: (2, frames, d)) if frames else (lambda d: (2, d))
    targets = {"multilabel": lambda: torch.randint(0, 2, (2, k)).float(),
               "classification": lambda: torch.randint(0, k, (2,))}.get(task, lambda: torch.randn(2))()
    out = model(MultimodalBatch({m: torch.randn(*shape(d)) for m, d in dims.items()}, targets=targets))
    assert out.prediction.shape == (2, k) and torch.isfinite(out.loss)


def test_method_presets_are_a_registry_and_mult_keeps_its_own_params():
    assert METHODS.ordered()[:2] == ["gmc", "gmc_pf"] and GRIDS.get("synthetic_extended").methods == METHODS.ordered()
    assert METHODS.get("mult").own_params and not METHODS.get("gmc").own_params
    # the dataset's encoder settings reach every method but mult, which has its own architecture knobs
    assert method_config(GRIDS.get("synthetic"), "late_fusion", 0).model.params.encoder == "gru"
    assert OmegaConf.to_container(method_config(GRIDS.get("synthetic"), "mult", 0).model.params) == {"d_model": 32}
    with pytest.raises(ValueError, match=r"unknown method 'mlt'; known: \['early_fusion', "):
        method_config(GRIDS.get("synthetic"), "mlt", 0)
    with pytest.raises(ValueError, match=r"unknown method 'mlt'; known: "):
        preset_yaml("synthetic", "mlt")
