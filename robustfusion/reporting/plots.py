"""Plots drawn from long-format robustness rows: metric vs dropping level (±std band per model)
and grouped bars over modality subsets.

matplotlib is imported lazily with the non-interactive Agg backend (no display needed). Each
plot is written as PNG and PDF, and the exact aggregated slice it shows is saved beside it as
CSV (same stem), all atomically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from robustfusion.io import atomic_write
from robustfusion.metrics import metric_direction
from robustfusion.protocols import (
    SUBSETS,
    get_protocol,
    protocol_label,
    protocol_names,
    sweep_protocols,
)
from robustfusion.reporting._slice import METRIC_LABELS, select
from robustfusion.results import AUILC_LEVEL, ORACLE, write_rows_csv

__all__ = ["plot_subsets", "plot_sweep"]

FORMATS = ("png", "pdf")


def _figure(figsize: tuple[float, float]):
    """A figure on an Agg canvas, without pyplot (no global backend switch, nothing to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, path: str | Path, slice_rows: list[dict], formats: Sequence[str]) -> dict[str, Path]:
    stem = Path(path)
    if stem.suffix.lower() in (".png", ".pdf", ".svg", ".csv"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for fmt in formats:
        target = stem.with_name(stem.name + f".{fmt}")
        out[fmt] = atomic_write(target, lambda tmp, f=fmt: fig.savefig(tmp, format=f, dpi=150, bbox_inches="tight"))
    out["csv"] = write_rows_csv(slice_rows, stem.with_name(stem.name + ".csv"))
    return out


def _style(i: int, model: str):
    if model == ORACLE:
        return {"color": "black", "linestyle": "--", "marker": None}
    markers = "osD^vP*X"
    return {"color": f"C{i % 10}", "linestyle": "-", "marker": markers[i % len(markers)]}


def plot_sweep(rows: Iterable[dict], protocol: str, metric: str, path: str | Path, *,
               dataset: str | None = None, split: str | None = None,
               formats: Sequence[str] = FORMATS, title: str | None = None) -> dict[str, Path]:
    """Metric vs dropping level, one line per model with a ±std band over seeds (oracle dashed).

    Args:
        rows: raw or aggregated long-format rows.
        protocol: a sweep protocol (:func:`robustfusion.protocols.sweep_protocols`).
        metric: metric name.
        path: output stem (``.png``/``.pdf`` suffix optional); writes ``stem.png``,
            ``stem.pdf`` and ``stem.csv`` (the aggregated rows drawn).

    Returns:
        ``{"png": path, "pdf": path, "csv": path}``.
    """
    if protocol in protocol_names() and not get_protocol(protocol).is_sweep:
        raise ValueError(f"plot_sweep: expected a sweep protocol {sweep_protocols()}, found {protocol!r}; "
                         "use plot_subsets")
    sl = select(rows, protocol, metric, dataset=dataset, split=split, include_summary=True)
    levels = [c for c in sl.columns if isinstance(c, float)]
    if not levels:
        raise ValueError(f"plot_sweep: no numeric levels for {protocol}/{metric}")
    fig, ax = _figure((6.4, 4.0))
    for i, m in enumerate(sl.models):
        pts = [(lv, sl.cells[(m, lv)]) for lv in levels if (m, lv) in sl.cells]
        if not pts:
            continue
        x = [lv for lv, _ in pts]
        y = [float(c["mean"]) for _, c in pts]
        s = [float(c["std"]) for _, c in pts]
        st = _style(i, m)
        area = sl.cells.get((m, AUILC_LEVEL))
        label = m if area is None or math.isnan(float(area["mean"])) else f"{m} (AUILC {float(area['mean']):.3f})"
        n = max(int(c.get("n", 1)) for _, c in pts)
        if n > 1:
            label += f", n={n}"
        ax.plot(x, y, label=label, linewidth=1.8, markersize=4, **st)
        if any(v > 0 for v in s):
            ax.fill_between(x, [a - b for a, b in zip(y, s)], [a + b for a, b in zip(y, s)],
                            color=st["color"], alpha=0.15 if m != ORACLE else 0.08, linewidth=0)
    ax.set_xlabel(protocol_label(protocol))
    arrow = "higher is better" if metric_direction(metric) == "max" else "lower is better"
    ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)}\n({arrow})")
    ax.set_xlim(min(levels), max(levels))
    ax.grid(True, alpha=0.3)
    short = get_protocol(protocol).short_label if protocol in protocol_names() else protocol
    ax.set_title(title or f"{sl.dataset} ({sl.split}): {metric} vs {short}", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
              title="model (mean ± std over seeds)", title_fontsize=8)
    return _save(fig, path, sl.rows, formats)


def plot_subsets(rows: Iterable[dict], metric: str, path: str | Path, *, dataset: str | None = None,
                 split: str | None = None, formats: Sequence[str] = FORMATS,
                 title: str | None = None) -> dict[str, Path]:
    """Grouped bars: one group per modality subset, one bar per model (error bar = std over
    seeds; oracle hatched grey, last). Writes ``stem.png``, ``stem.pdf``, ``stem.csv``."""
    sl = select(rows, SUBSETS, metric, dataset=dataset, split=split)
    n_models = len(sl.models)
    width = 0.8 / max(n_models, 1)
    fig, ax = _figure((max(6.4, 0.75 * len(sl.columns) * max(1, n_models) ** 0.5 + 2), 4.2))
    for i, m in enumerate(sl.models):
        xs, ys, es = [], [], []
        for j, c in enumerate(sl.columns):
            cell = sl.cells.get((m, c))
            if cell is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(float(cell["mean"]))
            es.append(float(cell["std"]) if int(cell.get("n", 1)) > 1 else 0.0)
        kw = ({"color": "0.75", "hatch": "//", "edgecolor": "0.3"} if m == ORACLE
              else {"color": f"C{i % 10}"})
        ax.bar(xs, ys, width=width * 0.95, yerr=es if any(es) else None, capsize=2, label=m,
               error_kw={"elinewidth": 0.8}, **kw)
    ax.set_xticks(range(len(sl.columns)))
    ax.set_xticklabels(sl.columns, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("modalities present at test time")
    arrow = "higher is better" if metric_direction(metric) == "max" else "lower is better"
    ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)}\n({arrow})")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(title or f"{sl.dataset} ({sl.split}): {metric} per modality subset", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False, title="model",
              title_fontsize=8)
    return _save(fig, path, sl.rows, formats)
