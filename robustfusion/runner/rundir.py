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

A kill at any instant leaves a directory that ``--resume`` completes: the start-up files
(config, env, model spec, standardisation) are written into a hidden sibling
``.NAME.HOST-PID.starting`` that is renamed into place whole (:func:`create_run_dir`), so a run
directory never exists without them; a resume also rewrites any that is missing (a directory
from an older version) and removes a killed writer's temporaries (:func:`repair_run_files`).
"""

from __future__ import annotations

import errno
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors import safe_open

from robustfusion.calibration import CalibratedModel, Calibrator, load_calibrators, save_calibrators
from robustfusion.calibration.store import LEGACY_READOUT_KEYS, split_legacy_readout
from robustfusion.data.standardize import Standardizer
from robustfusion.io import (
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    make_temp_dir,
    remove_stale_temporaries,
    stale_owned_siblings,
)
from robustfusion.models.registry import create_model
from robustfusion.runner.checkpoint import load_weights, save_weights, tidy_checkpoints
from robustfusion.runner.config import load_config

__all__ = ["build_model_from_run", "create_run_dir", "env_info", "finish_run", "read_final", "read_run_config",
           "repair_run_files", "run_name", "write_run_files"]


def run_name(cfg: DictConfig) -> str:
    """``<dataset>-<name>-seed<seed>``; ``<name>`` is the config's ``name``, else the model's."""
    return f"{cfg.data.name}-{cfg.name or cfg.model.name}-seed{cfg.seed}"


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


START_FILES = ("env.json", "model.json", "standardizer.json", "config.yaml")  # config.yaml last: it marks a run


def write_run_files(run_dir: Path, cfg: DictConfig, model: torch.nn.Module, device: torch.device,
                    standardizer: Standardizer | None = None) -> None:
    """Write the start-up files into ``run_dir`` (``config.yaml`` last)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "env.json", env_info(device))
    atomic_write_json(run_dir / "model.json", {"name": model.registry_name, "config": model.init_config})
    if standardizer is not None:
        standardizer.save(run_dir / "standardizer.json")
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))


def _candidates(base: Path) -> Iterator[Path]:
    yield base
    k = 1
    while True:
        k += 1
        yield base.with_name(f"{base.name}-{k}")


def create_run_dir(cfg: DictConfig, model: torch.nn.Module, device: torch.device,
                   standardizer: Standardizer | None = None, *, out: str | Path = "runs",
                   run_dir: str | Path | None = None) -> Path:
    """Create a run directory holding its start-up files, all at once.

    The files are written into ``.NAME.HOST-PID.starting`` beside the target, which is then
    renamed to ``run_dir`` (or to the first free ``out/NAME``, ``out/NAME-2``, ...): a kill
    leaves either no run directory or a complete one. Leftovers of killed processes of this host
    are removed first. An explicit ``run_dir`` that already holds files gets the files in place
    (``config.yaml`` last).
    """
    explicit = run_dir is not None
    base = Path(run_dir) if explicit else Path(out) / run_name(cfg)
    base.parent.mkdir(parents=True, exist_ok=True)
    for stale, _ in stale_owned_siblings(base.parent, base.name, ("starting",)):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = make_temp_dir(base.parent, base.name, "starting")
    try:
        write_run_files(tmp, cfg, model, device, standardizer)
        for cand in ([base] if explicit else _candidates(base)):
            if not explicit and (cand / "config.yaml").exists():
                continue
            try:
                os.rename(tmp, cand)  # atomic; replaces only a missing or empty directory
                return cand
            except OSError as err:
                if err.errno not in (errno.EEXIST, errno.ENOTEMPTY) and not (cand.exists() and not cand.is_dir()):
                    raise
                if not explicit:
                    continue  # taken meanwhile, or junk without config.yaml: next name
                if not cand.is_dir():
                    raise FileExistsError(f"{cand}: exists and is not a directory; expected a run directory") from None
            for name in START_FILES:  # explicit run_dir with content: in place, config.yaml last
                if (tmp / name).exists():
                    os.replace(tmp / name, cand / name)
            return cand
        raise AssertionError("unreachable")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def repair_run_files(run_dir: Path, cfg: DictConfig, model: torch.nn.Module, device: torch.device,
                     standardizer: Standardizer | None = None) -> list[str]:
    """Before a resume: remove what killed writers left (``.*.tmp`` files, checkpoint folders
    ``LATEST`` does not name) and rewrite any start-up file that is missing (all are derived from
    ``config.yaml`` and the data). Returns the names rewritten."""
    remove_stale_temporaries(run_dir)
    tidy_checkpoints(run_dir)
    written = []
    if not (run_dir / "model.json").is_file():
        atomic_write_json(run_dir / "model.json", {"name": model.registry_name, "config": model.init_config})
        written.append("model.json")
    if standardizer is not None and not (run_dir / "standardizer.json").is_file():
        standardizer.save(run_dir / "standardizer.json")
        written.append("standardizer.json")
    if not (run_dir / "env.json").is_file():
        atomic_write_json(run_dir / "env.json", env_info(device))
        written.append("env.json")
    return written


def finish_run(run_dir: Path, model: torch.nn.Module, final: dict[str, Any],
               calibrators: Sequence[Calibrator] = ()) -> None:
    """Write the selected weights, the calibrators, the final trainer state and ``final.json``."""
    latest = run_dir / "checkpoints" / "LATEST"
    if latest.is_file():
        state = run_dir / "checkpoints" / latest.read_text().strip() / "trainer_state.pt"
        if state.is_file():
            atomic_write(run_dir / "trainer_state.pt", lambda tmp: shutil.copyfile(state, tmp))
    save_weights(model, run_dir / "model.safetensors", {"selected_epoch": str(final.get("selected_epoch"))})
    save_calibrators(run_dir, calibrators)
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


def _legacy_readout(path: Path, model: torch.nn.Module) -> list[Calibrator]:
    """The fitted presence read-out an earlier version saved inside the model's weights, as a calibrator."""
    with safe_open(str(path), framework="pt") as fh:
        if not all(k in fh.keys() for k in LEGACY_READOUT_KEYS):  # noqa: SIM118 (safe_open has no __contains__)
            return []
        state = {k: fh.get_tensor(k) for k in LEGACY_READOUT_KEYS}
    cal = split_legacy_readout(state, getattr(model, "regression_loss", "l1"))
    return [] if cal is None else [cal]


def build_model_from_run(run_dir: str | Path, weights: str = "model.safetensors") -> torch.nn.Module:
    """Rebuild the model of a run through the registry and load its weights; with the run's
    calibrators (``calibration.json``, or the read-out an earlier version kept in the weights)
    the model comes wrapped in a :class:`~robustfusion.calibration.CalibratedModel`."""
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
    calibrators = load_calibrators(run_dir) or _legacy_readout(wpath, model)
    return CalibratedModel(model, calibrators).eval() if calibrators else model
