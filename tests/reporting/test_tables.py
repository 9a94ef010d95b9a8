"""Markdown / LaTeX tables: mean ± std over seeds, best per column by metric direction, oracle last
and never marked, columns in subset / level order."""

from __future__ import annotations

import re

import pytest

from robustfusion.reporting import latex_table, markdown_table, select
from robustfusion.results import MEAN_LEVEL, aggregate
from robustfusion.robustness import summary_rows


def _cells(md: str) -> dict[str, list[str]]:
    lines = [ln for ln in md.strip().splitlines()]
    out = {}
    for ln in lines[2:]:
        parts = [p.strip() for p in ln.strip("|").split("|")]
        out[parts[0]] = parts[1:]
    return out


def test_markdown_subsets_table(rows):
    md = markdown_table(rows, "subsets", "Has0_acc_2")
    header = md.splitlines()[0]
    assert header == "| model (Has0_acc_2 ↑) | text | audio | text+audio |"
    cells = _cells(md)
    assert list(cells) == ["a", "b", "*oracle*"]  # oracle last
    # a: text 0.80/0.81 -> mean 0.805, sample std 0.00707
    assert cells["a"][0] == "**0.805 ± 0.007**"
    assert cells["b"][1] == "**0.655 ± 0.007**" and cells["a"][1] == "0.605 ± 0.007"
    assert cells["a"][2].startswith("**") and cells["b"][2].startswith("**")  # tie: both marked
    assert not any("**" in c for c in cells["*oracle*"])  # oracle never marked though higher


def test_markdown_direction_min_for_mae(rows):
    cells = _cells(markdown_table(rows, "subsets", "MAE", digits=3))
    assert cells["a"][0] == "**0.205 ± 0.007**" and cells["b"][0] == "0.305 ± 0.007"
    assert "↓" in markdown_table(rows, "subsets", "MAE")


def test_markdown_sweep_with_auilc_and_relative(rows):
    md = markdown_table(rows, "sample_rate", "Has0_acc_2", digits=4)
    assert md.splitlines()[0].endswith("| 0.0 | 0.5 | 1.0 | AUILC | Rel. |")
    cells = _cells(md)
    # auilc of a, seed 0: 0.5*(0.85+0.70)/2 + 0.5*(0.70+0.50)/2 = 0.6875; seed 1 adds 0.01
    assert cells["a"][3] == "0.6925 ± 0.0071"
    # b: 0.5*(0.84+0.72)/2 + 0.5*(0.72+0.50)/2 = 0.695 (+0.01) -> 0.700, the best
    assert cells["b"][3] == "**0.7000 ± 0.0071**"
    # relative: auilc / value at 0.0 per seed, then averaged: b = mean(0.695/0.84, 0.705/0.85)
    rel = (0.695 / 0.84 + 0.705 / 0.85) / 2
    assert cells["b"][4].strip("*").startswith(f"{rel:.4f}")
    no_summary = markdown_table(rows, "sample_rate", "Has0_acc_2", include_summary=False)
    assert "AUILC" not in no_summary


def test_single_seed_shows_mean_only_and_aggregated_input(rows):
    one = [r for r in rows if r["seed"] == 0]
    cells = _cells(markdown_table(one, "subsets", "Has0_acc_2"))
    assert cells["a"][0] == "**0.800**"
    assert markdown_table(aggregate(rows), "subsets", "MAE") == markdown_table(rows, "subsets", "MAE")


def test_latex_table(rows):
    tex = latex_table(rows, "subsets", "Has0_acc_2", float_env=True)
    assert r"\begin{tabular}{lrrr}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"$\mathbf{0.805 \pm 0.007}$" in tex
    assert r"\textit{oracle}" in tex and tex.index(r"\textit{oracle}") > tex.index("\nb &")
    # every underscore outside math is escaped
    text = re.sub(r"\$[^$]*\$", "", tex).replace(r"\_", "")
    assert "_" not in text.replace(r"\label{", "").split(r"\label")[0]


def test_errors_name_what_exists(rows):
    with pytest.raises(ValueError, match="no rows for protocol='subsets', metric='Corr'"):
        markdown_table(rows, "subsets", "Corr")
    two = rows + [{**rows[0], "dataset": "other"}]
    with pytest.raises(ValueError, match="several datasets"):
        markdown_table(two, "subsets", "MAE")
    assert select(two, "subsets", "Has0_acc_2", dataset="other").models == ["a"]



def _lnln_and_gcnet_rows() -> list[dict]:
    """frame_rate over 0.0..1.0 (value 1 - level for model a, 1 - level / 2 for b) and missing_rate
    over 0.0..0.7, one seed: the mean over 0.0..0.9 is 0.55 for a and 0.775 for b."""
    rows = []
    for model, slope in (("a", 1.0), ("b", 0.5)):
        common = {"dataset": "toy", "model": model, "seed": 0, "split": "test", "subset": "all", "metric": "Has0_acc_2"}
        rows += [{**common, "protocol": "frame_rate", "level": i / 10, "value": 1 - slope * i / 10} for i in range(11)]
        rows += [{**common, "protocol": "missing_rate", "level": i / 10, "value": 0.9 - slope * i / 10} for i in range(8)]
    return rows + summary_rows(rows)


def test_mean_over_0_to_0_9_column_and_missing_rate_table():
    rows = _lnln_and_gcnet_rows()
    sl = select(rows, "frame_rate", "Has0_acc_2")
    assert sl.columns[-3:] == ["auilc", "relative", MEAN_LEVEL]
    md = markdown_table(rows, "frame_rate", "Has0_acc_2")
    assert md.splitlines()[0].endswith("| 1.0 | AUILC | Rel. | Mean 0-0.9 |")
    cells = _cells(md)
    assert cells["a"][-1] == "0.550" and cells["b"][-1] == "**0.775**"
    assert "Mean 0-0.9" in latex_table(rows, "frame_rate", "Has0_acc_2")
    gc = markdown_table(rows, "missing_rate", "Has0_acc_2")
    assert gc.splitlines()[0] == ("| model (Has0_acc_2 ↑) | 0.0 | 0.1 | 0.2 | 0.3 | 0.4 | 0.5 | 0.6 | 0.7 | AUILC "
                                  "| Rel. |")  # no mean column: it is frame_rate's, over 0.0..0.9
    assert _cells(gc)["b"][0] == "**0.900**"
