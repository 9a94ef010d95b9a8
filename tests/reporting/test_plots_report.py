"""Plots (PNG + PDF + the exact CSV slice beside them) and the one-call report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustfusion.data.dataset import MultimodalDataset
from robustfusion.reporting import plot_subsets, plot_sweep, write_report
from robustfusion.results import aggregate, read_rows_csv
from robustfusion.robustness import evaluate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_sweep_writes_png_pdf_and_exact_slice(rows, tmp_path):
    out = plot_sweep(rows, "frame_rate", "Has0_acc_2", tmp_path / "fr.png")
    assert out["png"].read_bytes()[:8] == PNG_MAGIC and out["pdf"].read_bytes()[:4] == b"%PDF"
    sl = read_rows_csv(out["csv"])
    ref = [r for r in aggregate(rows) if r["protocol"] == "frame_rate" and r["metric"] == "Has0_acc_2"]
    key = lambda r: (r["model"], str(r["level"]))
    assert sorted(map(key, sl)) == sorted(map(key, ref))
    got = {key(r): (r["mean"], r["std"], r["n"]) for r in sl}
    assert all(got[key(r)] == (r["mean"], r["std"], r["n"]) for r in ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fr.csv", "fr.pdf", "fr.png"]
    with pytest.raises(ValueError, match="plot_subsets"):
        plot_sweep(rows, "subsets", "MAE", tmp_path / "x")


def test_plot_subsets(rows, tmp_path):
    out = plot_subsets(rows, "MAE", tmp_path / "bars", formats=("png",))
    assert set(out) == {"png", "csv"} and out["png"].stat().st_size > 5000
    assert {r["subset"] for r in read_rows_csv(out["csv"])} == {"text", "audio", "text+audio"}


def test_matplotlib_imported_lazily_and_pyplot_never(tmp_path):
    code = (
        "import sys; import robustfusion.reporting as r; from tests.reporting.conftest import make_rows\n"
        "assert 'matplotlib' not in sys.modules, 'imported at package import'\n"
        f"r.plot_subsets(make_rows(), 'MAE', {str(tmp_path / 'b')!r}, formats=('png',))\n"
        "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr[-2000:]


def test_write_report_from_evaluated_rows(tmp_path):
    g = torch.Generator().manual_seed(0)
    ds = MultimodalDataset({"text": torch.randn(24, 5, 3, generator=g), "audio": torch.randn(24, 2, generator=g)},
                           torch.randn(24, generator=g), name="toy")

    class Pred:
        def __init__(self, w):
            self.w = w

        def predict(self, b):
            return (self.w * b.inputs["audio"].sum(1) * b.present[:, 1]).unsqueeze(1)

    rows = []
    for seed in (0, 1):
        rows += evaluate(Pred(1.0), ds, seed=seed, levels=(0.0, 0.5, 1.0), model_name="m1")
        rows += evaluate(Pred(-1.0), ds, seed=seed, levels=(0.0, 0.5, 1.0), model_name="m2")
        rows += evaluate(Pred(0.5), ds, seed=seed, levels=(0.0, 0.5, 1.0), model_name="oracle")
    res = write_report(rows, tmp_path / "rep")
    md = res["table_md"].read_text()
    assert md == res["markdown"]
    for metric in ("Non0_acc_2", "Non0_F1_score", "MAE", "Corr", "Mult_acc_7"):
        assert f"### {metric}: modality subset" in md
        for p in ("subsets", "sample_rate", "frame_rate"):
            assert (tmp_path / "rep" / "plots" / f"{p}_{metric}.png").exists()
            assert (tmp_path / "rep" / "plots" / f"{p}_{metric}.csv").exists()
    assert "Gap to oracle" in md and "| *oracle* |" in md
    assert len(res["plots"]) == 15 and res["paths"]["plots"] == res["plots"]
    assert r"\begin{tabular}" in res["table_tex"].read_text()
    assert len(read_rows_csv(res["aggregate_csv"])) == len(aggregate(rows))
    only = write_report(rows, tmp_path / "rep2", metrics=["MAE"], plots=False)
    assert only["plots"] == [] and "Has0_acc_2" not in only["markdown"]



def test_write_report_with_missing_rate_and_the_mean_column(tmp_path):
    g = torch.Generator().manual_seed(1)
    ds = MultimodalDataset({"text": torch.randn(30, 4, 3, generator=g), "audio": torch.randn(30, 2, generator=g),
                            "vision": torch.randn(30, 3, generator=g)}, torch.randn(30, generator=g), name="toy")

    class Pred:
        def predict(self, b):
            return (b.inputs["audio"].sum(1) * b.present[:, 1] + b.present[:, 0]).unsqueeze(1)

    rows = []
    for seed in (0, 1):
        rows += evaluate(Pred(), ds, seed=seed, protocols=("frame_rate", "missing_rate"), model_name="m")
    res = write_report(rows, tmp_path / "rep", metrics=["MAE"])
    md = res["markdown"]
    assert "### MAE: modality missing rate, at least one kept (per sample and modality)" in md
    assert "`Mean 0-0.9` = mean of the metric over the rates 0.0, 0.1, ..., 0.9" in md
    assert "| AUILC | Rel. | Mean 0-0.9 |" in md
    for p in ("frame_rate", "missing_rate"):
        assert (tmp_path / "rep" / "plots" / f"{p}_MAE.png").exists()
    plotted = read_rows_csv(tmp_path / "rep" / "plots" / "missing_rate_MAE.csv")
    assert sorted({r["level"] for r in plotted if isinstance(r["level"], float)}) == [i / 10 for i in range(8)]
