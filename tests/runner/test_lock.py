"""One writer per run directory: a second process is refused with a line naming the holder, a
dead holder's lock is taken over, and a resume drops epochs an older version wrote twice."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robustfusion.runner.api import evaluate_run, resume_run, train_run
from robustfusion.runner.config import load_config
from robustfusion.runner.epoch_log import read_metrics
from robustfusion.runner.lock import LOCK_NAME, RunLockedError, lock_holder, run_lock
from robustfusion.runner.rundir import drop_duplicate_epochs

ROOT = Path(__file__).resolve().parents[2]
GMC_SYNTH = str(ROOT / "configs" / "synthetic" / "gmc.yaml")
TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=48", "train.batch_size=32",
        "model.params.hidden_dim=8", "train.progress=false"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
HOLD = ("import sys\nfrom robustfusion.runner.lock import run_lock\n"
        "with run_lock(sys.argv[1], 'holder command'):\n    print('held', flush=True)\n    sys.stdin.read()\n")


class _Stop(Exception):
    pass


def _stop_at(epoch: int):
    def hook(e: int) -> None:
        if e == epoch:
            raise _Stop
    return hook


def _holder(run_dir: Path) -> subprocess.Popen:
    """A real second process holding ``run_dir``'s lock until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(timeout=30)


def test_a_second_process_is_refused_with_the_holder_named(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(RunLockedError) as err, run_lock(tmp_path):
            pass
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and socket.gethostname() in msg and "holder command" in msg
        assert "since 20" in msg and "\n" not in msg
        assert lock_holder(tmp_path)["pid"] == proc.pid
    finally:
        _release(proc)
    with run_lock(tmp_path) as path:  # released with the process
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()  # the holder removes its file


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path):
    proc = _holder(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    assert lock_holder(tmp_path)["pid"] == proc.pid  # the dead holder's record stays behind
    with run_lock(tmp_path, "next") as path:
        assert json.loads(path.read_text())["command"] == "next"


def test_a_planted_stale_lock_file_is_recovered(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999999999, "host": socket.gethostname(),
                                                  "command": "robustfusion train --resume x", "since": "2020"}))
    with run_lock(tmp_path) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_a_read_only_run_directory_runs_unlocked_only_when_the_lock_is_optional(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    tmp_path.chmod(0o555)
    try:
        with run_lock(tmp_path, required=False) as path:
            assert path is None
        with pytest.raises(PermissionError), run_lock(tmp_path):
            pass
    finally:
        tmp_path.chmod(0o755)


def test_run_lock_refuses_a_path_that_is_not_a_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="expected a run directory"), run_lock(tmp_path / "f"):
        pass


@pytest.fixture
def killed_run(tmp_path) -> Path:
    """A run of 3 epochs stopped after epoch 1 (resumable)."""
    cfg = load_config(GMC_SYNTH, [*TINY, "train.epochs=3"])
    with pytest.raises(_Stop):
        train_run(cfg, run_dir=tmp_path / "run", on_epoch_end=_stop_at(1))
    return tmp_path / "run"


def test_resume_and_evaluate_are_refused_while_another_process_holds_the_run(killed_run):
    proc = _holder(killed_run)
    try:
        with pytest.raises(RunLockedError, match=f"pid {proc.pid}"):
            resume_run(killed_run)
        assert [r["epoch"] for r in read_metrics(killed_run / "metrics.jsonl")] == [1]  # untouched
    finally:
        _release(proc)
    run = resume_run(killed_run)
    assert run.final["epochs_run"] == 3
    proc = _holder(killed_run)
    try:
        with pytest.raises(RunLockedError, match="holder command"):
            evaluate_run(killed_run, ["eval.levels=[0.0,1.0]", "eval.protocols=[subsets]"])
    finally:
        _release(proc)


def test_resume_drops_epochs_written_twice_by_an_older_version(killed_run):
    rows = read_metrics(killed_run / "metrics.jsonl")
    twice = rows + [{**rows[0], "time_s": 9.0}] + rows  # epoch 1 three times, as two writers left it
    (killed_run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in twice))
    (killed_run / "train.log").write_text("epoch 1/3\n" * 3)
    resume_run(killed_run)
    assert [r["epoch"] for r in read_metrics(killed_run / "metrics.jsonl")] == [1, 2, 3]
    assert len((killed_run / "train.log").read_text().splitlines()) == 3


def test_drop_duplicate_epochs_keeps_the_last_row_of_each_epoch_in_epoch_order(tmp_path):
    rows = [{"epoch": 1, "v": "a"}, {"epoch": 2, "v": "b"}, {"epoch": 1, "v": "c"}, {"epoch": 3, "v": "d"},
            {"epoch": 2, "v": "e"}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert drop_duplicate_epochs(tmp_path) == 2
    assert read_metrics(tmp_path / "metrics.jsonl") == [{"epoch": 1, "v": "c"}, {"epoch": 2, "v": "e"},
                                                        {"epoch": 3, "v": "d"}]
    before = (tmp_path / "metrics.jsonl").stat().st_mtime_ns
    assert drop_duplicate_epochs(tmp_path) == 0
    assert (tmp_path / "metrics.jsonl").stat().st_mtime_ns == before  # untouched when clean


N_CONCURRENT = int(os.environ.get("ROBUSTFUSION_LOCK_TRIALS", "2"))


@pytest.mark.slow
def test_two_concurrent_resumes_one_refuses_and_no_epoch_is_written_twice(tmp_path):
    """Two real ``robustfusion train --resume RUN`` started together: exactly one exits 2 with the
    one-line refusal naming the other, and ``metrics.jsonl`` holds every epoch once."""
    cfg = load_config(GMC_SYNTH, [*TINY, "train.epochs=12", "data.options.n_train=1024"])  # ~8 s to resume
    for trial in range(N_CONCURRENT):
        run_dir = tmp_path / f"run{trial}"
        with pytest.raises(_Stop):
            train_run(cfg, run_dir=run_dir, on_epoch_end=_stop_at(1))
        cmd = [sys.executable, "-m", "robustfusion", "train", "--resume", str(run_dir)]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
                 for _ in range(2)]
        results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
        codes = sorted(rc for rc, _, _ in results)
        assert codes == [0, 2], results
        refused = next(err for rc, _, err in results if rc == 2)
        winner = next(p for p, (rc, _, _) in zip(procs, results) if rc == 0)
        assert refused.count("\n") == 1 and "Traceback" not in refused
        assert f"is in use by pid {winner.pid}" in refused and "train --resume" in refused
        assert [r["epoch"] for r in read_metrics(run_dir / "metrics.jsonl")] == list(range(1, 13))
        assert not (run_dir / LOCK_NAME).exists()
        time.sleep(0.1)
