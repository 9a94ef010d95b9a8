"""Real-data grids: ``robustfusion reproduce <grid> --data DIR`` for the utterance-level npz layouts.

Where the reported numbers come from depends on what ``DIR`` holds (documented in the README,
"Real data"):

* ``test.npz`` present: one grid (:func:`robustfusion.runner.reproduce.reproduce` with
  ``data.path=DIR``); epochs, calibrations and the specialists' penalties are chosen on
  ``valid.npz`` (carved from ``train.npz`` by whole groups when absent), the tables are on
  ``test.npz``.
* ``valid.npz`` present, no ``test.npz`` (this project's development copies): **cross-fitting
  over the validation groups** (MOSI videos, IEMOCAP dialogues). The groups of ``valid.npz`` are
  dealt into ``folds`` folds (``data.options.crossfit_folds``); the grid runs once per fold
  ``k`` with fold ``k`` as ``test`` and the other folds as ``valid``, every model training on the
  whole ``train.npz``. Every reported number is on groups that took no part in the run's
  training, epoch selection or calibration. The parts' rows are pooled: a run of part ``k`` and
  model seed ``s`` is seed ``1000 k + s`` in the combined ``robustness.csv`` (one row per number),
  so a table's mean is the mean over folds and seeds.
* only ``train.npz``: one grid whose ``valid`` and ``test`` are carved from it by whole groups.

Each part lives in ``OUT/<part>/`` (its own runs, rows and report) and ``OUT/`` gets the combined
``robustness.csv``, ``table.md``, ``table.tex``, plots and ``timings.json``, a
``comparisons.csv`` computed on the parts' test predictions pooled (every validation group once)
and a ``grid.yaml`` naming the grid, the data directory, the folds and the overrides.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from robustfusion.comparisons import write_comparisons_csv
from robustfusion.io import atomic_write_json, atomic_write_text, replace_dir
from robustfusion.reporting import write_report
from robustfusion.results import write_rows_csv
from robustfusion.runner.grid_out import default_grid_out
from robustfusion.runner.launchers import Launcher
from robustfusion.runner.outdir import relocate
from robustfusion.runner.presets import GRIDS, Grid
from robustfusion.runner.reproduce import grid_comparisons, reproduce

__all__ = ["PART_SEED_STRIDE", "data_parts", "reproduce_on_data"]

#: seed of a pooled row = ``PART_SEED_STRIDE * part + model seed``
PART_SEED_STRIDE = 1000


def data_parts(data: str | Path, folds: int = 2) -> list[tuple[str, list[str]]]:
    """``[(part name, overrides)]`` for the directory ``data`` (module docstring): one unnamed part
    when ``test.npz`` is there or ``valid.npz`` is not, else ``fold0`` ... ``fold{folds-1}``.

    Raises:
        ValueError: ``data`` is not a directory holding ``train.npz``, or ``folds < 2`` where
            cross-fitting is needed.
    """
    root = Path(data)
    if not (root / "train.npz").is_file():
        found = sorted(p.name for p in root.iterdir()) if root.is_dir() else "no such directory"
        raise ValueError(f"--data {root}: expected a directory holding train.npz (and valid.npz / test.npz), "
                         f"found {found}")
    if (root / "test.npz").is_file() or not (root / "valid.npz").is_file():
        return [("", [])]
    if folds < 2:
        raise ValueError(f"--folds: expected >= 2 folds of the validation groups, found {folds}")
    return [(f"fold{k}", [f"data.options.crossfit_folds={folds}", f"data.options.crossfit_fold={k}"])
            for k in range(folds)]


def reproduce_on_data(name: str | Grid, data: str | Path, quick: bool = False, out: str | Path | None = None,
                      overrides: Sequence[str] = (), launcher: str | Launcher = "local", jobs: int | None = None,
                      folds: int = 2, log=None) -> dict[str, Any]:
    """Run the grid ``name`` (a name from :data:`GRIDS` or a :class:`Grid`) on the data directory ``data`` (module docstring); returns
    ``{"markdown", "paths", "rows", "timings", "parts"}`` like :func:`reproduce`, for the pooled rows.

    Raises:
        ValueError: an unknown grid, a grid of generated data (``synthetic*``), a bad ``data``.
    """
    if isinstance(name, str) and name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; known: {GRIDS.names()}")
    grid = GRIDS.get(name) if isinstance(name, str) else name
    if grid.base.get("data", {}).get("name") == "synthetic":
        raise ValueError(f"--data: grid {name!r} runs on generated data and takes no data directory; "
                         "expected a real-data grid such as mosi_utterance or iemocap_utterance")
    parts = data_parts(data, folds)
    out = Path(out) if out is not None else default_grid_out(name if isinstance(name, str) else "custom", quick)
    base = [f"data.path={Path(data).resolve()}", *overrides]
    if len(parts) == 1:
        result = reproduce(name, quick=quick, out=out, overrides=base + parts[0][1], launcher=launcher, jobs=jobs,
                           log=log)
        return {**result, "parts": [""]}
    rows: list[dict] = []
    timings: dict[str, Any] = {}
    pooled: list[dict] = []
    t0 = time.perf_counter()
    for k, (part, part_overrides) in enumerate(parts):
        result = reproduce(name, quick=quick, out=out / part, overrides=base + part_overrides, launcher=launcher,
                           jobs=jobs, log=log)
        rows += [{**r, "seed": PART_SEED_STRIDE * k + int(r["seed"])} for r in result["rows"]]
        timings[part] = result["timings"]
        pooled.append(result["predictions"])
    timings["total"] = round(time.perf_counter() - t0, 2)
    comparisons = _pooled_comparisons(pooled)
    names = tuple(p for p, _ in parts)
    with replace_dir(out, keep=names) as tmp:  # the pooled set replaced whole; the parts' folders carried over
        write_rows_csv(rows, tmp / "robustness.csv")
        write_comparisons_csv(comparisons, tmp / "comparisons.csv")
        report = write_report(rows, tmp, comparisons=comparisons)
        atomic_write_json(tmp / "timings.json", timings)
        atomic_write_text(tmp / "grid.yaml", OmegaConf.to_yaml(OmegaConf.create(
            {"name": name if isinstance(name, str) else "custom", "quick": quick, "data": str(Path(data).resolve()),
             "folds": len(parts), "overrides": list(overrides)})))
    return {"markdown": report["markdown"], "paths": relocate(report.get("paths", {}), tmp, out), "rows": rows,
            "timings": timings, "parts": list(names), "out": out, "comparisons": comparisons}


def _pooled_comparisons(parts: list[dict]) -> list[dict]:
    """``comparisons.csv`` over every part's test groups at once: each model's predictions of a
    seed concatenated over the parts (each part scores other groups), so an interval resamples
    all the validation groups and the seeds."""
    models: dict[str, dict[int, dict]] = {}
    for part in parts:
        for model, per_seed in part["models"].items():
            for seed, conds in per_seed.items():
                dest = models.setdefault(model, {}).setdefault(seed, {})
                for cond, p in conds.items():
                    dest[cond] = p if cond not in dest else np.concatenate([dest[cond], p])
    targets = np.concatenate([p["targets"] for p in parts])
    groups = [g for p in parts for g in p["groups"]]
    return grid_comparisons(models, targets, groups, parts[0]["task"])
