"""Markdown and LaTeX tables drawn from long-format robustness rows (never typed numbers).

One row per model, one column per modality subset (``protocol="subsets"``) or per dropping level
(sweeps, followed by the AUILC, relative-robustness and, for ``frame_rate`` over 0.0..0.9, the
mean-over-rates columns), each cell ``mean ± std`` over
seeds (just the mean when ``n == 1``). The best value of each column is marked (bold), using the
metric's direction (:func:`robustfusion.metrics.metric_direction`); rows whose model is
``"oracle"`` (the synthetic benchmark's Bayes-optimal predictor) are never marked and come last.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from robustfusion.metrics import metric_direction
from robustfusion.reporting._slice import Slice, column_label, select
from robustfusion.results import ORACLE

__all__ = ["best_models", "format_cell", "latex_table", "markdown_table"]


def best_models(sl: Slice) -> dict[object, set[str]]:
    """``{column: {models holding the best mean}}`` (ties all marked; oracle and NaN excluded)."""
    higher = metric_direction(sl.metric) == "max"
    out: dict[object, set[str]] = {}
    for col in sl.columns:
        vals = {m: sl.mean(m, col) for m in sl.models if m != ORACLE}
        vals = {m: v for m, v in vals.items() if not math.isnan(v)}
        if not vals:
            out[col] = set()
            continue
        best = max(vals.values()) if higher else min(vals.values())
        out[col] = {m for m, v in vals.items() if abs(v - best) <= 1e-12 * max(1.0, abs(best))}
    return out


def format_cell(cell: dict | None, digits: int = 3, scale: float = 1.0, pm: str = " ± ") -> str:
    """``"mean ± std"`` (``"mean"`` when ``n == 1``; ``"–"`` when missing; ``"nan"`` if NaN)."""
    if cell is None:
        return "–"
    mean = float(cell["mean"]) * scale
    if math.isnan(mean):
        return "nan"
    if int(cell.get("n", 1)) > 1:
        return f"{mean:.{digits}f}{pm}{float(cell['std']) * scale:.{digits}f}"
    return f"{mean:.{digits}f}"


def markdown_table(rows: Iterable[dict], protocol: str, metric: str, *, dataset: str | None = None,
                   split: str | None = None, digits: int = 3, scale: float = 1.0,
                   include_summary: bool = True, models: Sequence[str] | None = None) -> str:
    """A GitHub-markdown table of ``metric`` under ``protocol`` (raw or aggregated rows).

    Args:
        rows: long-format rows (aggregated over seeds here) or :func:`aggregate` output.
        protocol: a name from :func:`robustfusion.protocols.protocol_names`.
        metric: metric name, e.g. ``"Has0_acc_2"``.
        dataset, split: which to show when the rows hold several.
        digits, scale: number format (``scale=100`` for percentages).
        include_summary: sweeps: add the AUILC, ``Rel.`` and ``Mean 0-0.9`` columns (those the
            rows hold).
        models: model order (default: order of appearance, oracle last).
    """
    sl = select(rows, protocol, metric, dataset=dataset, split=split, include_summary=include_summary,
                models=models)
    best = best_models(sl)
    arrow = "↑" if metric_direction(metric) == "max" else "↓"
    head = [f"model ({metric} {arrow})"] + [column_label(c) for c in sl.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join([":---"] + ["---:"] * len(sl.columns)) + "|"]
    for m in sl.models:
        cells = []
        for c in sl.columns:
            txt = format_cell(sl.cells.get((m, c)), digits, scale)
            cells.append(f"**{txt}**" if m in best[c] else txt)
        name = f"*{m}*" if m == ORACLE else m
        lines.append("| " + " | ".join([name] + cells) + " |")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))


def latex_table(rows: Iterable[dict], protocol: str, metric: str, *, dataset: str | None = None,
                split: str | None = None, digits: int = 3, scale: float = 1.0, include_summary: bool = True,
                models: Sequence[str] | None = None, caption: str | None = None, label: str | None = None,
                float_env: bool = False) -> str:
    """The same table as :func:`markdown_table` as a booktabs ``tabular`` (``$m \\pm s$``, best
    in ``\\mathbf``, oracle below a ``\\midrule`` in italics). ``float_env`` wraps it in a
    ``table`` environment with ``caption`` (raw LaTeX; default: an escaped description) and
    ``label``. Needs ``\\usepackage{booktabs}``."""
    sl = select(rows, protocol, metric, dataset=dataset, split=split, include_summary=include_summary,
                models=models)
    best = best_models(sl)
    arrow = r"$\uparrow$" if metric_direction(metric) == "max" else r"$\downarrow$"
    out = [r"\begin{tabular}{l" + "r" * len(sl.columns) + "}", r"\toprule",
           " & ".join([f"Model ({_tex(metric)} {arrow})"] + [_tex(column_label(c)) for c in sl.columns]) + r" \\",
           r"\midrule"]
    for m in sl.models:
        if m == ORACLE and len(sl.models) > 1:
            out.append(r"\midrule")
        cells = []
        for c in sl.columns:
            txt = format_cell(sl.cells.get((m, c)), digits, scale, pm=r" \pm ")
            if txt in ("–", "nan"):
                cells.append("--" if txt == "–" else "nan")
            elif m in best[c]:
                cells.append(f"$\\mathbf{{{txt}}}$")
            else:
                cells.append(f"${txt}$")
        name = f"\\textit{{{_tex(m)}}}" if m == ORACLE else _tex(m)
        out.append(" & ".join([name] + cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    body = "\n".join(out) + "\n"
    if not float_env:
        return body
    cap = caption if caption is not None else (
        f"{_tex(sl.dataset)} ({_tex(sl.split)}): {_tex(metric)}, protocol {_tex(protocol)}; "
        "mean $\\pm$ std over seeds.")
    lab = label or "tab:" + "-".join(re.sub(r"[^A-Za-z0-9]+", "", x) for x in (sl.dataset, protocol, metric))
    return ("\\begin{table}[t]\n\\centering\n\\small\n" + body + f"\\caption{{{cap}}}\n"
            f"\\label{{{lab}}}\n\\end{{table}}\n")
