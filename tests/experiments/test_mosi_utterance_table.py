"""experiments/mosi_utterance_table.py end to end on the real MOSI features (quick grid)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from robustfusion.robustness import read_rows_csv

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "mosi_utterance_table.py"


def test_several_carvings_are_run_and_aggregated(mosi_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "mosi"
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--data", str(mosi_dir), "--out", str(out), "--quick",
                                      "--split-seeds", "0", "1"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    printed = capsys.readouterr().out
    assert "### MAE: modality subset" in printed and "specialists_ridge" in printed
    per_split = [read_rows_csv(out / f"split{k}" / "robustness.csv") for k in (0, 1)]
    combined = read_rows_csv(out / "all_splits" / "robustness.csv")
    assert len(combined) == sum(len(r) for r in per_split)
    assert {r["seed"] for r in combined} == {0, 1000}  # 1000 * split seed + model seed
    # the two carvings hold out different videos: their ridge rows differ
    ridge = [{r["subset"]: r["value"] for r in rows if r["model"] == "specialists_ridge" and r["metric"] == "MAE"}
             for rows in per_split]
    assert set(ridge[0]) == set(ridge[1]) and len(ridge[0]) == 7
    assert ridge[0] != ridge[1]
    assert (out / "all_splits" / "table.md").is_file()
