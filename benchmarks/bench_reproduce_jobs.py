"""Wall time of a reproduce grid run serially vs on a local process pool (``--jobs N``).

Each variant runs ``robustfusion reproduce`` as a fresh command (imports and process start-up
included) into its own empty folder, so no finished run is reused; the script checks that both
``robustness.csv`` files are byte-identical and prints the serial / parallel wall-time ratio.

    .venv/bin/python benchmarks/bench_reproduce_jobs.py            # the --quick grid (~15 s serial)
    .venv/bin/python benchmarks/bench_reproduce_jobs.py --full     # the default grid (~3 min serial)
    .venv/bin/python benchmarks/bench_reproduce_jobs.py --jobs 4 --grid synthetic_extended --full
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time_reproduce(grid: str, quick: bool, jobs: int, out: Path) -> float:
    cmd = [sys.executable, "-m", "robustfusion", "reproduce", grid, "--out", str(out), "--jobs", str(jobs)]
    if quick:
        cmd.append("--quick")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="synthetic", help="grid name (default: synthetic)")
    ap.add_argument("--full", action="store_true", help="the full grid instead of its --quick version")
    ap.add_argument("--jobs", type=int, default=2, help="processes of the parallel variant (default: 2)")
    args = ap.parse_args()
    quick = not args.full
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="rf-bench-jobs-") as tmp:
        serial = _time_reproduce(args.grid, quick, 1, Path(tmp) / "serial")
        parallel = _time_reproduce(args.grid, quick, args.jobs, Path(tmp) / "parallel")
        same = filecmp.cmp(Path(tmp) / "serial" / "robustness.csv", Path(tmp) / "parallel" / "robustness.csv",
                           shallow=False)
    grid = f"{args.grid}{'' if args.full else ' --quick'}"
    print(f"reproduce {grid} on {cores} cores: --jobs 1 {serial:.1f} s, --jobs {args.jobs} {parallel:.1f} s, "
          f"speed-up {serial / parallel:.2f}x; robustness.csv byte-identical: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
