"""Per-grid output folders: grids run one after the other keep their results side by side, and a
folder holding another grid's results is refused before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustfusion.cli import main
from robustfusion.runner.grid_out import claim_grid_out, default_grid_out

TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=48", "train.epochs=1"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_default_folders_are_per_grid_and_per_quick_flag():
    assert default_grid_out("synthetic") == Path("results/synthetic")
    assert default_grid_out("synthetic", quick=True) == Path("results/synthetic-quick")
    assert default_grid_out("synthetic_emotion", True, root="/x") == Path("/x/synthetic_emotion-quick")
    for bad in ("", "../up", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="grid name: expected a plain folder name"):
            default_grid_out(bad)


def test_a_folder_belongs_to_the_grid_that_first_wrote_into_it(tmp_path):
    out = tmp_path / "res"
    claim_grid_out(out, "synthetic", False, [], ["gmc"], [0, 1])
    assert "name: synthetic" in (out / "grid.yaml").read_text()
    claim_grid_out(out, "synthetic", False, [], ["gmc"], [0, 1])  # the same grid again: continues / reuses
    for name, quick, overrides, found in [("synthetic_emotion", False, [], "'synthetic_emotion'"),
                                          ("synthetic", True, [], "'synthetic' --quick"),
                                          ("synthetic", False, ["train.epochs=1"], "['train.epochs=1']")]:
        with pytest.raises(ValueError, match=rf"holds the results of grid 'synthetic'; refusing to write grid "
                                             rf".*{found}.*give another --out, or remove"):
            claim_grid_out(out, name, quick, overrides, ["gmc"], [0])
    assert "name: synthetic\n" in (out / "grid.yaml").read_text()  # left as found


def test_a_folder_with_results_but_no_grid_file_is_refused(tmp_path):
    (tmp_path / "robustness.csv").write_text("x\n")
    with pytest.raises(ValueError, match=r"holds results \(robustness.csv or runs/\) but no grid.yaml"):
        claim_grid_out(tmp_path, "synthetic", True, [], ["gmc"], [0])
    assert not (tmp_path / "grid.yaml").exists()
    claim_grid_out(tmp_path / "empty", "synthetic", True, [], ["gmc"], [0])  # a new or empty folder is taken


@pytest.mark.slow
def test_two_grids_into_their_default_folders_leave_both_intact(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "--quick", *TINY]) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith(str(Path("results/synthetic-quick")))
    # --quick says, above its table, that it is a smoke test and not a result
    assert printed.startswith("SMOKE TEST (--quick: 1 seed, few methods, short training): ")
    assert "they are not results; run without --quick for the table" in printed.splitlines()[0]
    first = _snapshot(tmp_path / "results" / "synthetic-quick")
    assert main(["reproduce", "synthetic_emotion", "--quick", *TINY]) == 0
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["synthetic-quick", "synthetic_emotion-quick"]
    assert _snapshot(tmp_path / "results" / "synthetic-quick") == first
    # run directories are named like `train`'s, <dataset>-<method>-seed<seed>, under their grid's folder
    assert sorted(p.name for p in (tmp_path / "results" / "synthetic_emotion-quick" / "runs").iterdir()) == \
        ["synthetic-gmc-seed0", "synthetic-gmc_pf-seed0", "synthetic-late_fusion-seed0"]
    # a grid sent into another grid's folder: a one-line error, nothing written
    capsys.readouterr()
    assert main(["reproduce", "synthetic_emotion", "--quick", *TINY, "--out", "results/synthetic-quick"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robustfusion reproduce: error: results/synthetic-quick holds the results of grid "
                          "'synthetic' --quick") and err.count("\n") == 1
    assert _snapshot(tmp_path / "results" / "synthetic-quick") == first
