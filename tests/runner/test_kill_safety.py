"""A run directory that any kill leaves resumable to identical results and evaluable; an evaluation
folder that a kill leaves as the old complete set or the new one; outputs with the umask's mode.

The SIGKILL tests kill a real `robustfusion` process at random instants. By default 5 training
instants (2 within the first second) plus 2 event-triggered ones (the moment the start-up folder
appears, the moment the run directory appears), and 3 evaluation instants plus one event (the new
folder's tables being written); the issue's full counts:
``ROBUSTFUSION_KILL_TRAIN=20 ROBUSTFUSION_KILL_EVAL=10``. ``ROBUSTFUSION_KILL_SEED`` picks the
instants (printed on failure).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robustfusion.io import owner_tag
from robustfusion.runner.api import evaluate_run, load_run, resume_run, train_run
from robustfusion.runner.config import load_config
from robustfusion.runner.epoch_log import read_metrics

ROOT = Path(__file__).resolve().parents[2]
GMC_SYNTH = str(ROOT / "configs" / "synthetic" / "gmc.yaml")
TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=48", "train.epochs=3",
        "train.batch_size=32", "model.params.hidden_dim=8", "train.progress=false", "train.modality_dropout=0.2"]
FAST_EVAL = ["eval.levels=[0.0,0.5,1.0]"]
OLD_EVAL = ["eval.levels=[0.0,1.0]", "eval.protocols=[subsets]"]
SAME_BYTES = ("config.yaml", "model.json", "standardizer.json", "final.json", "model.safetensors")
N_TRAIN = int(os.environ.get("ROBUSTFUSION_KILL_TRAIN", "5"))
N_EVAL = int(os.environ.get("ROBUSTFUSION_KILL_EVAL", "3"))
SEED = int(os.environ.get("ROBUSTFUSION_KILL_SEED", "14"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


class _Kill(Exception):
    pass


def _kill_at(epoch):
    def hook(e):
        if e == epoch:
            raise _Kill
    return hook


def _cfg(extra=()):
    return load_config(GMC_SYNTH, [*TINY, *extra])


def _bytes(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in SAME_BYTES}


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.name.endswith((".tmp", ".new", ".old", ".starting"))]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted in-process run."""
    return train_run(_cfg(), run_dir=tmp_path_factory.mktemp("ref") / "run").dir


def _assert_like_reference(run_dir: Path, ref: Path) -> None:
    assert _bytes(run_dir) == _bytes(ref)
    assert [r["epoch"] for r in read_metrics(run_dir / "metrics.jsonl")] == [1, 2, 3]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["LATEST", "best.safetensors", "epoch-0003"]
    assert not _temporaries(run_dir)
    load_run(run_dir)  # evaluable: model.json, weights and standardisation read back


# ------------------------------------------------------------------ start-up (in process)

def test_resume_rewrites_startup_files_a_kill_left_missing(tmp_path, reference):
    """A directory from before this fix, killed right after config.yaml appeared: resume repairs it."""
    run_dir = tmp_path / "run"
    with pytest.raises(_Kill):
        train_run(_cfg(), run_dir=run_dir, on_epoch_end=_kill_at(1))
    for name in ("env.json", "model.json", "standardizer.json"):
        (run_dir / name).unlink()
    (run_dir / ".final.json.x1.tmp").write_text("torn")  # killed writers' leftovers
    (run_dir / "checkpoints" / ".LATEST.x2.tmp").write_text("torn")
    (run_dir / "checkpoints" / "epoch-0002").mkdir()  # a checkpoint killed before LATEST named it
    run = resume_run(run_dir)
    assert run.dir == run_dir and (run_dir / "env.json").is_file()
    _assert_like_reference(run_dir, reference)


def test_a_kill_before_the_run_directory_is_renamed_in_leaves_nothing_behind(tmp_path, monkeypatch, reference):
    from robustfusion.runner import rundir

    def killed(*a, **k):
        raise _Kill  # the process dies with the start-up folder half written

    out = tmp_path / "runs"
    cfg = _cfg()
    monkeypatch.setattr(rundir, "write_run_files", killed)
    with pytest.raises(_Kill):
        train_run(cfg, out=out)
    monkeypatch.undo()
    assert list(out.iterdir()) == []  # the temporary went with the (simulated) process
    # a SIGKILL cannot clean up: a dead process's .starting folder is removed by the next run
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = rundir.run_name(cfg)
    stale = out / f".{name}.{owner_tag().rpartition('-')[0]}-{dead.pid}.starting"
    stale.mkdir()
    (stale / "env.json").write_text("{")
    run = train_run(cfg, out=out)
    assert run.dir == out / name and sorted(p.name for p in out.iterdir()) == [name]
    _assert_like_reference(run.dir, reference)


def test_an_existing_run_directory_is_never_overwritten(tmp_path):
    from robustfusion.runner.rundir import run_name

    out = tmp_path / "runs"
    cfg = _cfg(["train.epochs=1"])
    name = run_name(cfg)
    first = train_run(cfg, out=out).dir
    (out / f"{name}-2").mkdir()  # junk: a folder without config.yaml that is not empty
    (out / f"{name}-2" / "notes.txt").write_text("mine")
    second = train_run(cfg, out=out).dir
    assert first.name == name and second.name == f"{name}-3"
    assert (out / f"{name}-2" / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------ metrics.jsonl

def test_resume_cuts_metrics_back_to_the_last_checkpoint_and_skips_a_torn_line(tmp_path, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(_Kill):
        train_run(_cfg(), run_dir=run_dir, on_epoch_end=_kill_at(2))
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    # killed after epoch 3's metrics line, before its checkpoint; then a torn half line
    extra = json.dumps({**json.loads(lines[-1]), "epoch": 3})
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write(extra + "\n" + extra[: len(extra) // 2])
    resume_run(run_dir)
    _assert_like_reference(run_dir, reference)
    ref_rows = read_metrics(reference / "metrics.jsonl")
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in rows] == \
        [{k: v for k, v in r.items() if k != "time_s"} for r in ref_rows]


def test_resume_before_the_first_checkpoint_drops_every_metrics_line(tmp_path, reference):
    run_dir = tmp_path / "run"
    with pytest.raises(_Kill):
        train_run(_cfg(), run_dir=run_dir, on_epoch_end=_kill_at(1))
    ckpt = run_dir / "checkpoints"
    for p in ckpt.iterdir():  # as if killed between epoch 1's metrics line and its checkpoint
        if p.is_dir():
            for f in p.iterdir():
                f.unlink()
            p.rmdir()
    (ckpt / "LATEST").unlink()
    resume_run(run_dir)
    _assert_like_reference(run_dir, reference)


def test_read_metrics_names_a_broken_line_that_is_not_the_last(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl: line 2"):
        read_metrics(path)
    path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert [r["epoch"] for r in read_metrics(path)] == [1, 2]
    assert [r["epoch"] for r in read_metrics(path, before_epoch=2)] == [1]
    assert read_metrics(tmp_path / "missing.jsonl") == []


# ------------------------------------------------------------------ evaluation folder

def _eval_state(folder: Path) -> dict[str, bytes | list[str]]:
    """What must match between two complete versions (PDFs hold a creation date: names only)."""
    state: dict[str, bytes | list[str]] = {name: (folder / name).read_bytes() for name in
                                           ("robustness.csv", "robustness_aggregate.csv", "table.md", "table.tex")}
    state["plots"] = sorted(p.name for p in (folder / "plots").iterdir())
    state["top"] = sorted(p.name for p in folder.iterdir())
    return state


def test_evaluate_out_and_a_failed_evaluation_keep_a_complete_folder(tmp_path, reference, monkeypatch):
    from robustfusion.runner import api

    out = tmp_path / "elsewhere" / "eval"
    got, rows = evaluate_run(reference, OLD_EVAL, out=out)
    assert got == out and rows and not (reference / "eval").exists()
    old = _eval_state(out)
    assert "robustness.csv" in old["top"] and old["plots"]

    def broken(*a, **k):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(api, "write_report", broken)
    with pytest.raises(RuntimeError):
        evaluate_run(reference, FAST_EVAL, out=out)
    monkeypatch.undo()
    assert _eval_state(out) == old and not _temporaries(out.parent)
    evaluate_run(reference, FAST_EVAL, out=out)
    new = _eval_state(out)
    assert new["robustness.csv"] != old["robustness.csv"] and not _temporaries(out.parent)
    # the default folder, RUN/eval/<split>, is written the same way
    default, _ = evaluate_run(reference, FAST_EVAL)
    assert default == reference / "eval" / "test" and _eval_state(default) == new


def test_evaluate_refuses_to_replace_a_folder_with_files_of_its_own(tmp_path, reference):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.md"):
        evaluate_run(reference, OLD_EVAL, out=out)
    assert (out / "notes.md").read_text() == "mine"
    (out / "notes.md").unlink()
    evaluate_run(reference, OLD_EVAL, out=out)  # an empty folder is fine


# ------------------------------------------------------------------ umask

@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_every_output_has_the_mode_the_umask_gives(tmp_path, mask):
    with _umask(mask):
        run = train_run(_cfg(["train.epochs=1"]), out=tmp_path / "runs")
        evaluate_run(run.dir, OLD_EVAL)
    paths = [run.dir, *run.dir.rglob("*")]
    wrong = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths
             if stat.S_IMODE(p.stat().st_mode) != ((0o777 if p.is_dir() else 0o666) & ~mask)}
    assert not wrong
    assert len(paths) > 15


# ------------------------------------------------------------------ SIGKILL of real processes

def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "robustfusion", *args]


def _run(args, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(args, check=False, capture_output=True, text=True, env=ENV, **kw)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def _instants(n: int, total: float, rng: random.Random) -> list[float]:
    """``n`` instants in [0, total]; the first ceil(n/3) within the first second."""
    early = -(-n // 3)
    return [rng.uniform(0.0, 1.0) for _ in range(early)] + [rng.uniform(0.0, total) for _ in range(n - early)]


def _kill_when(args, ready, limit: float = 120.0) -> float:
    """Start ``args``; SIGKILL it when ``ready(elapsed)`` first holds; returns the elapsed time."""
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        while proc.poll() is None and not ready(time.monotonic() - t0) and time.monotonic() - t0 < limit:
            time.sleep(0.001)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    return time.monotonic() - t0


@pytest.mark.slow
def test_sigkill_at_random_instants_of_training_resumes_to_identical_bytes(tmp_path):
    train = _cli("train", GMC_SYNTH, *TINY)
    t0 = time.monotonic()
    ref_dir = Path(_run([*train, "--out", str(tmp_path / "ref")]).stdout.strip().splitlines()[-1])
    total = time.monotonic() - t0
    ref = _bytes(ref_dir)
    rng = random.Random(SEED)

    def appeared(out: Path, pattern: str):
        return lambda _t: any(out.glob(pattern))

    cases = [(f"t={t:.2f}s", t) for t in _instants(N_TRAIN, total * 1.05, rng)]
    cases += [("start-up folder appears", ".*.starting"), ("run directory appears", "*/config.yaml")]
    outcomes = []
    for k, (label, when) in enumerate(cases):
        out = tmp_path / f"k{k}"
        ready = (lambda t, w=when: t >= w) if isinstance(when, float) else appeared(out, when)
        at = _kill_when([*train, "--out", str(out)], ready)
        runs = [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []
        assert len(runs) <= 1, (label, runs)
        if runs:
            run_dir = runs[0]
            state = "finished" if (run_dir / "final.json").exists() else f"LATEST={_latest(run_dir)}"
            _run(_cli("train", "--resume", str(run_dir)))
        else:  # killed before the run directory existed: nothing to resume, train again
            state = "no run directory" + (" (a .starting folder)" if out.exists() and any(out.iterdir()) else "")
            run_dir = Path(_run([*train, "--out", str(out)]).stdout.strip().splitlines()[-1])
        outcomes.append(f"{label} (killed at {at:.2f}s): {state}")
        assert run_dir.name == ref_dir.name, outcomes
        assert _bytes(run_dir) == ref, outcomes
        assert [r["epoch"] for r in read_metrics(run_dir / "metrics.jsonl")] == [1, 2, 3], outcomes
        log = (run_dir / "train.log").read_text().splitlines()
        assert [ln.split(" epoch ")[1].split("/")[0] for ln in log] == ["1", "2", "3"], (outcomes, log)
        assert not _temporaries(out), (outcomes, _temporaries(out))
        load_run(run_dir)
    print("\n".join(outcomes))


def _latest(run_dir: Path) -> str:
    latest = run_dir / "checkpoints" / "LATEST"
    return latest.read_text().strip() if latest.exists() else "none"


@pytest.mark.slow
def test_sigkill_at_random_instants_of_evaluate_leaves_a_consistent_folder(tmp_path):
    run_dir = Path(_run(_cli("train", GMC_SYNTH, *TINY, "--out", str(tmp_path / "runs"))).stdout.strip().splitlines()[-1])
    folder = run_dir / "eval" / "test"
    t0 = time.monotonic()
    _run(_cli("evaluate", str(run_dir), *FAST_EVAL))
    total = time.monotonic() - t0
    new = _eval_state(folder)
    _run(_cli("evaluate", str(run_dir), *OLD_EVAL))
    old = _eval_state(folder)
    assert old != new
    rng = random.Random(SEED + 1)
    outcomes = []
    filling = run_dir / "eval"
    cases = [(f"t={t:.2f}s", lambda el, t=t: el >= t) for t in _instants(N_EVAL, total * 1.05, rng)]
    cases.append(("new folder being filled", lambda _el: any(filling.glob(".test.*.new/table.*"))))
    for label, ready in cases:
        at = _kill_when(_cli("evaluate", str(run_dir), *FAST_EVAL), ready)
        state = _eval_state(folder)
        version = "new" if state == new else "old" if state == old else "MIX"
        outcomes.append(f"{label} (killed at {at:.2f}s): {version}, "
                        f"{len(_temporaries(run_dir / 'eval'))} hidden sibling(s) left for the next evaluate")
        assert version != "MIX", outcomes
        assert not _temporaries(folder), outcomes
        if version == "new":  # back to the old set, so that the next kill can show a mix
            _run(_cli("evaluate", str(run_dir), *OLD_EVAL))
    _run(_cli("evaluate", str(run_dir), *FAST_EVAL))
    assert _eval_state(folder) == new and not _temporaries(run_dir / "eval")
    print("\n".join(outcomes))
