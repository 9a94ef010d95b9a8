"""SIGKILL ``robustfusion reproduce --quick`` and ``robustfusion report`` at random instants while
they rewrite a used ``--out`` folder; check that the folder holds the old complete set of outputs
or the new one, never a mix, and that the next (complete) run leaves no temporaries behind.

Each trial alternates between two versions of the outputs (``report``: from two evaluation folders,
then from one, which writes fewer plots; ``reproduce``: ``train.num_threads=1`` / ``2``, which reuse
the same trained runs and differ in ``grid.yaml``), starts the command, kills it at a random instant
(uniform over one complete run's duration, a third within the first second, plus the moment the
hidden ``.NAME.*.new`` sibling appears), then checks:

* every output file of the folder (``runs/`` aside) is byte-identical to the old version, or to the
  new one (``timings.json`` aside, which holds wall times), and all are older than the kill trial
  or all are newer (a mix of the two would show in either check);
* the trained runs under ``runs/`` are all there;

then runs the command to completion and checks the folder is exactly that version with no hidden
sibling beside it and no ``.*.tmp`` inside.

    python benchmarks/kill_result_folders.py --report 20 --reproduce 20 --seed 0

``tests/runner/test_outdir.py`` runs a handful of trials of each (marked ``slow``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT),
       "SOURCE_DATE_EPOCH": "0"}  # PDFs without a creation date: byte-comparable versions
TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=48", "train.epochs=2",
        "train.batch_size=32", "train.progress=false", "eval.levels=[0.0,1.0]", "eval.protocols=[subsets,sample_rate]"]
KEPT = ("runs", "submitit")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "robustfusion", *args]


def run(args: list[str]) -> subprocess.CompletedProcess:
    res = subprocess.run(args, check=False, capture_output=True, text=True, env=ENV)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{res.stderr[-2000:]}")
    return res


def outputs(folder: Path) -> dict[str, tuple[bytes, int]]:
    """``{relative path: (bytes, mtime_ns)}`` of every file under ``folder`` except the kept runs."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if rel.parts[0] in KEPT or not p.is_file():
            continue
        out[str(rel)] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


def leftovers(folder: Path) -> list[str]:
    """Hidden siblings of ``folder`` and ``.*.tmp`` files inside it (``runs/`` aside)."""
    found = [p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    found += [str(p) for p in folder.rglob(".*.tmp") if "runs" not in p.relative_to(folder).parts]
    return found


def kill_when(args: list[str], ready: Callable[[float], bool], limit: float = 300.0) -> tuple[float, bool]:
    """Start ``args``; SIGKILL it when ``ready(elapsed)`` first holds; returns the elapsed time and
    whether it was killed (False: it ended first)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    killed = False
    try:
        while proc.poll() is None and not ready(time.monotonic() - t0) and time.monotonic() - t0 < limit:
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
                killed = True
        proc.wait()
    return time.monotonic() - t0, killed


def _same(a: dict, b: dict, ignore: tuple[str, ...] = ()) -> bool:
    return a.keys() == b.keys() and all(a[k][0] == b[k][0] for k in a if k not in ignore)


def trials(kind: str, n: int, seed: int, work: Path, log=print) -> list[str]:
    """``n`` kill trials of ``kind`` (``"report"`` or ``"reproduce"``) in ``work``; returns one line
    per trial and raises ``AssertionError`` at the first violation."""
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "out"
    if kind == "report":
        run_dir = Path(run(cli("train", str(ROOT / "configs" / "synthetic" / "gmc.yaml"), *TINY[:-2],
                               "--out", str(work / "runs"))).stdout.strip().splitlines()[-1])
        for name, protocols in (("a", "[subsets]"), ("b", "[sample_rate]")):  # disjoint rows
            run(cli("evaluate", str(run_dir), "eval.levels=[0.0,1.0]", f"eval.protocols={protocols}",
                    "--out", str(work / name)))
        versions = [cli("report", str(work / "a"), str(work / "b"), "--out", str(folder)),
                    cli("report", str(work / "b"), "--out", str(folder))]  # the second writes fewer plots
        ignore: tuple[str, ...] = ()
    elif kind == "reproduce":
        versions = [cli("reproduce", "--quick", "--out", str(folder), *TINY, f"train.num_threads={k}") for k in (1, 2)]
        ignore = ("timings.json",)
    else:
        raise ValueError(f"kind: expected 'report' or 'reproduce', found {kind!r}")
    t0 = time.monotonic()
    run(versions[0])
    total = time.monotonic() - t0
    expected = {0: outputs(folder)}
    run(versions[1])
    expected[1] = outputs(folder)
    assert not _same(expected[0], expected[1], ignore), "the two versions must differ"
    runs = sorted(p.name for p in (folder / "runs").iterdir()) if (folder / "runs").exists() else []
    rng = random.Random(seed)
    early = -(-n // 3)
    cases: list[tuple[str, Callable[[float], bool]]] = [
        (f"t={t:.2f}s", lambda el, t=t: el >= t)
        for t in [rng.uniform(0, 1) for _ in range(early)] + [rng.uniform(0, 0.95 * total) for _ in range(n - early - 1)]]
    cases.append(("new sibling appears", lambda _el: any(folder.parent.glob(f".{folder.name}.*.new"))))
    lines = []
    state = 1  # the folder now holds version 1
    for k, (label, ready) in enumerate(cases):
        new = 1 - state
        t_start = time.time_ns()
        at, killed = kill_when(versions[new], ready)
        got = outputs(folder)
        stamps = {mt >= t_start for _, mt in got.values()}
        if _same(got, expected[state]):
            seen = "old set"
            assert stamps == {False}, (label, "old bytes with new files")
        elif _same(got, expected[new], ignore):
            seen = "new set"
            assert stamps == {True}, (label, "new bytes with old files")
        else:
            raise AssertionError(f"trial {k} ({label}, killed at {at:.2f}s): a mix of versions: "
                                 f"{sorted(set(got) ^ set(expected[state]))[:5]}")
        if runs:
            assert sorted(p.name for p in (folder / "runs").iterdir()) == runs, (label, "runs lost")
        left = leftovers(folder)
        run(versions[new])  # the next run: recovers, and leaves nothing behind
        assert _same(outputs(folder), expected[new], ignore), (label, "the next run's folder")
        expected[new] = outputs(folder)  # its timings.json is what the next trial finds
        assert not leftovers(folder), (label, leftovers(folder))
        state = new
        how = f"killed at {at:.2f}s" if killed else f"ended by itself at {at:.2f}s"
        line = f"{kind} trial {k}: {label}, {how}: {seen}; left {len(left)} temporaries, none after the next run"
        lines.append(line)
        log(line)
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--report", type=int, default=20, help="kill trials of report (default 20)")
    p.add_argument("--reproduce", type=int, default=20, help="kill trials of reproduce --quick (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    args = p.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        for kind, n in (("report", args.report), ("reproduce", args.reproduce)):
            if n:
                t0 = time.monotonic()
                lines = trials(kind, n, args.seed, work / kind)
                seen = [ln.split(": ")[-1].split(";")[0] for ln in lines]
                kills = sum(", killed at" in ln for ln in lines)
                print(f"{kind}: {n} trials, {kills} killed ({n - kills} ended before the instant), "
                      f"{seen.count('old set')} old set, {seen.count('new set')} new set, 0 mixed, 0 temporaries "
                      f"after the next run ({time.monotonic() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
