"""experiments/mosi_utterance_table.py end to end on the real MOSI features (quick grid)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from robustfusion.results import read_rows_csv

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "mosi_utterance_table.py"


def test_default_cross_fits_over_the_validation_videos(mosi_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "mosi"
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--data", str(mosi_dir), "--out", str(out), "--quick"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    assert "specialists_ridge" in capsys.readouterr().out
    per_fold = [read_rows_csv(out / f"fold{k}" / "robustness.csv") for k in (0, 1)]
    combined = read_rows_csv(out / "combined" / "robustness.csv")
    assert len(combined) == sum(len(r) for r in per_fold) and {r["seed"] for r in combined} == {0, 1000}
    for k in (0, 1):  # each fold's runs were selected on the other fold's videos, tested on its own
        cfg = (out / f"fold{k}" / "runs" / "mosi_utterance-gmc_pf-seed0" / "config.yaml").read_text()
        assert f"crossfit_fold: {k}" in cfg and "crossfit_folds: 2" in cfg


def test_several_carvings_are_run_and_aggregated(mosi_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "mosi"
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--data", str(mosi_dir), "--out", str(out), "--quick",
                                      "--split-seeds", "0", "1"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    printed = capsys.readouterr().out
    assert "### MAE: modality subset" in printed and "specialists_ridge" in printed
    per_split = [read_rows_csv(out / f"split{k}" / "robustness.csv") for k in (0, 1)]
    combined = read_rows_csv(out / "combined" / "robustness.csv")
    assert len(combined) == sum(len(r) for r in per_split)
    assert {r["seed"] for r in combined} == {0, 1000}  # 1000 * split seed + model seed
    # the two carvings hold out different videos: their ridge rows differ
    ridge = [{r["subset"]: r["value"] for r in rows if r["model"] == "specialists_ridge" and r["metric"] == "MAE"
               and r["protocol"] == "subsets"}
             for rows in per_split]
    assert set(ridge[0]) == set(ridge[1]) and len(ridge[0]) == 7
    assert ridge[0] != ridge[1]
    assert (out / "combined" / "table.md").is_file()
