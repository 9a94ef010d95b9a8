"""Markdown tables of ``comparisons.csv`` rows: each cell a difference and its 95% interval.

A cell reads ``-0.031 [-0.058, -0.004]*``: model minus reference, the bootstrap interval over
groups and seeds, and ``*`` where the interval excludes 0 (the difference is called real).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from robustfusion.protocols import SUBSETS
from robustfusion.reporting._slice import column_label

__all__ = ["comparison_markdown", "format_delta", "subset_comparison_table"]


def format_delta(row: dict, digits: int = 3) -> str:
    """``delta [lo, hi]`` with ``*`` when the interval excludes 0."""
    d, lo, hi = row["delta"], row["ci_low"], row["ci_high"]
    mark = "*" if (lo > 0 or hi < 0) else ""
    return f"{d:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]{mark}"


def _table(rows: Sequence[dict], column: str, columns: list, label, digits: int) -> list[str]:
    models = list(dict.fromkeys(r["model"] for r in rows))
    cell = {(r["model"], r[column]): r for r in rows}
    out = ["| model | " + " | ".join(label(c) for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for m in models:
        out.append(f"| {m} | " + " | ".join(format_delta(cell[(m, c)], digits) if (m, c) in cell else ""
                                             for c in columns) + " |")
    return out + [""]


def subset_comparison_table(rows: Iterable[dict], metric: str, digits: int = 3) -> str:
    """The ``subsets`` differences of ``metric``: one row per model, one column per subset
    (empty when ``rows`` hold none)."""
    subs = [r for r in rows if r["protocol"] == SUBSETS and r["metric"] == metric]
    if not subs:
        return ""
    return "\n".join(_table(subs, "subset", list(dict.fromkeys(r["subset"] for r in subs)), str, digits)).rstrip()


def comparison_markdown(rows: Iterable[dict], metrics: Sequence[str], digits: int = 3) -> str:
    """Per metric: the ``subsets`` differences (columns: subsets), then the sweep summaries (area
    and effective robustness; columns: protocol and summary)."""
    rows = list(rows)
    if not rows:
        return ""
    refs = sorted({r["reference"] for r in rows if r["protocol"] == SUBSETS})
    md = ["## Differences with 95% intervals", "",
          (f"Model minus reference ({', '.join(refs) or 'see the rows'}); the interval resamples whole groups "
           "(videos, dialogues) and seeds; `*` = the interval excludes 0. Effective robustness is measured "
           "against late fusion."), ""]
    for metric in metrics:
        here = [r for r in rows if r["metric"] == metric]
        subs = subset_comparison_table(here, metric, digits)
        if subs:
            md += [f"### {metric}: modality subset", "", subs, ""]
        summ = [{**r, "key": f"{r['protocol']} {column_label(r['level'])}"} for r in here
                if r["protocol"] != SUBSETS and isinstance(r["level"], str)]
        if summ:
            md += [f"### {metric}: sweep summaries", ""]
            md += _table(summ, "key", list(dict.fromkeys(r["key"] for r in summ)), str, digits)
    return "\n".join(md).rstrip() + "\n"
