"""What the ``robustfusion`` command runs, as functions: train, resume, evaluate, report.

Objects are passed down, not reloaded: :func:`prepare_data` loads a dataset and fits its
standardisation once (a grid passes the result to every run), :func:`train_run` returns a
:class:`Run` holding the trained model, its final metrics and the data it saw, and only code that
starts from a directory (``evaluate``, ``--resume``, a reused finished run) reads it from disk
(:func:`load_run`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from robustfusion.calibration import CalibratedModel
from robustfusion.data import MultimodalDataset, load_dataset
from robustfusion.data.standardize import Standardizer
from robustfusion.io import replace_dir
from robustfusion.metrics import primary_metric
from robustfusion.models.registry import create_model, model_keywords
from robustfusion.reporting import write_report
from robustfusion.results import ORACLE, write_rows_csv
from robustfusion.robustness import evaluate
from robustfusion.runner import distributed as ddp
from robustfusion.runner.calibrate import calibrate_partial_fusion, check_calibratable
from robustfusion.runner.calibrators import fit_run_calibrators, run_calibrators
from robustfusion.runner.config import ConfigError, load_config
from robustfusion.runner.diverged import handle_divergence
from robustfusion.runner.fit import fit
from robustfusion.runner.lock import run_lock
from robustfusion.runner.predictions_file import PREDICTIONS_FILE, write_predictions
from robustfusion.runner.resources import resolve_device, torch_threads
from robustfusion.runner.rundir import (
    build_model_from_run,
    create_run_dir,
    finish_run,
    read_final,
    read_run_config,
    repair_run_files,
)
from robustfusion.runner.scoring import check_monitor, evaluate_dataset, set_fallback_from_targets
from robustfusion.runner.tensorboard import tensorboard_writer
from robustfusion.seeding import seed_everything

__all__ = [
    "PreparedData",
    "Run",
    "build_model",
    "evaluate_model",
    "evaluate_run",
    "load_data",
    "load_run",
    "oracle_rows",
    "prepare_data",
    "resume_run",
    "train_run",
]


@dataclass
class PreparedData:
    """A dataset as loaded (``raw``: the oracle's posterior is written for these features) and as
    models see it (``splits``: standardised with ``standardizer`` when ``data.standardize``)."""

    raw: dict[str, MultimodalDataset]
    splits: dict[str, MultimodalDataset]
    standardizer: Standardizer | None


@dataclass
class Run:
    """A trained (or reloaded) run: its directory, resolved config, model (eval mode, CPU; a
    :class:`~robustfusion.calibration.CalibratedModel` when the run has calibrators),
    ``final.json`` contents and the data it was trained on."""

    dir: Path
    cfg: DictConfig
    model: torch.nn.Module
    final: dict[str, Any]
    data: PreparedData


def load_data(cfg: DictConfig) -> dict[str, MultimodalDataset]:
    """``{split: MultimodalDataset}`` for ``cfg.data`` (see :func:`robustfusion.data.load_dataset`)."""
    options = OmegaConf.to_container(cfg.data.options, resolve=True) or {}
    return load_dataset(cfg.data.name, cfg.data.path, split_seed=cfg.data.split_seed, **options)


def prepare_data(cfg: DictConfig, raw: dict[str, MultimodalDataset] | None = None,
                 standardizer: Standardizer | None = None) -> PreparedData:
    """Load ``cfg.data`` (unless ``raw`` is given) and standardise it with ``standardizer``
    (default: fitted on the training split) when ``cfg.data.standardize`` is on."""
    raw = load_data(cfg) if raw is None else raw
    if not cfg.data.standardize:
        return PreparedData(raw, raw, None)
    if standardizer is None:
        if "train" not in raw:
            raise ValueError(f"dataset {cfg.data.name!r} has no 'train' split to fit the standardisation on")
        standardizer = Standardizer.fit(raw["train"])
    return PreparedData(raw, {k: standardizer.transform(v) for k, v in raw.items()}, standardizer)


def build_model(cfg: DictConfig, train: MultimodalDataset) -> torch.nn.Module:
    """``create_model(cfg.model.name, modality_dims/task/num_outputs from the data, **cfg.model.params)``;
    with ``cfg.model.ensemble`` = K > 1, a seed ensemble of K such models
    (:class:`robustfusion.models.ensemble.SeedEnsemble`)."""
    params = OmegaConf.to_container(cfg.model.params, resolve=True) or {}
    if cfg.model.ensemble < 1:
        raise ConfigError(f"model.ensemble: expected a number of members >= 1, found {cfg.model.ensemble}")
    members = {"member": cfg.model.name, "members": cfg.model.ensemble} if cfg.model.ensemble > 1 else {}
    try:
        return create_model("ensemble" if members else cfg.model.name, modality_dims=train.modality_dims, task=train.task,
                            num_outputs=train.num_outputs, **members, **params)
    except TypeError as err:
        valid = [p for p in model_keywords(cfg.model.name) if p not in ("modality_dims", "task", "num_outputs")]
        unknown = sorted(k for k in params if k not in model_keywords(cfg.model.name))
        what = f"unexpected key(s) {unknown}" if unknown else str(err)
        raise ConfigError(f"model.params for {cfg.model.name!r}: {what}; valid parameters: {valid}") from None


def _standardizer_of(run_dir: Path) -> Standardizer | None:
    path = run_dir / "standardizer.json"
    return Standardizer.load(path) if path.is_file() else None


def train_run(cfg: DictConfig, out: str | Path = "runs", run_dir: str | Path | None = None, resume: bool = False,
              on_epoch_end=None, data: PreparedData | None = None, num_threads: int = 0) -> Run:
    """Train one run into a new directory under ``out`` (or ``run_dir``).

    ``data``: the prepared dataset of ``cfg.data`` when the caller has it already (a grid);
    a resumed run always uses the standardisation saved in its directory. The run uses
    ``cfg.train.num_threads`` torch threads, else ``num_threads`` (a pool's share of the cores),
    else :func:`robustfusion.runner.resources.auto_num_threads`; the previous count is restored after.

    Under ``torchrun`` (a process group initialised, e.g. by ``robustfusion train``) every rank
    calls this with the same arguments and trains its shard of each batch; rank 0 alone writes the
    run directory (its path is broadcast to the others), and every rank returns the same
    :class:`Run` once rank 0 has finished writing.
    """
    with torch_threads(cfg.train.num_threads or num_threads):
        return _train_run(cfg, out, run_dir, resume, on_epoch_end, data)


def _train_run(cfg: DictConfig, out, run_dir, resume: bool, on_epoch_end, data: PreparedData | None) -> Run:
    seed_everything(cfg.seed)
    if resume:
        if run_dir is None:
            raise ValueError("train_run(resume=True) needs run_dir")
        run_dir = Path(run_dir)
        data = prepare_data(cfg, data.raw if data is not None else None, _standardizer_of(run_dir))
    elif data is None:
        data = prepare_data(cfg)
    splits = data.splits
    for split in ("train", "valid"):
        if split not in splits:
            raise ValueError(f"dataset {cfg.data.name!r} has no {split!r} split; found {sorted(splits)}")
    train = splits["train"]
    model = build_model(cfg, train)
    set_fallback_from_targets(model, train)
    if cfg.train.calibrate_fusion:
        check_calibratable(model)  # fail before training, not after
    calibrators = run_calibrators(cfg.train, model, train.task)  # fail before training, not after
    device = resolve_device(cfg.train.device)
    check_monitor(model, splits["valid"], cfg.train.monitor or primary_metric(train.task), device)  # before any file
    ddp.check_batches(len(train), cfg.train.batch_size)
    if cfg.train.tensorboard:
        tensorboard_writer()  # the package is there
    with contextlib.ExitStack() as held:  # one writer per run directory (robustfusion.runner.lock)
        if resume:
            if ddp.is_main():
                held.enter_context(run_lock(run_dir))
                repair_run_files(run_dir, cfg, model, device, data.standardizer)
        elif ddp.is_main():
            run_dir = create_run_dir(cfg, model, device, data.standardizer, out=out, run_dir=run_dir)
            held.enter_context(run_lock(run_dir))
        run_dir = ddp.broadcast_object(run_dir)
        try:
            result = fit(model, train, splits["valid"], cfg.train, cfg.seed, run_dir=run_dir, resume=resume,
                         on_epoch_end=on_epoch_end)
        except FloatingPointError as err:  # a one-line error; the run resumable or removed
            held.close()
            raise handle_divergence(err, run_dir, float(cfg.train.lr), created=not resume) from None
        predictor, final = _finish(cfg, model, calibrators, splits, device, result, run_dir)
    return Run(run_dir, cfg, predictor, final, data)


def _finish(cfg: DictConfig, model: torch.nn.Module, calibrators: list, splits: dict[str, MultimodalDataset],
            device, result, run_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Calibrate, score valid/test and write the run's final files; returns the (calibrated)
    predictor and ``final.json``'s content."""
    final: dict[str, Any] = {"selected_epoch": result.selected_epoch, "epochs_run": result.epochs_run,
                             "selection": cfg.train.selection, "best_value": result.best_value}
    if cfg.train.calibrate_fusion:
        final["calibration"] = calibrate_partial_fusion(model, splits["valid"], batch_size=cfg.eval.batch_size,
                                                        device=device)
    reports = fit_run_calibrators(calibrators, model, splits["valid"], batch_size=cfg.eval.batch_size, device=device)
    if cfg.train.calibrate_subsets:
        final["readout"] = reports.pop(0)
    if reports:
        final["calibrators"] = reports
    predictor = CalibratedModel(model, calibrators) if calibrators else model
    for split in ("valid", "test"):
        if split in splits:
            final[split] = evaluate_dataset(predictor, splits[split], cfg.eval.batch_size, device)
    predictor = predictor.cpu().eval()
    if ddp.is_main():
        finish_run(run_dir, model, final, calibrators)
    ddp.barrier()
    return predictor, final


def resume_run(run_dir: str | Path, on_epoch_end=None) -> Run:
    """Continue a killed run from its last complete epoch."""
    cfg = read_run_config(run_dir)
    return train_run(cfg, run_dir=run_dir, resume=True, on_epoch_end=on_epoch_end)


def load_run(run_dir: str | Path, overrides: Sequence[str] = (), data: PreparedData | None = None) -> Run:
    """A finished run read back from its directory: model, config (with ``overrides`` of
    ``data.*`` / ``eval.*`` applied) and data standardised as in training. ``data`` (raw splits
    of the same ``cfg.data``) avoids loading the dataset again."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if overrides:
        cfg = load_config(None, overrides, base=OmegaConf.to_container(cfg))
    model = build_model_from_run(run_dir)
    prepared = prepare_data(cfg, data.raw if data is not None else None, _standardizer_of(run_dir))
    return Run(run_dir, cfg, model, read_final(run_dir), prepared)


def _levels(cfg: DictConfig) -> dict[str, list[float]]:
    """``eval.levels`` as ``{protocol: rates}`` (protocols it does not name keep their default)."""
    return {p: list(rates) for p, rates in cfg.eval.levels.items()}


def evaluate_model(model, cfg: DictConfig, dataset: MultimodalDataset, oracle_dataset=None,
                   model_name: str | None = None, predictions: dict | None = None) -> list[dict]:
    """Robustness rows of ``model`` (any predictor) on ``dataset`` under ``cfg.eval``, plus the
    oracle's rows on ``oracle_dataset`` (the same split with raw features, if given). Drop
    patterns depend only on (seed, protocol, level) and the batch order, so every predictor sees
    identical patterns. ``predictions``: a dict that receives the model's per-condition
    predictions (:func:`robustfusion.robustness.evaluate`)."""
    device = resolve_device(cfg.train.device)
    rows = evaluate(model, dataset, protocols=list(cfg.eval.protocols), levels=_levels(cfg),
                    seed=cfg.seed, batch_size=cfg.eval.batch_size, dataset_name=cfg.data.name,
                    model_name=model_name or cfg.name or cfg.model.name, split=cfg.data.split,
                    keep_at_least_one=cfg.eval.keep_at_least_one, device=device, predictions=predictions)
    if oracle_dataset is not None:
        rows += oracle_rows(cfg, oracle_dataset)
    return rows


EVAL_FILES = frozenset({"robustness.csv", "robustness_aggregate.csv", "table.md", "table.tex", "plots",
                        PREDICTIONS_FILE})


def _check_eval_dir(out: Path) -> None:
    """``out`` is replaced as a whole: refuse a folder holding anything an evaluation does not write."""
    if not out.exists():
        return
    if not out.is_dir():
        raise NotADirectoryError(f"evaluate: output {out} exists and is not a directory; expected a folder to write "
                                 "robustness.csv, tables and plots into")
    foreign = sorted(p.name for p in out.iterdir()
                     if p.name not in EVAL_FILES and not (p.name.startswith(".") and p.name.endswith(".tmp")))
    plots = out / "plots"
    if plots.is_dir():
        foreign += sorted(f"plots/{p.name}" for p in plots.iterdir()
                          if not p.is_file() or p.suffix not in (".png", ".pdf", ".csv", ".tmp"))
    if foreign:
        raise FileExistsError(f"evaluate: output folder {out} holds files an evaluation does not write "
                              f"({', '.join(foreign[:5])}); it is replaced as a whole, so choose a new or empty "
                              "folder, or one written by `robustfusion evaluate`")


def evaluate_run(run_dir: str | Path, overrides: Sequence[str] = (), oracle: bool = False,
                 out: str | Path | None = None) -> tuple[Path, list[dict]]:
    """Run the robustness evaluator on a trained run; writes ``robustness.csv``,
    ``robustness_aggregate.csv``, ``table.md``, ``table.tex``, ``plots/`` and the per-condition
    predictions (``predictions.npz``, :mod:`.predictions_file`, read by ``report``) into ``out``
    (default ``RUN_DIR/eval/<split>``; ``out`` is the folder itself). ``overrides`` may change
    ``data.path``, ``data.split``, ``eval.*``. Returns ``(out, rows)``.

    The folder is written as a whole: the files go into a hidden sibling that then replaces it
    (:func:`robustfusion.io.replace_dir`), so a kill leaves the previous complete set or the new
    one, never a mix; the sibling is made before the work, so an unwritable location fails at
    once. A folder holding files of its own is refused before any work.
    """
    run = load_run(run_dir, overrides)
    split = run.cfg.data.split
    if split not in run.data.splits:
        raise ValueError(f"data.split={split!r} is not a split of {run.cfg.data.name!r}; found {sorted(run.data.splits)}")
    if oracle and run.data.raw[split].meta.get("oracle") is None:
        raise ValueError(f"evaluate --oracle: dataset {run.cfg.data.name!r} has no Bayes-optimal oracle (only the "
                         "synthetic benchmark has one); drop --oracle")
    out = Path(out) if out is not None else run.dir / "eval" / split
    _check_eval_dir(out)
    # the run's lock: not while it trains or another evaluate writes it (a read-only run needs none)
    with run_lock(run.dir, required=False), replace_dir(out) as tmp, torch_threads(run.cfg.train.num_threads):
        dataset, predictions = run.data.splits[split], {}
        rows = evaluate_model(run.model, run.cfg, dataset, oracle_dataset=run.data.raw[split] if oracle else None,
                              predictions=predictions)
        write_rows_csv(rows, tmp / "robustness.csv")
        write_predictions(tmp / PREDICTIONS_FILE, predictions, dataset.targets.numpy(), dataset.groups,
                          dataset=run.cfg.data.name, task=dataset.task, model=rows[0]["model"],
                          seed=run.cfg.seed, split=split)
        write_report(rows, tmp)
    return out, rows


def oracle_rows(cfg: DictConfig, dataset: MultimodalDataset) -> list[dict]:
    """Rows of the Bayes-optimal oracle on the same drop patterns (synthetic benchmark only);
    ``dataset`` must hold the raw (unstandardised) features the oracle's posterior is written for."""
    oracle = dataset.oracle
    if oracle is None:
        return []
    return evaluate(oracle, dataset, protocols=list(cfg.eval.protocols), levels=_levels(cfg),
                    seed=cfg.seed, batch_size=cfg.eval.batch_size, dataset_name=cfg.data.name,
                    model_name=ORACLE, split=cfg.data.split, keep_at_least_one=cfg.eval.keep_at_least_one)
