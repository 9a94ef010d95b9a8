"""``reproduce``: run a named grid (:mod:`robustfusion.runner.presets`): train every run,
evaluate it under every protocol, add reference rows (the oracle, per-subset ridge specialists
scored by the same evaluator), write ``robustness.csv``, ``table.md``, ``table.tex`` and the plots.

Every number in the outputs comes from runs made by this call (or finished runs with an identical
config); nothing is typed in. Each dataset is loaded and standardised once per grid (once per
worker process with ``jobs`` > 1) and passed down to every run.

``jobs`` > 1 trains and evaluates the runs on a local pool of ``jobs`` processes (``spawn``), each
with ``cores // jobs`` torch threads (unless ``train.num_threads`` says otherwise); the parent puts
every run's rows in the serial order and adds the reference rows itself, so ``robustness.csv``
is byte-identical to a serial run. Progress goes to stderr: one line per epoch from each run
(see :mod:`.fit`) and ``run k/N (dataset, method, seed)`` with an estimate of the time left.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robustfusion.baselines import fit_logistic_specialists, fit_ridge_specialists
from robustfusion.io import atomic_write_json, atomic_write_text
from robustfusion.models.registry import MODELS
from robustfusion.reporting import write_report
from robustfusion.results import write_rows_csv
from robustfusion.runner.api import (
    PreparedData,
    evaluate_model,
    load_run,
    oracle_rows,
    prepare_data,
    train_run,
)
from robustfusion.runner.fit import auto_num_threads, torch_threads
from robustfusion.runner.presets import GRIDS, METHODS, Grid, method_config
from robustfusion.tasks import TASKS

__all__ = ["SPECIALISTS_RIDGE", "reproduce"]

#: Model name of the per-subset ridge reference rows.
SPECIALISTS_RIDGE = "specialists_ridge"
SPECIALISTS_LOGISTIC = "specialists_logistic"
#: Reference rows of a grid with ``specialists``: (model name, fit(train, valid) -> predictor, tasks).
REFERENCES = ((SPECIALISTS_RIDGE, fit_ridge_specialists, TASKS),
              (SPECIALISTS_LOGISTIC, fit_logistic_specialists, ("classification",)))


def _data_key(cfg: DictConfig) -> str:
    return json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True, default=str)


def _log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


#: prepared datasets of this process, by data config (a pool worker keeps its own across runs)
_DATA_CACHE: dict[str, PreparedData] = {}


def _prepared(cfg: DictConfig, cache: dict[str, PreparedData]) -> PreparedData:
    key = _data_key(cfg)
    if key not in cache:
        cache[key] = prepare_data(cfg)
    return cache[key]


def _run_job(grid: Grid, method: str, seed: int, quick: bool, overrides: Sequence[str], out: str,
             num_threads: int = 0, cache: dict[str, PreparedData] | None = None) -> dict[str, Any]:
    """Train (or reuse) one run of the grid and evaluate it: ``{"rows", "seconds", "reused"}``.
    Runs in the caller's process or in a pool worker (then with the worker's data cache)."""
    cfg = method_config(grid, method, seed, quick, overrides)
    t0 = time.perf_counter()
    with torch_threads(cfg.train.num_threads or num_threads):
        data = _prepared(cfg, _DATA_CACHE if cache is None else cache)
        run_dir = Path(out) / "runs" / f"{method}-seed{seed}"
        reused = _finished_with(run_dir, cfg)
        if reused:
            run = load_run(run_dir, data=data)
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            run = train_run(cfg, run_dir=run_dir, data=data, num_threads=num_threads)
        rows = evaluate_model(run.model, cfg, run.data.splits[cfg.data.split])
    return {"rows": rows, "seconds": round(time.perf_counter() - t0, 2), "reused": reused,
            "dataset": str(cfg.data.name), "run_dir": str(run_dir)}


def reproduce(name: str | Grid | None = None, quick: bool = False, out: str | Path = "results",
              overrides: Sequence[str] = (), log=None, jobs: int = 1) -> dict[str, Any]:
    """Run grid ``name`` (a name from :data:`robustfusion.runner.presets.GRIDS`, default
    ``"synthetic"``, or a :class:`Grid`); returns ``{"markdown", "paths", "rows", "timings"}``.

    ``jobs``: how many runs train at once, in a local process pool (1: in this process).
    ``log``: where progress messages go (default: stderr, flushed at once).
    """
    log = log or _log_stderr
    if jobs < 1:
        raise ValueError(f"reproduce: jobs must be >= 1, found {jobs}")
    if isinstance(name, Grid):
        grid, name = name, name.description or "custom"
    else:
        name = name or "synthetic"
        if name not in GRIDS:
            raise ValueError(f"unknown grid {name!r}; known: {sorted(GRIDS)}")
        grid = GRIDS[name]
    methods = grid.quick.get("methods", grid.methods) if quick else grid.methods
    seeds = grid.quick.get("seeds", grid.seeds) if quick else grid.seeds
    skipped = [m for m in methods if METHODS[m]["model"]["name"] not in MODELS]
    methods = [m for m in methods if m not in skipped]
    if skipped:
        log(f"[reproduce] skipping methods whose model is not registered: {skipped}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prepared: dict[str, PreparedData] = {}  # one load + standardisation per dataset config

    todo = [(seed, method) for seed in seeds for method in methods]
    done: dict[tuple[int, str], dict[str, Any]] = {}
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    def finished(key: tuple[int, str], result: dict[str, Any]) -> None:
        done[key] = result
        seed, method = key
        timings[f"{method}/seed{seed}"] = result["seconds"]
        k, n = len(done), len(todo)
        what = (f"reused finished run {result['run_dir']} (same config)" if result["reused"]
                else f"trained and evaluated in {result['seconds']:.1f} s")
        left = f"; about {_duration((time.perf_counter() - t_all) / k * (n - k))} left" if k < n else ""
        log(f"[reproduce] run {k}/{n} ({result['dataset']}, {method}, seed {seed}): {what}{left}")

    workers = min(jobs, len(todo))
    if workers > 1:
        threads = auto_num_threads(workers)
        log(f"[reproduce] {len(todo)} runs on {workers} processes, {threads} torch thread(s) each")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            pending = {pool.submit(_run_job, grid, method, seed, quick, list(overrides), str(out), threads):
                       (seed, method) for seed, method in todo}
            while pending:
                ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(ready, key=lambda f: todo.index(pending[f])):
                    finished(pending.pop(fut), fut.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        for seed, method in todo:
            finished((seed, method), _run_job(grid, method, seed, quick, overrides, str(out), cache=prepared))

    rows: list[dict] = []
    specialists: dict[tuple[str, str], Any] = {}
    for seed in seeds:  # the serial order, whatever order the runs finished in
        for method in methods:
            rows += done[(seed, method)]["rows"]
        ref_cfg = method_config(grid, methods[0], seed, quick, overrides)
        with torch_threads(ref_cfg.train.num_threads):
            data = _prepared(ref_cfg, prepared)
            if grid.oracle:
                rows += oracle_rows(ref_cfg, data.raw[ref_cfg.data.split])
            if grid.specialists:
                for model_name, fit_references, tasks in REFERENCES:
                    if data.splits["train"].task not in tasks:
                        continue
                    key = (model_name, _data_key(ref_cfg))
                    if key not in specialists:  # closed form / deterministic: the same fit for every seed
                        specialists[key] = fit_references(data.splits["train"], data.splits["valid"])
                    rows += evaluate_model(specialists[key], ref_cfg, data.splits[ref_cfg.data.split],
                                           model_name=model_name)
    timings["total"] = round(time.perf_counter() - t_all, 2)
    write_rows_csv(rows, out / "robustness.csv")
    report = write_report(rows, out)  # table.md, table.tex, plots
    atomic_write_json(out / "timings.json", timings)
    atomic_write_text(out / "grid.yaml", OmegaConf.to_yaml(OmegaConf.create(
        {"name": name, "quick": quick, "methods": methods, "seeds": seeds, "overrides": list(overrides)})))
    return {"markdown": report["markdown"], "paths": report.get("paths", {}), "rows": rows, "timings": timings}


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
