import csv

import pytest

from robustfusion.reporting.interval_plot import plot_intervals


def _rows():
    out = []
    for seed in (0, 1):
        for subset, width, cover in (("text", 2.0, 0.91), ("audio", 3.0, 0.88), ("text+audio", 1.8, 0.9)):
            for metric, value in (("PI_width", width + seed), ("PI_coverage", cover)):
                out.append({"dataset": "d", "model": "gmc_pf", "seed": seed, "protocol": "subsets", "level": None,
                            "subset": subset, "split": "test", "metric": metric, "value": value})
    return out


def test_writes_png_pdf_and_the_plotted_means(tmp_path):
    made = plot_intervals(_rows(), tmp_path / "intervals")
    assert made["png"].stat().st_size > 0 and made["pdf"].stat().st_size > 0
    with open(made["csv"]) as fh:
        means = {(r["subset"], r["metric"]): float(r["mean"]) for r in csv.DictReader(fh)}
    assert means[("audio", "PI_width")] == pytest.approx(3.5)
    assert means[("text", "PI_coverage")] == pytest.approx(0.91)


def test_rows_without_intervals_are_refused(tmp_path):
    with pytest.raises(ValueError, match="conformal_intervals"):
        plot_intervals([{**r, "metric": "MAE"} for r in _rows()], tmp_path / "x")
