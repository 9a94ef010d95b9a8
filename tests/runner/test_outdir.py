"""``report --out`` and ``reproduce --out`` replaced whole: no file of an older version beside a
newer one, a user's own files refused, leftovers of a killed swap recovered, and kill -9 at random
instants leaving the old or the new set (the latter in a few ``slow`` trials; the issue's 20 + 20
with ``benchmarks/kill_result_folders.py``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robustfusion.cli import main
from robustfusion.io import owner_tag
from robustfusion.results import write_rows_csv
from robustfusion.runner.outdir import (
    REPORT_FILES,
    REPRODUCE_FILES,
    check_result_dir,
    prepare_result_dir,
    relocate,
)
from robustfusion.runner.report import report_dirs
from tests.reporting.conftest import make_rows

ROOT = Path(__file__).resolve().parents[2]


def _csv(tmp_path: Path, name: str, protocols: tuple[str, ...]) -> Path:
    rows = [r for r in make_rows() if r["protocol"] in protocols]
    return write_rows_csv(rows, tmp_path / name / "robustness.csv")


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_a_report_with_fewer_outputs_leaves_no_file_of_the_previous_one(tmp_path):
    full = _csv(tmp_path, "full", ("subsets", "sample_rate", "frame_rate", "sample_rate_mean"))
    small = _csv(tmp_path, "small", ("subsets",))
    out = tmp_path / "report"
    first = report_dirs([full], out)
    before = _files(out)
    assert any("frame_rate" in f for f in before)
    second = report_dirs([small], out)
    after = _files(out)
    assert not any("rate" in f for f in after), after
    assert after < before
    table = (out / "table.md").read_text()
    for f in after:
        if f.startswith("plots/") and f.endswith(".png"):
            assert f in table
    # the returned paths name the final folder, not the hidden one the report was built in
    assert second["table_md"] == out / "table.md" and all(p.parent == out / "plots" for p in second["plots"])
    assert first["table_md"] == out / "table.md"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_report_refuses_a_folder_holding_files_of_its_own(tmp_path, capsys):
    src = _csv(tmp_path, "src", ("subsets",))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    assert main(["report", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "thesis.tex" in err and "replaced as a whole" in err and err.count("\n") == 1
    assert (out / "thesis.tex").read_text() == "mine" and _files(out) == {"thesis.tex"}


def test_check_result_dir_allows_its_own_entries_and_recovers_a_killed_swap(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tag = f"{owner_tag().rpartition('-')[0]}-{dead.pid}"
    out = tmp_path / "results"
    (out / "plots").mkdir(parents=True)
    (out / "table.md").write_text("old")
    (out / ".table.md.x.tmp").write_text("torn")  # hidden temporaries are the command's own
    half = tmp_path / f".results.{tag}.new"
    (half / "runs" / "gmc-seed0").mkdir(parents=True)  # a swap killed after the runs moved over
    assert check_result_dir(out, REPRODUCE_FILES, "reproduce", ("runs",)) == out
    assert (out / "runs" / "gmc-seed0").is_dir() and not half.exists()
    (out / "runs" / "x").mkdir()
    with pytest.raises(FileExistsError, match=r"report --out .*runs"):
        prepare_result_dir(out, "report")
    assert REPORT_FILES < REPRODUCE_FILES | {"sources.json"}
    with pytest.raises(ValueError, match="expected command 'reproduce' or 'report', found 'train'"):
        prepare_result_dir(out, "train")


def test_relocate_maps_paths_under_the_built_folder_only(tmp_path):
    built, final = tmp_path / ".x.new", tmp_path / "x"
    obj = {"a": built / "t.md", "b": [built / "plots" / "p.png"], "c": Path("/elsewhere"), "d": "text"}
    assert relocate(obj, built, final) == {"a": final / "t.md", "b": [final / "plots" / "p.png"],
                                           "c": Path("/elsewhere"), "d": "text"}


def test_a_symlink_loop_as_out_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    src = _csv(tmp_path, "src", ("subsets",))
    assert main(["report", str(src), "--out", str(loop)]) == 2
    err = capsys.readouterr().err
    assert "symlink" in err and "loop" in err and err.count("\n") == 1 and "Errno" not in err


def _kill_script():
    spec = importlib.util.spec_from_file_location("kill_result_folders", ROOT / "benchmarks" / "kill_result_folders.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: kill trials per command (the last one at the moment the hidden sibling appears); the issue's 20 + 20:
#: ``python benchmarks/kill_result_folders.py`` or ROBUSTFUSION_KILL_OUT=20
N_KILL = {"report": 3, "reproduce": 2}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["report", "reproduce"])
def test_sigkill_at_random_instants_leaves_the_old_or_the_new_set(tmp_path, kind):
    n = int(os.environ.get("ROBUSTFUSION_KILL_OUT", N_KILL[kind]))
    lines = _kill_script().trials(kind, n, seed=3, work=tmp_path, log=lambda line: None)
    assert len(lines) == n
