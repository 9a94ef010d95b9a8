"""``reproduce``: run a named grid (:mod:`robustfusion.runner.presets`): train every run,
evaluate it under every protocol, add reference rows (the oracle, per-subset ridge specialists
scored by the same evaluator), write ``robustness.csv``, ``table.md``, ``table.tex`` and the plots.

Every number in the outputs comes from runs made by this call (or finished runs with an identical
config); nothing is typed in. Each dataset is loaded and standardised once per grid and passed
down to every run.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robustfusion.baselines import fit_ridge_specialists
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
from robustfusion.runner.presets import GRIDS, METHODS, Grid, method_config

__all__ = ["SPECIALISTS_RIDGE", "reproduce"]

#: Model name of the per-subset ridge reference rows.
SPECIALISTS_RIDGE = "specialists_ridge"


def _data_key(cfg: DictConfig) -> str:
    return json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True, default=str)


def reproduce(name: str | Grid | None = None, quick: bool = False, out: str | Path = "results",
              overrides: Sequence[str] = (), log=print) -> dict[str, Any]:
    """Run grid ``name`` (a name from :data:`robustfusion.runner.presets.GRIDS`, default
    ``"synthetic"``, or a :class:`Grid`); returns ``{"markdown", "paths", "rows", "timings"}``."""
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

    def data_for(cfg: DictConfig) -> PreparedData:
        key = _data_key(cfg)
        if key not in prepared:
            prepared[key] = prepare_data(cfg)
        return prepared[key]

    rows: list[dict] = []
    timings: dict[str, float] = {}
    specialists: dict[str, Any] = {}
    t_all = time.perf_counter()
    for seed in seeds:
        for method in methods:
            cfg = method_config(grid, method, seed, quick, overrides)
            t0 = time.perf_counter()
            run_dir = out / "runs" / f"{method}-seed{seed}"
            data = data_for(cfg)
            if _finished_with(run_dir, cfg):
                log(f"[reproduce] {method} seed {seed}: reusing finished run {run_dir} (same config)")
                run = load_run(run_dir, data=data)
            else:
                if run_dir.exists():
                    shutil.rmtree(run_dir)
                run = train_run(cfg, run_dir=run_dir, data=data)
            rows += evaluate_model(run.model, cfg, run.data.splits[cfg.data.split])
            timings[f"{method}/seed{seed}"] = round(time.perf_counter() - t0, 2)
            log(f"[reproduce] {method} seed {seed}: {timings[f'{method}/seed{seed}']:.1f}s")
        ref_cfg = method_config(grid, methods[0], seed, quick, overrides)
        data = data_for(ref_cfg)
        if grid.oracle:
            rows += oracle_rows(ref_cfg, data.raw[ref_cfg.data.split])
        if grid.specialists:
            key = _data_key(ref_cfg)
            if key not in specialists:  # closed-form ridge: the same fit for every seed
                specialists[key] = fit_ridge_specialists(data.splits["train"], data.splits["valid"])
            rows += evaluate_model(specialists[key], ref_cfg, data.splits[ref_cfg.data.split],
                                   model_name=SPECIALISTS_RIDGE)
    timings["total"] = round(time.perf_counter() - t_all, 2)
    write_rows_csv(rows, out / "robustness.csv")
    report = write_report(rows, out)  # table.md, table.tex, plots
    atomic_write_json(out / "timings.json", timings)
    atomic_write_text(out / "grid.yaml", OmegaConf.to_yaml(OmegaConf.create(
        {"name": name, "quick": quick, "methods": methods, "seeds": seeds, "overrides": list(overrides)})))
    return {"markdown": report["markdown"], "paths": report.get("paths", {}), "rows": rows, "timings": timings}


def _finished_with(run_dir: Path, cfg: DictConfig) -> bool:
    """A finished run directory trained with exactly ``cfg`` (anything else is retrained)."""
    if not (run_dir / "model.safetensors").is_file() or not (run_dir / "config.yaml").is_file():
        return False
    return OmegaConf.to_yaml(OmegaConf.load(run_dir / "config.yaml")) == OmegaConf.to_yaml(cfg)
