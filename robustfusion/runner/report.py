"""``robustfusion report DIR ... --out OUT``: the results of many runs in one set of tables.

Every ``robustness.csv`` under the ``DIR`` s is merged into ``OUT/robustness.csv``, ``table.md``,
``table.tex`` and the plots. Where the evaluations kept their predictions (``predictions.npz``
beside ``robustness.csv``, written by ``robustfusion evaluate``), ``OUT/comparisons.csv`` compares
every model with a reference, with bootstrap intervals over the test groups and the seeds
(:func:`robustfusion.runner.reproduce.grid_comparisons`), and ``table.md`` shows the differences.
Comparisons need every kept evaluation to be on one test set (same dataset, split and targets)
and each (model, seed) once; otherwise the report says why it has none. A folder with no kept
predictions but a ``comparisons.csv`` of its own (a ``reproduce`` folder) passes that file on
when it is the only source.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robustfusion.comparisons import read_comparisons_csv, write_comparisons_csv
from robustfusion.io import atomic_write_json, replace_dir
from robustfusion.reporting import write_report
from robustfusion.results import read_rows_csv, write_rows_csv
from robustfusion.runner.outdir import prepare_result_dir, relocate
from robustfusion.runner.predictions_file import PREDICTIONS_FILE, EvalPredictions, read_predictions
from robustfusion.runner.reproduce import grid_comparisons

__all__ = ["report_comparisons", "report_dirs"]


def _robustness_files(dirs: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        d = Path(d)
        found = [d] if d.is_file() else sorted(d.rglob("robustness.csv"))
        if not found:
            raise FileNotFoundError(f"{d}: no robustness.csv found (run `robustfusion evaluate RUN_DIR` first)")
        files += found
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


def report_comparisons(kept: Sequence[EvalPredictions]) -> tuple[list[dict], str | None]:
    """``(comparisons rows, None)``, or ``([], why there are none)``."""
    if not kept:
        return [], "no evaluation kept its predictions (predictions.npz)"
    first = kept[0]
    for p in kept[1:]:
        same = (p.dataset, p.split, p.task) == (first.dataset, first.split, first.task) and \
            p.targets.shape == first.targets.shape and np.array_equal(p.targets, first.targets)
        if not same:
            return [], (f"the evaluations are on different test sets ({first.model} seed {first.seed}: "
                        f"{first.dataset}/{first.split}, {p.model} seed {p.seed}: {p.dataset}/{p.split} or other targets)")
    models: dict[str, dict[int, dict]] = {}
    for p in kept:
        if p.seed in models.setdefault(p.model, {}):
            return [], f"model {p.model!r} has two evaluations with seed {p.seed} (give the runs distinct names)"
        models[p.model][p.seed] = p.predictions
    if len(models) < 2:
        return [], f"only one model ({next(iter(models))}) kept its predictions"
    return grid_comparisons(models, first.targets, first.groups, first.task), None


def report_dirs(dirs: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Collect every ``robustness.csv`` under ``dirs`` and write tables, plots and (where the
    predictions were kept) ``comparisons.csv`` into ``out``.

    ``out`` is replaced whole (:mod:`robustfusion.runner.outdir`): built in a hidden sibling and
    swapped in, so a kill leaves the previous report or the new one; a folder holding files a
    report does not write is refused before any work."""
    out = prepare_result_dir(out, "report")
    files = _robustness_files(dirs)
    rows = [row for f in files for row in read_rows_csv(f)]
    kept = [read_predictions(f.parent / PREDICTIONS_FILE) for f in files if (f.parent / PREDICTIONS_FILE).is_file()]
    comparisons, why = report_comparisons(kept)
    if not kept and len(files) == 1 and (files[0].parent / "comparisons.csv").is_file():
        comparisons, why = read_comparisons_csv(files[0].parent / "comparisons.csv"), None
    if why:
        print(f"report: no comparisons.csv: {why}", file=sys.stderr)
    with replace_dir(out) as tmp:  # the old set or the new one, never a mix (robustfusion.runner.outdir)
        write_rows_csv(rows, tmp / "robustness.csv")
        if comparisons:
            write_comparisons_csv(comparisons, tmp / "comparisons.csv")
        result = write_report(rows, tmp, comparisons=comparisons or None)
        atomic_write_json(tmp / "sources.json", [str(f) for f in files])
    return {**relocate(result, tmp, out), "comparisons": comparisons}
