"""What the ``robustfusion`` command runs, as functions: train, resume, evaluate, report."""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from robustfusion.data.standardize import Standardizer
from robustfusion.io import atomic_write_json
from robustfusion.models.registry import MODELS, create_model
from robustfusion.runner.calibrate import (
    calibrate_partial_fusion,
    calibrate_presence_readout,
    check_calibratable,
    check_readout_task,
)
from robustfusion.runner.config import ConfigError, load_config
from robustfusion.runner.fit import evaluate_dataset, fit, resolve_device, set_fallback_from_targets
from robustfusion.runner.rundir import (
    build_model_from_run,
    finish_run,
    read_run_config,
    run_name,
    write_run_files,
)
from robustfusion.runner.seeding import seed_everything

__all__ = [
    "build_model",
    "evaluate_model",
    "evaluate_run",
    "load_data",
    "oracle_rows",
    "prepare_data",
    "report_dirs",
    "resume_run",
    "run_standardizer",
    "train_run",
]


_DATA_CACHE: dict[str, dict[str, Any]] = {}


def load_data(cfg: DictConfig, cache: bool = False) -> dict[str, Any]:
    """``{split: MultimodalDataset}`` for ``cfg.data`` (see ``robustfusion.data.load_dataset``).

    With ``cache=True`` the splits are kept in memory for the next call with the same data
    settings (``reproduce`` trains many runs on one dataset).
    """
    from robustfusion.data import load_dataset

    options = OmegaConf.to_container(cfg.data.options, resolve=True) or {}
    key = json.dumps([cfg.data.name, cfg.data.path, cfg.data.split_seed, options], sort_keys=True, default=str)
    if cache and key in _DATA_CACHE:
        return _DATA_CACHE[key]
    data = load_dataset(cfg.data.name, cfg.data.path, split_seed=cfg.data.split_seed, **options)
    if cache:
        _DATA_CACHE[key] = data
    return data


def prepare_data(cfg: DictConfig, standardizer: Standardizer | None = None,
                 cache: bool = False) -> tuple[dict[str, Any], Standardizer | None]:
    """The splits as models see them: loaded, then standardised with ``standardizer`` (default:
    fitted on the training split) when ``cfg.data.standardize`` is on."""
    data = load_data(cfg, cache=cache)
    if not cfg.data.standardize:
        return data, None
    if standardizer is None:
        if "train" not in data:
            raise ValueError(f"dataset {cfg.data.name!r} has no 'train' split to fit the standardisation on")
        standardizer = Standardizer.fit(data["train"])
    return {k: standardizer.transform(v) for k, v in data.items()}, standardizer


def run_standardizer(run_dir: str | Path) -> Standardizer | None:
    """The standardisation a run was trained with (``None`` if it used raw features)."""
    path = Path(run_dir) / "standardizer.json"
    return Standardizer.load(path) if path.is_file() else None


def build_model(cfg: DictConfig, train) -> torch.nn.Module:
    """``create_model(cfg.model.name, modality_dims/task/num_outputs from the data, **cfg.model.params)``."""
    params = OmegaConf.to_container(cfg.model.params, resolve=True) or {}
    builder = MODELS.get(cfg.model.name)
    try:
        return create_model(cfg.model.name, modality_dims=train.modality_dims, task=train.task,
                            num_outputs=train.num_outputs, **params)
    except TypeError as err:
        valid = [p for p in inspect.signature(builder).parameters if p not in ("self", "modality_dims", "task", "num_outputs")]
        raise ConfigError(f"model.params for {cfg.model.name!r}: {err}; valid parameters: {valid}") from None


def _make_run_dir(cfg: DictConfig, out: str | Path) -> Path:
    base = Path(out) / run_name(cfg)
    run_dir, k = base, 1
    while (run_dir / "config.yaml").exists():
        k += 1
        run_dir = base.with_name(f"{base.name}-{k}")
    return run_dir


def train_run(cfg: DictConfig, out: str | Path = "runs", run_dir: str | Path | None = None, resume: bool = False,
              on_epoch_end=None, cache_data: bool = False) -> Path:
    """Train one run into a new directory under ``out`` (or ``run_dir``); returns the directory."""
    seed_everything(cfg.seed)
    run_dir = Path(run_dir) if run_dir is not None else _make_run_dir(cfg, out)
    data, standardizer = prepare_data(cfg, run_standardizer(run_dir) if resume else None, cache=cache_data)
    for split in ("train", "valid"):
        if split not in data:
            raise ValueError(f"dataset {cfg.data.name!r} has no {split!r} split; found {sorted(data)}")
    train = data["train"]
    model = build_model(cfg, train)
    set_fallback_from_targets(model, train)
    if cfg.train.calibrate_fusion:
        check_calibratable(model)  # fail before training, not after
    if cfg.train.calibrate_subsets:
        check_readout_task(train.task)
    device = resolve_device(cfg.train.device)
    if not resume:
        write_run_files(run_dir, cfg, model, device)
        if standardizer is not None:
            standardizer.save(run_dir / "standardizer.json")
    result = fit(model, train, data["valid"], cfg.train, cfg.seed, run_dir=run_dir, resume=resume,
                 on_epoch_end=on_epoch_end)
    final: dict[str, Any] = {"selected_epoch": result.selected_epoch, "epochs_run": result.epochs_run,
                             "selection": cfg.train.selection, "best_value": result.best_value}
    if cfg.train.calibrate_fusion:
        final["calibration"] = calibrate_partial_fusion(model, data["valid"], batch_size=cfg.eval.batch_size,
                                                        device=device)
    if cfg.train.calibrate_subsets:
        final["readout"] = calibrate_presence_readout(model, data["valid"], batch_size=cfg.eval.batch_size,
                                                      device=device)
    for split in ("valid", "test"):
        if split in data:
            final[split] = evaluate_dataset(model, data[split], cfg.eval.batch_size, device)
    finish_run(run_dir, model.cpu(), final)
    return run_dir


def resume_run(run_dir: str | Path, on_epoch_end=None) -> Path:
    """Continue a killed run from its last complete epoch."""
    cfg = read_run_config(run_dir)
    return train_run(cfg, run_dir=run_dir, resume=True, on_epoch_end=on_epoch_end)


def evaluate_model(model: torch.nn.Module, cfg: DictConfig, dataset, oracle_dataset=None) -> list[dict]:
    """Robustness rows of ``model`` on ``dataset`` under ``cfg.eval``, plus the oracle's rows on
    ``oracle_dataset`` (the same split with raw features, if given). Drop patterns depend only on
    (seed, protocol, level) and the batch order, so both see identical patterns."""
    from robustfusion.robustness import evaluate

    device = resolve_device(cfg.train.device)
    rows = evaluate(model.to(device), dataset, protocols=list(cfg.eval.protocols), levels=list(cfg.eval.levels),
                    seed=cfg.seed, batch_size=cfg.eval.batch_size, dataset_name=cfg.data.name,
                    model_name=cfg.model.name if not cfg.name else cfg.name, split=cfg.data.split,
                    keep_at_least_one=cfg.eval.keep_at_least_one, device=device)
    if oracle_dataset is not None:
        rows += oracle_rows(cfg, oracle_dataset)
    return rows


def evaluate_run(run_dir: str | Path, overrides: Sequence[str] = (), oracle: bool = False) -> tuple[Path, list[dict]]:
    """Run the robustness evaluator on a trained run; writes ``RUN_DIR/eval/<split>/robustness.csv``
    plus tables and plots. ``overrides`` may change ``data.path``, ``data.split``, ``eval.*``."""
    from robustfusion.reporting import write_report
    from robustfusion.robustness import write_rows_csv

    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if overrides:
        cfg = load_config(None, overrides, base=OmegaConf.to_container(cfg))
    model = build_model_from_run(run_dir)
    data, _ = prepare_data(cfg, run_standardizer(run_dir), cache=oracle)  # the oracle reads the same load
    split = cfg.data.split
    if split not in data:
        raise ValueError(f"data.split={split!r} is not a split of {cfg.data.name!r}; found {sorted(data)}")
    rows = evaluate_model(model, cfg, data[split], oracle_dataset=load_data(cfg, cache=True)[split] if oracle else None)
    out = run_dir / "eval" / split
    write_rows_csv(rows, out / "robustness.csv")
    write_report(rows, out)
    return out, rows


def oracle_rows(cfg: DictConfig, dataset) -> list[dict]:
    """Rows of the Bayes-optimal oracle on the same drop patterns (synthetic benchmark only);
    ``dataset`` must hold the raw (unstandardised) features the oracle's posterior is written for."""
    from robustfusion.robustness import evaluate

    oracle = dataset.meta.get("oracle")
    if oracle is None:
        return []
    return evaluate(oracle, dataset, protocols=list(cfg.eval.protocols), levels=list(cfg.eval.levels),
                    seed=cfg.seed, batch_size=cfg.eval.batch_size, dataset_name=cfg.data.name,
                    model_name="oracle", split=cfg.data.split, keep_at_least_one=cfg.eval.keep_at_least_one)


def report_dirs(dirs: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Collect every ``robustness.csv`` under ``dirs`` and write tables and plots into ``out``."""
    from robustfusion.reporting import write_report
    from robustfusion.robustness import read_rows_csv, write_rows_csv

    rows: list[dict] = []
    files = []
    for d in dirs:
        d = Path(d)
        found = [d] if d.is_file() else sorted(d.rglob("robustness.csv"))
        if not found:
            raise FileNotFoundError(f"{d}: no robustness.csv found (run `robustfusion evaluate RUN_DIR` first)")
        files += found
    seen = set()
    for f in files:
        if f.resolve() in seen:
            continue
        seen.add(f.resolve())
        rows += read_rows_csv(f)
    out = Path(out)
    write_rows_csv(rows, out / "robustness.csv")
    result = write_report(rows, out)
    atomic_write_json(out / "sources.json", [str(f) for f in files])
    return result
