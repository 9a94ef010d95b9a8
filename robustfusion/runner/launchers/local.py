"""``--launcher local``: the jobs in this process one after another (``--jobs 1``), or on a pool
of ``--jobs N`` spawned processes, each with ``cores // N`` torch threads."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from robustfusion.runner.launchers import LAUNCHERS, Launcher, LauncherInfo, OnDone
from robustfusion.runner.resources import auto_num_threads

__all__ = ["LocalLauncher"]


class LocalLauncher(Launcher):
    """``jobs`` processes at most (1: in this process, with the run's own thread default)."""

    name = "local"

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"--jobs {jobs}: expected a number of processes >= 1")
        self.jobs = jobs

    @property
    def concurrent(self) -> bool:
        return self.jobs > 1

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple], on_done: OnDone, *, out: Path,
            log: Callable[[str], None]) -> None:
        workers = min(self.jobs, len(jobs))
        if workers <= 1:
            for i, args in enumerate(jobs):
                on_done(i, fn(*args))
            return
        threads = auto_num_threads(workers)
        log(f"{len(jobs)} runs on {workers} processes, {threads} torch thread(s) each")
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            pending = {pool.submit(fn, *args, num_threads=threads): i for i, args in enumerate(jobs)}
            while pending:
                ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(ready, key=pending.__getitem__):  # ties in the jobs' order
                    on_done(pending.pop(fut), fut.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _build(jobs: int | None) -> LocalLauncher:
    return LocalLauncher(jobs=jobs or 1)


LAUNCHERS.add("local", LauncherInfo("local", _build))
