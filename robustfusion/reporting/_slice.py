"""Selecting and ordering the aggregated numbers one table or plot shows (shared by tables and plots)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from robustfusion.protocols import get_protocol, protocol_label, protocol_names
from robustfusion.results import (
    AUILC_LEVEL,
    MEAN_LEVEL,
    ORACLE,
    RELATIVE_LEVEL,
    SUMMARY_LEVELS,
    aggregate,
    normalise_level,
)

__all__ = ["METRIC_LABELS", "PROTOCOL_LABELS", "Slice", "column_label", "select"]

#: Axis / table label of each built-in protocol (its :class:`~robustfusion.protocols.Protocol`
#: entry's ``label``; :func:`~robustfusion.protocols.protocol_label` for any protocol).
PROTOCOL_LABELS = MappingProxyType({p: protocol_label(p) for p in protocol_names()})
#: Axis labels with units; the key is the metric name in the rows.
METRIC_LABELS = {
    "Has0_acc_2": "Acc-2, negative/non-negative (fraction)",
    "Has0_F1_score": "weighted F1, negative/non-negative",
    "Non0_acc_2": "Acc-2, negative/positive, zeros excluded (fraction)",
    "Non0_F1_score": "weighted F1, negative/positive",
    "Mult_acc_5": "Acc-5 (fraction)",
    "Mult_acc_7": "Acc-7 (fraction)",
    "MAE": "MAE (sentiment score units)",
    "Corr": "Pearson correlation",
    "Acc": "accuracy (fraction)",
    "F1_macro": "macro F1",
    "F1_weighted": "weighted F1",
    "Avg_acc": "mean per-emotion accuracy (fraction)",
    "Avg_F1": "mean per-emotion weighted F1",
}


@dataclass
class Slice:
    """Aggregated numbers of one ``(dataset, split, protocol, metric)``.

    ``columns``: subset labels (subsets) or levels (sweeps: floats, then the summary levels
    present, in :data:`~robustfusion.results.SUMMARY_LEVELS` order: ``"auilc"``, ``"relative"``,
    ``"mean_0-0.9"``); ``models``: non-oracle models in order of first appearance, then the oracle;
    ``cells[(model, column)]`` = the aggregated row (``mean``, ``std``, ``n``).
    """

    dataset: str
    split: str
    protocol: str
    metric: str
    columns: list
    models: list[str]
    cells: dict[tuple[str, object], dict]
    rows: list[dict]

    def mean(self, model: str, column) -> float:
        c = self.cells.get((model, column))
        return float("nan") if c is None else float(c["mean"])


def _ensure_aggregated(rows: Iterable[dict]) -> list[dict]:
    rows = list(rows)
    if rows and "value" in rows[0]:
        return aggregate(rows)
    return rows


def _only(values: set, what: str, given):
    if given is not None:
        if given not in values:
            raise ValueError(f"{what}={given!r} not in the rows; found {sorted(map(str, values))}")
        return given
    if len(values) != 1:
        raise ValueError(f"rows hold several {what}s {sorted(map(str, values))}; pass {what}=... to choose one")
    return next(iter(values))


def select(rows: Iterable[dict], protocol: str, metric: str, *, dataset: str | None = None,
           split: str | None = None, include_summary: bool = True,
           models: Sequence[str] | None = None) -> Slice:
    """The :class:`Slice` of raw rows (aggregated here over seeds) or already aggregated rows.

    Raises:
        ValueError: when nothing matches (naming what the rows hold), or when the rows hold
            several datasets/splits and none was chosen.
    """
    agg = _ensure_aggregated(rows)
    if not agg:
        raise ValueError("rows: expected at least one result row, found none")
    dataset = _only({r["dataset"] for r in agg}, "dataset", dataset)
    split = _only({r["split"] for r in agg if r["dataset"] == dataset}, "split", split)
    sel = [r for r in agg if r["dataset"] == dataset and r["split"] == split and r["protocol"] == protocol
           and r["metric"] == metric]
    if not sel:
        have = sorted({(r["protocol"], r["metric"]) for r in agg if r["dataset"] == dataset})
        raise ValueError(f"no rows for protocol={protocol!r}, metric={metric!r} on {dataset!r}/{split!r}; "
                         f"found (protocol, metric) pairs {have[:20]}")
    if protocol in protocol_names() and not get_protocol(protocol).is_sweep:
        seen: list[str] = []
        for r in sel:
            if r["subset"] not in seen:
                seen.append(r["subset"])
        columns: list = sorted(seen, key=lambda s: (s.count("+"), seen.index(s)))
        key = "subset"
    else:
        levels = {normalise_level(r["level"]) for r in sel}
        columns = sorted(lv for lv in levels if isinstance(lv, float))
        if include_summary:
            columns += [s for s in SUMMARY_LEVELS if s in levels]
        key = "level"
    order: list[str] = []
    for r in sel:
        if r["model"] not in order:
            order.append(r["model"])
    if models is not None:
        missing = [m for m in models if m not in order]
        if missing:
            raise ValueError(f"models {missing} have no rows; found {order}")
        order = list(models)
    order = [m for m in order if m != ORACLE] + [m for m in order if m == ORACLE]
    cells = {}
    for r in sel:
        col = r["subset"] if key == "subset" else normalise_level(r["level"])
        if col in columns and r["model"] in order:
            cells[(r["model"], col)] = r
    kept = [r for r in sel if r["model"] in order and
            (r["subset"] if key == "subset" else normalise_level(r["level"])) in columns]
    return Slice(dataset, split, protocol, metric, columns, order, cells, kept)


def column_label(column) -> str:
    """Header text of a column: the subset label, a level with one decimal, ``AUILC``, ``Rel.``,
    ``Mean 0-0.9``."""
    if column == AUILC_LEVEL:
        return "AUILC"
    if column == RELATIVE_LEVEL:
        return "Rel."
    if column == MEAN_LEVEL:
        return "Mean 0-0.9"
    if isinstance(column, float):
        return f"{column:.2f}".rstrip("0").rstrip(".") if not math.isclose(column * 10, round(column * 10)) \
            else f"{column:.1f}"
    return str(column)
