"""``reproduce``: run a named grid (:mod:`robustfusion.runner.presets`): train every run,
evaluate it under every protocol, add reference rows (the oracle, per-subset ridge specialists
scored by the same evaluator), write ``robustness.csv``, ``table.md``, ``table.tex`` and the plots.

Every number in the outputs comes from runs made by this call (or finished runs with an identical
config); nothing is typed in. Each dataset is loaded and standardised once per grid (once per
worker process when the runs train elsewhere) and passed down to every run.

Where the runs train is the launcher's business (:mod:`.launchers`): ``local`` (this process, or
``jobs`` > 1 spawned processes with ``cores // jobs`` torch threads each unless
``train.num_threads`` says otherwise), ``ray`` (one Ray task per run) or ``submitit`` (one SLURM
array task per run). Every launcher runs the same job, :func:`_run_job`, on the runs not yet
finished; finished runs are reused and evaluated here. This process puts every run's rows in
the serial order and adds the reference rows itself, so ``robustness.csv`` is byte-identical to
a serial run whatever the launcher. Progress goes to stderr: one line per epoch from each run
(see :mod:`.fit`) and ``run k/N (dataset, method, seed)`` with an estimate of the time left.
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from robustfusion.baselines import fit_logistic_specialists, fit_ridge_specialists
from robustfusion.comparisons import comparison_rows, write_comparisons_csv
from robustfusion.io import atomic_write_json, atomic_write_text, replace_dir
from robustfusion.metrics import REPORT_METRICS
from robustfusion.models.registry import MODELS
from robustfusion.registry import Registry
from robustfusion.reporting import write_report
from robustfusion.results import write_rows_csv
from robustfusion.runner.api import (
    build_model,
    evaluate_model,
    load_run,
    oracle_rows,
    train_run,
)
from robustfusion.runner.data_memo import PROCESS_DATA, data_key
from robustfusion.runner.grid_out import claim_grid_out, default_grid_out
from robustfusion.runner.launchers import Launcher, make_launcher
from robustfusion.runner.outdir import REPRODUCE_KEPT, prepare_result_dir, relocate
from robustfusion.runner.presets import GRIDS, METHODS, Grid, method_config
from robustfusion.runner.resources import torch_threads
from robustfusion.runner.rundir import run_name
from robustfusion.tasks import TASKS
from robustfusion.uncertainty import WEIGHTED_METRICS

__all__ = ["REFERENCES", "SPECIALISTS_LOGISTIC", "SPECIALISTS_RIDGE", "Reference", "reproduce"]

#: Model name of the per-subset ridge reference rows.
SPECIALISTS_RIDGE = "specialists_ridge"
SPECIALISTS_LOGISTIC = "specialists_logistic"


@dataclass(frozen=True)
class Reference:
    """Reference rows of a grid with ``specialists``: the rows' model ``name``, ``fit(train, valid)
    -> predictor`` (anything with ``predict(batch)``, scored by the evaluator like a model), and the
    ``tasks`` it serves."""

    name: str
    fit: Callable[[Any, Any], Any]
    tasks: tuple[str, ...]


#: The references, fitted and scored in registration order (the order of their rows).
REFERENCES: Registry[Reference] = Registry("reference")
REFERENCES.add(SPECIALISTS_RIDGE, Reference(SPECIALISTS_RIDGE, fit_ridge_specialists, TASKS))
REFERENCES.add(SPECIALISTS_LOGISTIC, Reference(SPECIALISTS_LOGISTIC, fit_logistic_specialists, ("classification",)))


def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _run_dir(out: str | Path, cfg: DictConfig) -> Path:
    """``OUT/runs/<dataset>-<method>-seed<seed>``, named like a ``train`` run."""
    return Path(out) / "runs" / run_name(cfg)


def _estimated_seconds(cfg: DictConfig) -> float:
    """A run's training time, estimated: one timed forward + backward on a training batch (after
    one untimed) times its steps per epoch times its epochs. Orders the launch longest first, so a
    long run does not start last and leave the other workers idle; the RNG state is left as found."""
    train = PROCESS_DATA.get(cfg).splits["train"]
    size = min(int(cfg.train.batch_size), len(train))
    with torch.random.fork_rng(devices=[]), torch_threads(1):
        model = build_model(cfg, train).train()
        batch = next(iter(train.batches(size)))
        for _ in range(2):
            t0 = time.perf_counter()
            model(batch).loss.backward()
            step = time.perf_counter() - t0
    return step * math.ceil(len(train) / size) * int(cfg.train.epochs)


def _run_job(method: str, seed: int, *, grid: Grid, quick: bool, overrides: Sequence[str], out: str,
             num_threads: int = 0) -> dict[str, Any]:
    """Train (or reuse) one run of the grid and evaluate it: ``{"rows", "seconds", "reused", ...}``.
    The one job of every launcher: runs in this process, a pool worker, a Ray worker or a SLURM
    array task (then with that process's data cache)."""
    cfg = method_config(grid, method, seed, quick, overrides)
    t0 = time.perf_counter()
    with torch_threads(cfg.train.num_threads or num_threads):
        data = PROCESS_DATA.get(cfg)
        run_dir = _run_dir(out, cfg)
        reused = _finished_with(run_dir, cfg)
        if reused:
            run = load_run(run_dir, data=data)
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            run = train_run(cfg, run_dir=run_dir, data=data, num_threads=num_threads)
        preds: dict = {}
        rows = evaluate_model(run.model, cfg, run.data.splits[cfg.data.split],
                              predictions=preds)
    return {"rows": rows, "seconds": round(time.perf_counter() - t0, 2), "reused": reused,
            "dataset": str(cfg.data.name), "run_dir": str(run_dir),
            "predictions": {c: p.numpy() for c, p in preds.items()}}


def reproduce(name: str | Grid | None = None, quick: bool = False, out: str | Path | None = None,
              overrides: Sequence[str] = (), log=None, jobs: int | None = None,
              launcher: str | Launcher = "local") -> dict[str, Any]:
    """Run grid ``name`` (a name from :data:`robustfusion.runner.presets.GRIDS`, default
    ``"synthetic"``, or a :class:`Grid`); returns ``{"markdown", "paths", "rows", "timings", "out"}``.

    ``launcher``: where the runs train, ``"local"``, ``"ray"``, ``"submitit"`` (made with
    :func:`robustfusion.runner.launchers.make_launcher`'s defaults and ``jobs``) or a
    :class:`~robustfusion.runner.launchers.Launcher` made with its options.
    ``jobs``: how many runs train at once (local: the process pool's size, default 1 = in this
    process). ``log``: where progress messages go (default: stderr, flushed at once).
    ``out``: default ``results/<name>`` (``results/<name>-quick`` with ``quick``); a folder holding
    another grid's results is refused (:mod:`robustfusion.runner.grid_out`).
    """
    log = log or _log_stderr
    if jobs is not None and jobs < 1:
        raise ValueError(f"reproduce: jobs must be >= 1, found {jobs}")
    if isinstance(launcher, str):
        launcher = make_launcher(launcher, jobs=jobs)
    elif jobs is not None:
        raise ValueError(f"reproduce: expected jobs inside the Launcher (make_launcher(..., jobs={jobs})), "
                         "found both")
    if isinstance(name, Grid):
        grid, name = name, name.description or "custom"
    else:
        name = name or "synthetic"
        if name not in GRIDS:
            raise ValueError(f"unknown grid {name!r}; known: {GRIDS.names()}")
        grid = GRIDS.get(name)
    methods = grid.quick.get("methods", grid.methods) if quick else grid.methods
    seeds = grid.quick.get("seeds", grid.seeds) if quick else grid.seeds
    skipped = [m for m in methods if METHODS.get(m).settings["model"]["name"] not in MODELS]
    methods = [m for m in methods if m not in skipped]
    if skipped:
        log(f"[reproduce] skipping methods whose model is not registered: {skipped}")
    out = Path(out) if out is not None else default_grid_out(re.sub(r"[^\w.-]+", "_", name), quick)
    out = prepare_result_dir(out, "reproduce")  # replaced whole at the end; a killed swap's runs put back
    claim_grid_out(out, name, quick, overrides, methods, seeds)
    try:
        return _reproduce(grid, name, methods, seeds, quick, out, list(overrides), log, launcher)
    finally:
        PROCESS_DATA.clear()  # one load + standardisation per dataset config and call


def _reproduce(grid: Grid, name: str, methods: list[str], seeds: list[int], quick: bool, out: Path,
               overrides: list[str], log, launcher: Launcher) -> dict[str, Any]:
    todo = [(seed, method) for seed in seeds for method in methods]
    job = functools.partial(_run_job, grid=grid, quick=quick, overrides=tuple(overrides),
                            out=str(out.resolve()))  # absolute: the job may run in another directory
    done: dict[tuple[int, str], dict[str, Any]] = {}
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    launched = {"t0": t_all, "done": 0.0, "total": 0.0}  # in estimated seconds (1 per run without estimates)
    cost: dict[str, float] = {}

    def finished(key: tuple[int, str], result: dict[str, Any]) -> None:
        done[key] = result
        seed, method = key
        timings[f"{method}/seed{seed}"] = result["seconds"]
        k, n = len(done), len(todo)
        what = (f"reused finished run {result['run_dir']} (same config)" if result["reused"]
                else f"trained and evaluated in {result['seconds']:.1f} s")
        left = ""
        if not result["reused"]:
            launched["done"] += cost.get(method, 1.0)
            if k < n:  # the work left, at the pace of the work done so far
                pace = (time.perf_counter() - launched["t0"]) / launched["done"]
                left = f"; about {_duration(pace * (launched['total'] - launched['done']))} left"
        log(f"[reproduce] run {k}/{n} ({result['dataset']}, {method}, seed {seed}): {what}{left}")

    # finished runs are evaluated here, whatever the launcher (no queue, no worker for a reload)
    fresh = []
    for seed, method in todo:
        cfg = method_config(grid, method, seed, quick, overrides)
        if _finished_with(_run_dir(out, cfg), cfg):
            finished((seed, method), job(method, seed))
        else:
            fresh.append((seed, method))
    if fresh and launcher.concurrent:
        cost.update({m: _estimated_seconds(method_config(grid, m, seeds[0], quick, overrides))
                     for m in {m for _, m in fresh}})
        fresh.sort(key=lambda job: -cost[job[1]])  # stable: ties keep the serial order
    if fresh:
        launched["t0"], launched["total"] = time.perf_counter(), sum(cost.get(m, 1.0) for _, m in fresh)
        launcher.run(job, [(method, seed) for seed, method in fresh], lambda i, result: finished(fresh[i], result),
                     out=out, log=lambda message: log(f"[reproduce] {message}"))

    rows: list[dict] = []
    predictions: dict[str, dict[int, dict]] = {}  # model -> seed -> condition -> [N, K]
    specialists: dict[tuple[str, str], Any] = {}
    for seed in seeds:  # the serial order, whatever order the runs finished in
        for method in methods:
            rows += done[(seed, method)]["rows"]
            predictions.setdefault(done[(seed, method)]["rows"][0]["model"], {})[seed] = \
                done[(seed, method)]["predictions"]
        ref_cfg = method_config(grid, methods[0], seed, quick, overrides)
        rows += _reference_rows(grid, ref_cfg, seed, specialists, predictions)
    test = PROCESS_DATA.get(ref_cfg).splits[ref_cfg.data.split]
    comparisons = grid_comparisons(predictions, test.targets.numpy(), test.groups, test.task)
    timings["total"] = round(time.perf_counter() - t_all, 2)
    with replace_dir(out, keep=REPRODUCE_KEPT) as tmp:  # the old outputs or the new ones, never a mix
        write_rows_csv(rows, tmp / "robustness.csv")
        write_comparisons_csv(comparisons, tmp / "comparisons.csv")
        report = write_report(rows, tmp, comparisons=comparisons)  # table.md, table.tex, plots
        atomic_write_json(tmp / "timings.json", timings)
        atomic_write_text(tmp / "grid.yaml", OmegaConf.to_yaml(OmegaConf.create(
            {"name": name, "quick": quick, "methods": methods, "seeds": seeds, "overrides": overrides})))
    return {"markdown": report["markdown"], "paths": relocate(report.get("paths", {}), tmp, out), "rows": rows,
            "timings": timings, "out": out, "comparisons": comparisons,
            "predictions": {"models": predictions, "targets": test.targets.numpy(), "groups": list(test.groups),
                            "task": test.task}}


def _reference_rows(grid: Grid, ref_cfg: DictConfig, seed: int, specialists: dict, predictions: dict) -> list[dict]:
    """The oracle's and the per-subset specialists' rows of one seed (the specialists fitted once per
    data config and kept in ``specialists``); their predictions go into ``predictions``."""
    rows: list[dict] = []
    with torch_threads(ref_cfg.train.num_threads):
        data = PROCESS_DATA.get(ref_cfg)
        if grid.oracle:
            rows += oracle_rows(ref_cfg, data.raw[ref_cfg.data.split])
        if not grid.specialists:
            return rows
        for reference in (REFERENCES.get(name) for name in REFERENCES.ordered()):
            if data.splits["train"].task not in reference.tasks:
                continue
            key = (reference.name, data_key(ref_cfg))
            if key not in specialists:  # closed form / deterministic: the same fit for every seed
                specialists[key] = reference.fit(data.splits["train"], data.splits["valid"])
            ref_preds: dict = {}
            rows += evaluate_model(specialists[key], ref_cfg, data.splits[ref_cfg.data.split],
                                   model_name=reference.name, predictions=ref_preds)
            predictions.setdefault(reference.name, {})[seed] = {c: p.numpy() for c, p in ref_preds.items()}
    return rows


#: the comparison reference of a grid, the first of these it has (per-subset specialists first)
COMPARISON_REFERENCES = (SPECIALISTS_LOGISTIC, SPECIALISTS_RIDGE, "late_fusion")


def grid_comparisons(predictions: dict[str, dict[int, dict]], targets, groups, task: str) -> list[dict]:
    """``comparisons.csv`` rows of a grid: every model against the first of
    :data:`COMPARISON_REFERENCES` it has (none: the first model), effective robustness against
    ``late_fusion``, on the task's report metrics, resampling the test ``groups`` and the seeds."""
    reference = next((r for r in COMPARISON_REFERENCES if r in predictions), next(iter(predictions)))
    metrics = [m for m in REPORT_METRICS[task] if m in WEIGHTED_METRICS]
    if len(predictions) < 2 or not metrics:
        return []
    return comparison_rows(predictions, targets, groups, reference, metrics, late_fusion="late_fusion")


def _comparable(cfg: DictConfig) -> str:
    """``cfg`` as YAML without the settings that cannot change a run's results
    (``train.num_threads``: measured bit-identical with 1 and 2 threads)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    if isinstance(data.get("train"), dict):
        data["train"].pop("num_threads", None)
    return OmegaConf.to_yaml(OmegaConf.create(data))


def _finished_with(run_dir: Path, cfg: DictConfig) -> bool:
    """A finished run directory trained with exactly ``cfg`` (anything else is retrained; the
    thread count is not compared)."""
    if not (run_dir / "model.safetensors").is_file() or not (run_dir / "config.yaml").is_file():
        return False
    return _comparable(OmegaConf.load(run_dir / "config.yaml")) == _comparable(cfg)
