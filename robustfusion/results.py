"""Long-format result rows: the schema, level names, CSV I/O, aggregation over seeds, oracle gap.

What the evaluator (:mod:`robustfusion.robustness`) writes and the reports
(:mod:`robustfusion.reporting`) read; neither imports the other. One dict per number:

=========  ===============================================================================
dataset    dataset name
model      model name (:data:`ORACLE` for the synthetic benchmark's Bayes-optimal predictor)
seed       the evaluation seed (int)
protocol   a name from :func:`robustfusion.protocols.protocol_names`
level      sweeps: the rate as a float rounded to 6 digits; ``subsets``: ``None`` (empty in
           CSV); summary rows: :data:`AUILC_LEVEL`, :data:`RELATIVE_LEVEL` or
           :data:`MEAN_LEVEL` (``frame_rate`` only)
subset     ``subsets``: the kept modalities joined by ``+`` (``"text+audio"``); sweeps:
           :data:`SWEEP_SUBSET`
split      ``"test"``, ``"valid"``, ...
metric     metric name (:mod:`robustfusion.metrics` key); ``"gap/<metric>"`` in oracle-gap rows
value      float (NaN allowed where a metric is undefined, documented in metrics)
=========  ===============================================================================

:func:`aggregate` turns rows into mean / std (``ddof=1``; 0.0 when ``n == 1``) / n over seeds
(columns :data:`AGG_FIELDS`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from robustfusion.io import atomic_write
from robustfusion.protocols import (
    DEFAULT_LEVELS,
    MISSING_RATE_LEVELS,
    SWEEP_SUBSET,
    get_protocol,
    sweep_protocols,
)

__all__ = [
    "AGG_FIELDS",
    "AUILC_LEVEL",
    "DEFAULT_LEVELS",
    "GROUP_FIELDS",
    "MEAN_LEVEL",
    "MEAN_LEVELS",
    "MISSING_RATE_LEVELS",
    "ORACLE",
    "PROTOCOL_LEVELS",
    "RELATIVE_LEVEL",
    "ROW_FIELDS",
    "SUMMARY_LEVELS",
    "SWEEP_PROTOCOLS",
    "SWEEP_SUBSET",
    "aggregate",
    "normalise_level",
    "oracle_gap_rows",
    "read_rows_csv",
    "write_rows_csv",
]

ROW_FIELDS = ("dataset", "model", "seed", "protocol", "level", "subset", "split", "metric", "value")
#: Fields that identify one number across seeds (everything but seed and value).
GROUP_FIELDS = ("dataset", "model", "protocol", "level", "subset", "split", "metric")
AGG_FIELDS = GROUP_FIELDS + ("mean", "std", "n")
#: Level of the summary rows: area under the metric-vs-level curve.
AUILC_LEVEL = "auilc"
#: Level of the summary rows: relative robustness (AUILC / (metric at 0.0 x level range)).
RELATIVE_LEVEL = "relative"
#: Level of the summary rows: the mean of the metric over the rates :data:`MEAN_LEVELS`
#: (0.0, 0.1, ..., 0.9), LNLN's headline number for ``frame_rate`` (Zhang et al., NeurIPS 2024:
#: ``robust_evaluation.py`` sweeps these ten rates). Written only when every one of them was
#: evaluated.
MEAN_LEVEL = "mean_0-0.9"
#: The rates :data:`MEAN_LEVEL` averages over (1.0 left out, as LNLN does).
MEAN_LEVELS = tuple(round(0.1 * i, 6) for i in range(10))
#: Summary levels in the order tables show them, after the numeric levels.
SUMMARY_LEVELS = (AUILC_LEVEL, RELATIVE_LEVEL, MEAN_LEVEL)
#: The built-in sweep protocols and their default rates, as the registry in
#: :mod:`robustfusion.protocols` holds them when this module is imported (read
#: :func:`robustfusion.protocols.get_protocol` for protocols registered later).
SWEEP_PROTOCOLS = sweep_protocols()
PROTOCOL_LEVELS = MappingProxyType({p: get_protocol(p).default_levels for p in SWEEP_PROTOCOLS})
#: Model name of the synthetic benchmark's Bayes-optimal predictor (the reference row).
ORACLE = "oracle"


# ---------------------------------------------------------------------------- levels
def normalise_level(level: Any) -> float | str | None:
    """``None`` for an empty/NaN/None level (subsets rows), a float rounded to 6 digits for a
    rate, the string itself for a summary level (``"auilc"``, ``"relative"``)."""
    if level is None:
        return None
    if isinstance(level, str):
        s = level.strip()
        if s == "" or s.lower() in ("nan", "none"):
            return None
        try:
            return round(float(s), 6)
        except ValueError:
            return s
    f = float(level)
    return None if math.isnan(f) else round(f, 6)


# ---------------------------------------------------------------------------- oracle gap
def oracle_gap_rows(rows: Iterable[dict], oracle: str = ORACLE) -> list[dict]:
    """Rows ``metric = "gap/<metric>"``, ``value = model value - oracle value`` for every row of
    a non-oracle model that has an oracle row with the same dataset, seed, protocol, level,
    subset, split and metric (synthetic benchmark: "the gap to the oracle")."""
    rows = list(rows)
    ref = {(r["dataset"], r["seed"], r["protocol"], normalise_level(r["level"]), r["subset"], r["split"],
            r["metric"]): float(r["value"]) for r in rows if r["model"] == oracle}
    out = []
    for r in rows:
        if r["model"] == oracle or r["metric"].startswith("gap/"):
            continue
        key = (r["dataset"], r["seed"], r["protocol"], normalise_level(r["level"]), r["subset"], r["split"], r["metric"])
        if key in ref:
            out.append({**{k: r[k] for k in ROW_FIELDS}, "metric": f"gap/{r['metric']}",
                        "value": float(r["value"]) - ref[key]})
    return out


# ---------------------------------------------------------------------------- aggregation
def aggregate(rows: Iterable[dict]) -> list[dict]:
    """Mean, sample standard deviation (``ddof=1``; 0.0 when ``n == 1``) and ``n`` over seeds.

    Rows are grouped by :data:`GROUP_FIELDS` (levels normalised, so ``0.1`` and ``"0.1"``
    match); groups keep the order of their first row. NaN values propagate to the mean.

    Raises:
        ValueError: when a group holds the same seed twice (two sources for one number: rename
            one model or drop the duplicate file).
    """
    groups: dict[tuple, list[tuple[Any, float]]] = {}
    for r in rows:
        key = tuple(normalise_level(r[f]) if f == "level" else r[f] for f in GROUP_FIELDS)
        groups.setdefault(key, []).append((r["seed"], float(r["value"])))
    out = []
    for key, vals in groups.items():
        seeds = [s for s, _ in vals]
        if len(set(seeds)) != len(seeds):
            dup = sorted({s for s in seeds if seeds.count(s) > 1}, key=str)
            raise ValueError(f"aggregate: seed(s) {dup} appear more than once for {dict(zip(GROUP_FIELDS, key))}")
        v = np.array([x for _, x in vals], dtype=np.float64)
        std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
        out.append({**dict(zip(GROUP_FIELDS, key)), "mean": float(np.mean(v)), "std": std, "n": int(v.size)})
    return out


# ---------------------------------------------------------------------------- CSV
def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_rows_csv(rows: Iterable[dict], path: str | Path) -> Path:
    """Write rows (raw or aggregated) to ``path`` atomically: a temporary file in the same
    directory, then ``os.replace``. On any failure the previous file is untouched and no
    temporary file is left. Columns: :data:`ROW_FIELDS` (or :data:`AGG_FIELDS`) first, then any
    extra keys in order of appearance. Floats are written with ``repr`` (exact round trip)."""
    rows = list(rows)
    base = AGG_FIELDS if rows and "mean" in rows[0] and "value" not in rows[0] else ROW_FIELDS
    fields = [f for f in base if not rows or any(f in r for r in rows)] or list(base)
    for r in rows:
        fields += [k for k in r if k not in fields]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(fields)
            for r in rows:
                w.writerow([_fmt(r.get(f)) for f in fields])

    return atomic_write(path, write)


def _parse(field: str, s: str) -> Any:
    if field == "level":
        return normalise_level(s)
    if field in ("seed", "n"):
        try:
            return int(s)
        except ValueError:
            return s
    if field in ("value", "mean", "std"):
        return float(s) if s != "" else float("nan")
    return s


def read_rows_csv(path: str | Path) -> list[dict]:
    """Read rows written by :func:`write_rows_csv` back with their types (seed/n int,
    value/mean/std float, level float / ``None`` / summary string)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        need = ("value",) if "value" in cols else ("mean",)
        missing = [f for f in ("dataset", "model", "protocol", "level", "subset", "metric") + need if f not in cols]
        if missing:
            raise ValueError(f"{path}: expected columns {list(ROW_FIELDS)}, missing {missing} (found {cols})")
        return [{k: _parse(k, v) for k, v in r.items()} for r in reader]
