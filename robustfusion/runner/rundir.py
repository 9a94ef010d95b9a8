"""Run directories: one per run, holding everything needed to trace and rebuild it.

::

    RUN_DIR/config.yaml        resolved config (defaults < YAML < overrides)
    RUN_DIR/env.json           versions, device, command line, git commit
    RUN_DIR/model.json         registry name + constructor arguments of the model
    RUN_DIR/metrics.jsonl      one line per epoch
    RUN_DIR/checkpoints/       resumable state (see robustfusion.runner.checkpoint)
    RUN_DIR/model.safetensors  the selected weights (written when training ends)
    RUN_DIR/trainer_state.pt   optimizer / scheduler / RNG state at the end of training
    RUN_DIR/final.json         selected epoch and full-modality metrics on valid and test
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from robustfusion.io import atomic_write_json, atomic_write_text
from robustfusion.models.registry import create_model
from robustfusion.runner.checkpoint import load_weights, save_weights
from robustfusion.runner.config import load_config

__all__ = ["build_model_from_run", "env_info", "finish_run", "read_final", "read_run_config", "run_name",
           "write_run_files"]


def run_name(cfg: DictConfig) -> str:
    return cfg.name or f"{cfg.data.name}-{cfg.model.name}-seed{cfg.seed}"


def env_info(device: torch.device | str) -> dict[str, Any]:
    versions = {}
    for pkg in ("robustfusion", "torch", "numpy", "timm", "torchmetrics", "omegaconf", "sentence-transformers", "einops"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False,
                                cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "versions": versions,
            "device": str(device), "cuda": torch.version.cuda if torch.cuda.is_available() else None,
            "command": sys.argv, "git_commit": commit}


def write_run_files(run_dir: Path, cfg: DictConfig, model: torch.nn.Module, device: torch.device) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_json(run_dir / "env.json", env_info(device))
    atomic_write_json(run_dir / "model.json", {"name": model.registry_name, "config": model.init_config})


def finish_run(run_dir: Path, model: torch.nn.Module, final: dict[str, Any]) -> None:
    """Write the selected weights, the final trainer state and ``final.json``."""
    latest = run_dir / "checkpoints" / "LATEST"
    if latest.is_file():
        state = run_dir / "checkpoints" / latest.read_text().strip() / "trainer_state.pt"
        if state.is_file():
            shutil.copyfile(state, run_dir / "trainer_state.pt")
    save_weights(model, run_dir / "model.safetensors", {"selected_epoch": str(final.get("selected_epoch"))})
    atomic_write_json(run_dir / "final.json", final)


def read_run_config(run_dir: str | Path) -> DictConfig:
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: no config.yaml (expected the directory "
                                "printed by `robustfusion train`)")
    return load_config(path)


def read_final(run_dir: str | Path) -> dict[str, Any]:
    """``final.json`` of a finished run (selected epoch, calibrations, valid/test metrics)."""
    path = Path(run_dir) / "final.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no final.json; the run has not finished training "
                                f"(resume it with `robustfusion train --resume {run_dir}`)")
    return json.loads(path.read_text())


def build_model_from_run(run_dir: str | Path, weights: str = "model.safetensors") -> torch.nn.Module:
    """Rebuild the model of a run through the registry and load its weights."""
    run_dir = Path(run_dir)
    spec_path = run_dir / "model.json"
    if not spec_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no model.json; is this a run directory written by `robustfusion train`?")
    spec = json.loads(spec_path.read_text())
    model = create_model(spec["name"], **spec["config"])
    wpath = run_dir / weights
    if not wpath.is_file():
        raise FileNotFoundError(f"{run_dir}: no {weights}; the run has not finished training "
                                f"(resume it with `robustfusion train --resume {run_dir}`)")
    load_weights(model, wpath)
    model.eval()
    return model
