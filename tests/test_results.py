"""Long-format result rows: level normalisation, aggregation over seeds, oracle gap, CSV bytes and
round trip, atomic writes."""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

import pytest

import robustfusion
from robustfusion.results import (
    AGG_FIELDS,
    DEFAULT_LEVELS,
    MEAN_LEVEL,
    MEAN_LEVELS,
    MISSING_RATE_LEVELS,
    ORACLE,
    PROTOCOL_LEVELS,
    ROW_FIELDS,
    SUMMARY_LEVELS,
    SWEEP_PROTOCOLS,
    aggregate,
    normalise_level,
    oracle_gap_rows,
    read_rows_csv,
    write_rows_csv,
)

PACKAGE = Path(robustfusion.__file__).resolve().parent


def _row(model, seed, value, level=0.1, metric="MAE"):
    return {"dataset": "d", "model": model, "seed": seed, "protocol": "sample_rate", "level": level,
            "subset": "all", "split": "test", "metric": metric, "value": value}


def _golden_rows() -> list[dict]:
    def row(seed, protocol, level, subset, metric, value, **extra):
        return {"dataset": "toy", "model": "gmc", "seed": seed, "protocol": protocol, "level": level,
                "subset": subset, "split": "test", "metric": metric, "value": value, **extra}

    return [row(0, "subsets", None, "text+audio", "MAE", 0.1 + 0.2),
            row(0, "sample_rate", 0.3, "all", "Corr", float("nan")),
            row(0, "sample_rate", "auilc", "all", "MAE", 1 / 3),
            row(1, "subsets", None, "text+audio", "MAE", 2.0, note='a, "b"'),
            row(1, "sample_rate", 0.3, "all", "Corr", -0.0)]


# ---------------------------------------------------------------------------- levels
@pytest.mark.parametrize(("given", "expected"), [
    (None, None), ("", None), (" nan ", None), ("None", None), (float("nan"), None),
    (0.30000000000000004, 0.3), ("0.1", 0.1), (1, 1.0), ("auilc", "auilc"), ("relative", "relative"),
    (MEAN_LEVEL, "mean_0-0.9"),
])
def test_normalise_level(given, expected):
    assert normalise_level(given) == expected


def test_default_levels_are_the_eleven_rates():
    assert DEFAULT_LEVELS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert all(normalise_level(lv) == lv for lv in DEFAULT_LEVELS)
    from robustfusion.runner.config import (
        EvalConfig,  # the run config's default sweep is the same grid
    )
    assert EvalConfig().levels["sample_rate"] == EvalConfig().levels["frame_rate"] == list(DEFAULT_LEVELS)


# ---------------------------------------------------------------------------- aggregate
def test_aggregate_numbers():
    rows = [_row("a", 0, 1.0), _row("a", 1, 2.0), _row("a", 2, 4.5, level="0.1"), _row("b", 0, 3.0),
            _row("a", 0, 0.5, metric="Corr")]
    agg = aggregate(rows)
    assert [(r["model"], r["metric"], r["n"]) for r in agg] == [("a", "MAE", 3), ("b", "MAE", 1), ("a", "Corr", 1)]
    assert agg[0]["mean"] == pytest.approx(statistics.mean([1.0, 2.0, 4.5]))
    assert agg[0]["std"] == pytest.approx(statistics.stdev([1.0, 2.0, 4.5]))
    assert agg[1]["std"] == 0.0 and agg[1]["mean"] == 3.0
    assert list(agg[0]) == list(AGG_FIELDS)
    with pytest.raises(ValueError, match="more than once"):
        aggregate([_row("a", 0, 1.0), _row("a", 0, 2.0)])


# ---------------------------------------------------------------------------- oracle gap
def test_oracle_gap_rows():
    rows = [_row("m", 0, 0.7, metric="Acc"), _row(ORACLE, 0, 0.9, metric="Acc"), _row("m", 1, 0.6, metric="Acc")]
    gap = oracle_gap_rows(rows)
    assert len(gap) == 1 and gap[0]["metric"] == "gap/Acc" and gap[0]["value"] == pytest.approx(-0.2)
    assert list(gap[0]) == list(ROW_FIELDS)
    assert oracle_gap_rows(gap + rows) == gap  # gap rows are never gapped again
    assert ORACLE == "oracle"


# ---------------------------------------------------------------------------- CSV
def test_csv_bytes_are_unchanged(tmp_path):
    """The exact bytes the writer produced before it moved out of robustness.py."""
    rows = _golden_rows()
    assert write_rows_csv(rows, tmp_path / "rows.csv").read_bytes() == (
        b'dataset,model,seed,protocol,level,subset,split,metric,value,note\r\n'
        b'toy,gmc,0,subsets,,text+audio,test,MAE,0.30000000000000004,\r\n'
        b'toy,gmc,0,sample_rate,0.3,all,test,Corr,nan,\r\n'
        b'toy,gmc,0,sample_rate,auilc,all,test,MAE,0.3333333333333333,\r\n'
        b'toy,gmc,1,subsets,,text+audio,test,MAE,2.0,"a, ""b"""\r\n'
        b'toy,gmc,1,sample_rate,0.3,all,test,Corr,-0.0,\r\n')
    assert write_rows_csv(aggregate(rows), tmp_path / "agg.csv").read_bytes() == (
        b'dataset,model,protocol,level,subset,split,metric,mean,std,n\r\n'
        b'toy,gmc,subsets,,text+audio,test,MAE,1.15,1.2020815280171306,2\r\n'
        b'toy,gmc,sample_rate,0.3,all,test,Corr,nan,nan,2\r\n'
        b'toy,gmc,sample_rate,auilc,all,test,MAE,0.3333333333333333,0.0,1\r\n')


def test_csv_round_trip(tmp_path):
    rows = [{k: r[k] for k in ROW_FIELDS} for r in _golden_rows()]
    back = read_rows_csv(write_rows_csv(rows, tmp_path / "sub" / "rows.csv"))
    assert len(back) == len(rows)
    for a, b in zip(rows, back):
        assert {k: v for k, v in a.items() if k != "value"} == {k: v for k, v in b.items() if k != "value"}
        assert (math.isnan(a["value"]) and math.isnan(b["value"])) or a["value"] == b["value"]
    agg = aggregate(rows)
    back_agg = read_rows_csv(write_rows_csv(agg, tmp_path / "agg.csv"))
    assert [r["n"] for r in back_agg] == [r["n"] for r in agg]
    assert [r["level"] for r in back_agg] == [None, 0.3, "auilc"]


def test_read_rejects_missing_file_and_columns(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such results file"):
        read_rows_csv(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,model,seed\nd,m,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"expected columns .*missing \['protocol'"):
        read_rows_csv(bad)


class Boom:
    def __str__(self):
        raise RuntimeError("disk full (simulated)")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "robustness.csv"
    good = [_row("a", 0, 1.0), _row("a", 1, 2.0)]
    write_rows_csv(good, path)
    before = path.read_bytes()
    bad = good + [_row("a", 2, 3.0) | {"subset": Boom()}]
    with pytest.raises(RuntimeError, match="simulated"):
        write_rows_csv(bad, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["robustness.csv"]



def test_published_protocol_levels():
    assert MISSING_RATE_LEVELS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)  # GCNet, three modalities
    assert MEAN_LEVELS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # LNLN's ten rates, no 1.0
    assert PROTOCOL_LEVELS == {"sample_rate": DEFAULT_LEVELS, "frame_rate": DEFAULT_LEVELS,
                               "missing_rate": MISSING_RATE_LEVELS}
    assert set(SWEEP_PROTOCOLS) == set(PROTOCOL_LEVELS)
    assert SUMMARY_LEVELS == ("auilc", "relative", MEAN_LEVEL)


def test_new_protocol_and_mean_rows_round_trip_and_aggregate(tmp_path):
    rows = [{**_row("m", s, v, level=lv), "protocol": p} for s, v in ((0, 0.5), (1, 0.7))
            for p, lv in (("missing_rate", 0.7), ("frame_rate", MEAN_LEVEL))]
    back = read_rows_csv(write_rows_csv(rows, tmp_path / "r.csv"))
    assert [(r["protocol"], r["level"], r["value"]) for r in back] == [
        (r["protocol"], r["level"], r["value"]) for r in rows]
    agg = {(r["protocol"], r["level"]): (r["mean"], r["n"]) for r in aggregate(back)}
    assert agg == {("missing_rate", 0.7): (pytest.approx(0.6), 2), ("frame_rate", MEAN_LEVEL): (pytest.approx(0.6), 2)}
