"""A few-line headline of a robustness evaluation: for each model, the task's primary metric with
every modality present and on its worst modality subset (the full tables stay in ``table.md``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from robustfusion.metrics import PRIMARY_METRIC, higher_is_better

__all__ = ["headline_lines", "headline_table", "headline_text", "metric_table"]


def _primary(metrics: set[str]) -> str | None:
    return next((m for m in PRIMARY_METRIC.values() if m in metrics), None)


def headline_lines(rows: Iterable[dict], split: str | None = None) -> list[str]:
    """One line per (dataset, model) of the ``subsets`` protocol rows, mean over seeds::

        gmc on synthetic (test, 3 seeds), MAE (lower is better): all of text+audio+vision 0.777; worst subset vision 1.190

    The primary metric is the task's (``MAE``, ``Acc`` or ``Avg_F1``, whichever the rows hold).
    Returns ``[]`` when the rows hold no ``subsets`` protocol or no primary metric.
    """
    subsets = [r for r in rows if r["protocol"] == "subsets" and (split is None or r["split"] == split)]
    metric = _primary({r["metric"] for r in subsets})
    if metric is None:
        return []
    better = "higher" if higher_is_better(metric) else "lower"
    values: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    seeds: dict[tuple[str, str, str], set] = {}
    for r in subsets:
        if r["metric"] != metric:
            continue
        key = (str(r["dataset"]), str(r["model"]), str(r["split"]))
        values.setdefault(key, {}).setdefault(str(r["subset"]), []).append(float(r["value"]))
        seeds.setdefault(key, set()).add(r["seed"])
    lines = []
    for (dataset, model, sp), by_subset in values.items():
        mean = {s: sum(v) / len(v) for s, v in by_subset.items()}
        full = max(mean, key=lambda s: len(s.split("+")))
        worst = (min if higher_is_better(metric) else max)(mean, key=lambda s: mean[s])
        n = len(seeds[(dataset, model, sp)])
        lines.append(f"{model} on {dataset} ({sp}, {n} seed{'s' if n != 1 else ''}), {metric} ({better} is better): "
                     f"all of {full} {mean[full]:.3f}; worst subset {worst} {mean[worst]:.3f}")
    return lines


def headline_text(rows: Sequence[dict], table_path: str) -> str:
    """:func:`headline_lines` followed by where the full tables are."""
    return "\n".join([*headline_lines(rows),
                      f"full tables (every subset and metric, both sweeps, AUILC): {table_path}"])


def metric_table(markdown: str, metric: str) -> str | None:
    """The ``### <metric>: modality subset`` table of a report's markdown (heading included), or
    ``None`` when the report has none."""
    lines = markdown.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(f"### {metric}: modality subset")), None)
    if start is None:
        return None
    block: list[str] = []
    for ln in lines[start:]:
        if block and ln.startswith(("#", "![", "Gap to oracle")):
            break
        block.append(ln)
    return "\n".join(block).rstrip()


def headline_table(markdown: str, rows: Iterable[dict] = ()) -> str:
    """The subsets table of the task's primary metric (MAE, Acc or Avg_F1) from a report's
    markdown; the whole markdown when no such table is found."""
    present = {r["metric"] for r in rows}
    for metric in [m for m in PRIMARY_METRIC.values() if m in present] or list(PRIMARY_METRIC.values()):
        table = metric_table(markdown, metric)
        if table is not None:
            return table
    return markdown.rstrip()
