"""Interval width and coverage per modality subset: what a run's prediction intervals promise
(nominal coverage) and what they deliver, subset by subset.

Read it left to right: the left panel is the mean interval width under each subset (narrower
is more informative; with monotone intervals a subset is never narrower than a superset of it);
the right panel is the share of test targets inside the interval, with the nominal level as a
dashed line. A bar well under the line is a subset whose intervals are too narrow for the test
data (the validation data it was calibrated on was easier).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from robustfusion.protocols import SUBSETS
from robustfusion.reporting.plots import FORMATS, _figure, _save
from robustfusion.results import aggregate

__all__ = ["plot_intervals"]


def plot_intervals(rows: Iterable[dict], path: str | Path, *, nominal: float = 0.9,
                   formats=FORMATS) -> dict[str, Path]:
    """Grouped bars of ``PI_width`` and ``PI_coverage`` under ``subsets`` (mean over seeds), one
    colour per model; written as PNG / PDF with the plotted slice as CSV (same stem).

    Raises:
        ValueError: no ``subsets`` row carries ``PI_width`` and ``PI_coverage``.
    """
    agg = [r for r in aggregate(r for r in rows if r["protocol"] == SUBSETS
                                and r["metric"] in ("PI_width", "PI_coverage"))]
    if not agg:
        raise ValueError("plot_intervals: expected subsets rows with PI_width and PI_coverage, found none "
                         "(train with train.calibrators=[{name: conformal_intervals}])")
    models = list(dict.fromkeys(r["model"] for r in agg))
    subsets = list(dict.fromkeys(r["subset"] for r in agg))
    value = {(r["model"], r["subset"], r["metric"]): r["mean"] for r in agg}
    fig, ax = _figure((11, 3.6))
    fig.delaxes(ax)
    axes = fig.subplots(1, 2)
    width = 0.8 / len(models)
    for ax, metric, title in zip(axes, ("PI_width", "PI_coverage"), ("mean interval width", "coverage")):
        for i, m in enumerate(models):
            xs = [j + (i - (len(models) - 1) / 2) * width for j in range(len(subsets))]
            ax.bar(xs, [value.get((m, s, metric), float("nan")) for s in subsets], width, label=m, color=f"C{i % 10}")
        ax.set_xticks(range(len(subsets)), subsets, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
    axes[1].axhline(nominal, color="black", linestyle="--", linewidth=1, label=f"nominal {nominal:g}")
    axes[1].set_ylim(0, 1.05)
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path, agg, formats)
