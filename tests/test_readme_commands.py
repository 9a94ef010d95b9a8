"""Every command line of the README's "Command line" section runs as written (issue 14).

The lines are read from README.md, split with ``shlex`` (comments dropped) and run through
``robustfusion.cli.main`` in a temporary working directory that holds a link to ``configs/``.
Where a line would take minutes or needs data that is not here, the test changes it, and says so:

* ``train configs/...`` (41 s as written) and ``reproduce --quick`` (~20 s) get the tiny overrides
  in ``TINY`` appended (fewer samples, 2 epochs, small models);
* ``/data/copy.pkl`` (the user's MulT pickle) becomes a miniature MulT pickle written here, and the
  run ``runs/mosi_mult-gmc-seed0`` that line evaluates is first trained on it (a line that is not in
  the README: ``train configs/mosi_mult/gmc.yaml data.path=... --out runs`` + ``TINY``).
"""

from __future__ import annotations

import pickle
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from robustfusion.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=48", "train.epochs=2",
        "train.batch_size=32", "model.params.hidden_dim=8", "train.progress=false"]
TINY_MULT = ["train.epochs=1", "train.batch_size=8", "model.params.hidden_dim=8", "train.progress=false"]
USER_PICKLE = "/data/copy.pkl"


def readme_commands() -> list[list[str]]:
    """The command lines of the README's "Command line" section, as argv lists."""
    section = README.read_text(encoding="utf-8").split("## Command line", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def _mult_pickle(path: Path) -> Path:
    rng = np.random.default_rng(0)

    def split(n):
        d = {m: rng.standard_normal((n, 50, dim)).astype(np.float32)  # 50 frames, as published
             for m, dim in (("text", 300), ("audio", 5), ("vision", 20))}
        d["labels"] = rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32)
        d["id"] = np.array([[f"vid{i}", f"{i}"] for i in range(n)])
        return d

    path.write_bytes(pickle.dumps({"train": split(24), "valid": split(12), "test": split(12)}, protocol=4))
    return path


def _run(argv: list[str], capsys) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, f"{shlex.join(['robustfusion', *argv])} exited {code}: {captured.err}"
    return captured.out


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_section_lists_every_command():
    cmds = readme_commands()
    assert all(c[0] == "robustfusion" for c in cmds)
    assert [c[1] for c in cmds] == ["train", "train", "evaluate", "evaluate", "report", "reproduce", "list"]


@pytest.mark.slow
def test_list_and_reproduce_run_as_written(workdir, capsys):
    for argv in readme_commands():
        if argv[1] == "list":
            assert "models:" in _run(argv[1:], capsys)
        elif argv[1] == "reproduce":
            out = _run(argv[1:] + TINY, capsys)
            lines = out.strip().splitlines()
            assert len(lines) < 40, out  # the headline table and where the rest is, not the whole report
            assert any(ln.startswith("| model (MAE") for ln in lines)
            assert any(ln.endswith("table.md") and Path(ln.split(": ")[-1]).is_file() for ln in lines)


@pytest.mark.slow
def test_train_resume_evaluate_report_run_as_written(workdir, capsys):
    _mult_pickle(workdir / "copy.pkl")
    for argv in readme_commands():
        args = argv[1:]
        if args[0] == "train" and "--resume" not in args:
            out = _run(args + TINY, capsys)
            assert out.strip().splitlines()[-1] == "runs/synthetic-gmc_pf-seed0"
        elif args[0] == "evaluate" and any(a.startswith("data.path=") for a in args):
            run = _run(["train", "configs/mosi_mult/gmc.yaml", f"data.path={workdir / 'copy.pkl'}", "--out", "runs",
                        *TINY_MULT], capsys).strip().splitlines()[-1]
            assert run == args[1], "the README's MulT run directory is not where `train` puts it"
            args = [a.replace(USER_PICKLE, str(workdir / "copy.pkl")) for a in args]
            _run(args, capsys)
            assert (workdir / args[1] / "eval" / "valid" / "robustness.csv").is_file()
        elif args[0] in ("train", "evaluate", "report"):
            _run(args, capsys)
    assert (workdir / "report" / "table.md").is_file()
