"""``--launcher ray``: one Ray task per run, with ``num_cpus=--cpus-per-job`` (its torch thread
count) and ``num_gpus=--gpus-per-job``, on an existing cluster (``--ray-address`` or
``RAY_ADDRESS``: ``ray.init(address=...)``) or on a Ray started here for this grid
(``ray.init(num_cpus=...)``, shut down after). Needs ``pip install "robustfusion[ray]"``.

The runs' directories are written by the Ray workers under ``OUT/runs``: on a cluster of several
machines ``OUT`` must be on a filesystem they share for a later call to reuse them (the rows
themselves come back through Ray, so ``robustness.csv`` is complete either way), and every node
needs robustfusion installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from robustfusion.runner.launchers import LAUNCHERS, Launcher, LauncherInfo, OnDone, import_engine
from robustfusion.runner.resources import available_cores

__all__ = ["RayLauncher"]


def run_job(fn: Callable[..., Any], args: tuple, num_threads: int) -> Any:
    """The Ray task: one job with ``num_threads`` torch threads."""
    return fn(*args, num_threads=num_threads)


class RayLauncher(Launcher):
    """``jobs``: at most this many runs at once (``None``: as many as the cluster schedules; a Ray
    started here then gets every core of this machine, else ``jobs * cpus_per_job`` CPUs).
    ``gpus_per_job`` ``None``: 1 when this process sees CUDA, else 0 (fractions share a GPU)."""

    name = "ray"

    def __init__(self, jobs: int | None = None, cpus_per_job: int = 1, gpus_per_job: float | None = None,
                 address: str | None = None) -> None:
        # every epoch line of every run reaches this terminal (Ray folds repeated-looking lines by default);
        # read when ray is first imported
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        self.ray = import_engine("ray", "ray")
        if gpus_per_job is None:
            import torch

            gpus_per_job = 1 if torch.cuda.is_available() else 0
        self.jobs, self.cpus, self.gpus = jobs, int(cpus_per_job), float(gpus_per_job)
        self.address = address or os.environ.get("RAY_ADDRESS") or None

    def local_cpus(self) -> int:
        """``num_cpus`` of a Ray started here."""
        return self.jobs * self.cpus if self.jobs else max(available_cores(), self.cpus)

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple], on_done: OnDone, *, out: Path,
            log: Callable[[str], None]) -> None:
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            if self.address:
                ray.init(address=self.address)
            else:  # "local": a new Ray even if another one runs on this machine
                ray.init(address="local", num_cpus=self.local_cpus(), include_dashboard=False)
        try:
            have = ray.cluster_resources()
            if not self.address and started:  # a Ray of our own never grows: refuse what it cannot schedule
                for what, need in (("CPU", self.cpus), ("GPU", self.gpus)):
                    if need > have.get(what, 0):
                        raise ValueError(f"--launcher ray: each run asks for {need:g} {what}(s), "
                                         f"found {have.get(what, 0):g} on the local Ray")
            limit = self.jobs or len(jobs)
            log(f"{len(jobs)} runs as Ray tasks ({self.cpus} CPU(s), {self.gpus:g} GPU(s), {self.cpus} torch "
                f"thread(s) each; at most {limit} at once) on {self.address or 'a local Ray'} "
                f"with {have.get('CPU', 0):g} CPU(s), {have.get('GPU', 0):g} GPU(s)")
            self._collect(fn, jobs, on_done, limit)
        finally:
            if started:
                ray.shutdown()

    def _collect(self, fn: Callable[..., Any], jobs: Sequence[tuple], on_done: OnDone, limit: int) -> None:
        ray = self.ray
        task = ray.remote(run_job).options(num_cpus=self.cpus, num_gpus=self.gpus)
        pending: dict[Any, int] = {}
        queued = iter(enumerate(jobs))
        try:
            while True:
                for i, args in queued:
                    pending[task.remote(fn, args, self.cpus)] = i
                    if len(pending) >= limit:
                        break
                if not pending:
                    return
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    on_done(pending.pop(ref), ray.get(ref))
        finally:
            for ref in pending:  # a failed job or an interrupt: stop the rest
                ray.cancel(ref, force=True)


def _build(jobs: int | None, cpus_per_job: int | None = None, gpus_per_job: float | None = None,
           ray_address: str | None = None) -> RayLauncher:
    return RayLauncher(jobs=jobs, cpus_per_job=cpus_per_job or 1, gpus_per_job=gpus_per_job, address=ray_address)


LAUNCHERS.add("ray", LauncherInfo("ray", _build, options=("cpus_per_job", "gpus_per_job", "ray_address"),
                                  needs="Ray", extra="ray"))
