"""`write_report`: every table and plot of a set of robustness rows in one call."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from robustfusion.io import atomic_write_text
from robustfusion.metrics import REPORT_METRICS
from robustfusion.protocols import SUBSETS, get_protocol, protocol_label, protocol_names
from robustfusion.reporting.comparisons import comparison_markdown
from robustfusion.reporting.interval_plot import plot_intervals
from robustfusion.reporting.plots import plot_subsets, plot_sweep
from robustfusion.reporting.tables import latex_table, markdown_table
from robustfusion.results import (
    MEAN_LEVEL,
    ORACLE,
    aggregate,
    normalise_level,
    oracle_gap_rows,
    write_rows_csv,
)

__all__ = ["default_metrics", "write_report"]


def default_metrics(metric_names: Iterable[str]) -> list[str]:
    """The report metrics (:data:`robustfusion.metrics.REPORT_METRICS`) of the task whose metrics
    the rows hold; the first metric found when none matches."""
    names = list(dict.fromkeys(metric_names))
    best: list[str] = []
    for wanted in REPORT_METRICS.values():
        hit = [m for m in wanted if m in names]
        if len(hit) > len(best):
            best = hit
    return best or names[:1]


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(s)).strip("-")


def write_report(rows: Iterable[dict], out_dir: str | Path, metrics: Sequence[str] | None = None, *,
                 digits: int = 3, scale: float = 1.0, plots: bool = True,
                 comparisons: Sequence[dict] | None = None) -> dict[str, Any]:
    """Write ``table.md``, ``table.tex``, ``robustness_aggregate.csv`` and the plots into ``out_dir``.

    For each dataset/split in the rows and each metric (default :func:`default_metrics`): the
    subsets table and bar chart, and for each sweep protocol the level table (with AUILC and
    relative robustness) and the metric-vs-level plot. When an ``"oracle"`` model is present,
    a "gap to oracle" table (model minus oracle, :func:`robustfusion.results.oracle_gap_rows`)
    follows each metric's tables. ``comparisons`` (rows of :mod:`robustfusion.comparisons`) add
    a section of differences with their intervals, marked where the interval excludes 0.

    Returns:
        ``{"markdown": str, "table_md": Path, "table_tex": Path, "aggregate_csv": Path,
        "plots": [Path of every PNG], "paths": {the four path entries}, "files": [every file
        written]}``.
    """
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("write_report: expected at least one result row, found none")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    pngs: list[Path] = []
    agg = aggregate(rows)
    files.append(write_rows_csv(agg, out_dir / "robustness_aggregate.csv"))
    gap_agg = aggregate(oracle_gap_rows(rows)) if any(r["model"] == ORACLE for r in rows) else []

    pairs = list(dict.fromkeys((r["dataset"], r["split"]) for r in agg))
    intro = ("Drawn from long-format rows; each cell is mean ± std over seeds (mean only for one seed). "
             "Bold = best per column (oracle excluded). `AUILC` = trapezoid area under the metric-vs-level "
             "curve over the full level range; `Rel.` = AUILC / (metric at 0.0 × level range).")
    if any(normalise_level(r["level"]) == MEAN_LEVEL for r in agg):
        intro += (" `Mean 0-0.9` = mean of the metric over the rates 0.0, 0.1, ..., 0.9 (LNLN's headline "
                  "number for frame dropping).")
    md = ["# Robustness report", "", intro, ""]
    tex = ["% robustfusion robustness report (needs \\usepackage{booktabs})", ""]
    for ds, split in pairs:
        here = [r for r in agg if r["dataset"] == ds and r["split"] == split]
        prefix = "" if len(pairs) == 1 else f"{_safe(ds)}_{_safe(split)}_"
        chosen = list(metrics) if metrics is not None else default_metrics(r["metric"] for r in here)
        protocols = [p for p in protocol_names()
                     if any(r["protocol"] == p for r in here)]
        md += [f"## {ds} ({split})", ""]
        tex += [f"% ===== {ds} ({split})", ""]
        for metric in chosen:
            for p in protocols:
                if not any(r["protocol"] == p and r["metric"] == metric for r in here):
                    continue
                kw = {"dataset": ds, "split": split, "digits": digits, "scale": scale}
                md += [f"### {metric}: {protocol_label(p)}", "", markdown_table(here, p, metric, **kw)]
                tex += [f"% {metric}: {p}", latex_table(here, p, metric, float_env=True, **kw)]
                gap_here = [r for r in gap_agg if r["dataset"] == ds and r["split"] == split
                            and r["protocol"] == p and r["metric"] == f"gap/{metric}"]
                if gap_here:
                    md += [f"Gap to oracle (model − oracle), {metric}, {p}:", "",
                           markdown_table(gap_here, p, f"gap/{metric}", **kw)]
                if plots:
                    stem = out_dir / "plots" / f"{prefix}{p}_{_safe(metric)}"
                    made = (plot_subsets(here, metric, stem, dataset=ds, split=split) if not get_protocol(p).is_sweep
                            else plot_sweep(here, p, metric, stem, dataset=ds, split=split))
                    files += list(made.values())
                    pngs.append(made["png"])
                    md += [f"![{metric} {p}](plots/{made['png'].name})", ""]
    if plots and any(r["protocol"] == SUBSETS and r["metric"] == "PI_width" for r in agg):
        made = plot_intervals(rows, out_dir / "plots" / "subsets_intervals")
        files += list(made.values())
        pngs.append(made["png"])
        md += ["## Prediction intervals per subset", "", f"![interval width and coverage](plots/{made['png'].name})",
               ""]
    if comparisons:
        md += ["", comparison_markdown(comparisons, metrics or default_metrics(r["metric"] for r in comparisons),
                                       digits)]
    markdown = "\n".join(md).rstrip() + "\n"
    files.append(atomic_write_text(out_dir / "table.md", markdown))
    files.append(atomic_write_text(out_dir / "table.tex", "\n".join(tex).rstrip() + "\n"))
    paths = {"table_md": out_dir / "table.md", "table_tex": out_dir / "table.tex",
             "aggregate_csv": out_dir / "robustness_aggregate.csv", "plots": pngs}
    return {"markdown": markdown, **paths, "paths": paths, "files": files}
