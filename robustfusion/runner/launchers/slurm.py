"""``--launcher submitit``: the runs as one SLURM job array (submitit's ``AutoExecutor`` and
``map_array``, one array task per run), its scripts, pickles and logs under ``OUT/submitit/``.
``--submitit-cluster local`` runs the same array on this machine with submitit's local executor
(every task at once, as subprocesses), which is how the tests check it.
Needs ``pip install "robustfusion[submitit]"``.

Each task gets ``--cpus-per-job`` CPUs (its torch thread count), ``--gpus-per-job`` GPUs, the
time limit ``--slurm-time`` and the partition ``--slurm-partition``; any other sbatch option goes
through ``--slurm-option KEY=VALUE`` (``account=...``, ``qos=...``, ``mem=16G``, ``constraint=...``).
``--jobs N`` caps how many tasks run at once (the array's ``%N``). ``OUT`` must be on a filesystem
the compute nodes share (submitit's pickles live there), and the nodes run the same Python.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from robustfusion.runner.launchers import LAUNCHERS, Launcher, LauncherInfo, OnDone, import_engine

__all__ = ["DEFAULT_TIME_MIN", "SubmititLauncher", "slurm_minutes"]

#: time limit of each array task when ``--slurm-time`` is not given (this library's choice)
DEFAULT_TIME_MIN = 120
CLUSTERS = ("slurm", "local")
#: sbatch options with a flag of their own (or set by submitit itself)
_OWN_FLAGS = {"partition": "--slurm-partition", "time": "--slurm-time", "cpus_per_task": "--cpus-per-job",
              "gpus": "--gpus-per-job", "gpus_per_node": "--gpus-per-job", "gres": "--gpus-per-job",
              "array": "--jobs", "job_name": None, "output": None, "error": None}


def slurm_minutes(text: str) -> int:
    """A SLURM time limit (``MIN``, ``MIN:SEC``, ``H:MIN:SEC``, ``D-H``, ``D-H:MIN``, ``D-H:MIN:SEC``)
    in whole minutes, rounded up."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise ValueError(f"--slurm-time {text}: expected minutes or [D-]HH:MM:SS (SLURM's --time)")
    days, a, b, c = (int(x) if x else 0 for x in m.groups())
    if m.group(1):  # D-H[:MIN[:SEC]]
        seconds = ((days * 24 + a) * 60 + b) * 60 + c
    elif m.group(4):  # H:MIN:SEC
        seconds = (a * 60 + b) * 60 + c
    else:  # MIN[:SEC]
        seconds = a * 60 + b
    if seconds <= 0:
        raise ValueError(f"--slurm-time {text}: expected a time limit > 0")
    return math.ceil(seconds / 60)


def _call(fn: Callable[..., Any], args: tuple, num_threads: int) -> Any:
    """One array task: one job with ``num_threads`` torch threads."""
    return fn(*args, num_threads=num_threads)


class SubmititLauncher(Launcher):
    """``cluster``: ``"slurm"`` (``sbatch`` must be on PATH) or ``"local"``; ``jobs``: the array's
    parallelism (``None``: submitit's default, 256); ``options``: ``KEY=VALUE`` sbatch options."""

    name = "submitit"

    def __init__(self, jobs: int | None = None, cpus_per_job: int = 1, gpus_per_job: float = 0,
                 cluster: str = "slurm", partition: str | None = None, time_limit: str | None = None,
                 options: Sequence[str] = ()) -> None:
        if cluster not in CLUSTERS:
            raise ValueError(f"--submitit-cluster {cluster}: expected one of {', '.join(CLUSTERS)}")
        if gpus_per_job != int(gpus_per_job):
            raise ValueError(f"--gpus-per-job {gpus_per_job:g}: expected a whole number of GPUs with --launcher submitit")
        if cluster == "local" and jobs is not None:
            raise ValueError(f"--jobs {jobs}: expected no --jobs with --submitit-cluster local "
                             "(the local executor starts every array task at once)")
        self.extra: dict[str, str] = {}
        for option in options:
            key, sep, value = option.partition("=")
            key = key.strip().lstrip("-").replace("-", "_")
            if not sep or not key or not value:
                raise ValueError(f"--slurm-option {option}: expected KEY=VALUE (an sbatch option, e.g. account=abc)")
            if key in _OWN_FLAGS:
                raise ValueError(f"--slurm-option {option}: expected an sbatch option without a flag of its own, "
                                 f"found {key}" + (f" (use {_OWN_FLAGS[key]})" if _OWN_FLAGS[key] else
                                                   " (set by submitit)"))
            self.extra[key] = value
        self.jobs, self.cpus, self.gpus, self.cluster = jobs, int(cpus_per_job), int(gpus_per_job), cluster
        self.partition = partition
        self.time_min = slurm_minutes(time_limit) if time_limit is not None else DEFAULT_TIME_MIN
        self.submitit = import_engine("submitit", "submitit")  # options first: a wrong flag is named even without it
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ValueError("--launcher submitit: expected SLURM (sbatch on PATH), found none; "
                             "--submitit-cluster local runs the array on this machine")

    def executor(self, folder: Path) -> Any:
        """The configured ``submitit.AutoExecutor`` writing under ``folder``."""
        executor = self.submitit.AutoExecutor(folder=folder, cluster=self.cluster)  # files named by job id
        params: dict[str, Any] = {"name": "robustfusion", "timeout_min": self.time_min, "nodes": 1,
                                  "tasks_per_node": 1, "cpus_per_task": self.cpus, "gpus_per_node": self.gpus}
        if self.cluster == "slurm":
            if self.partition:
                params["slurm_partition"] = self.partition
            if self.jobs:
                params["slurm_array_parallelism"] = self.jobs
            if self.extra:
                params["slurm_additional_parameters"] = dict(self.extra)
        executor.update_parameters(**params)
        return executor

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple], on_done: OnDone, *, out: Path,
            log: Callable[[str], None]) -> None:
        folder = Path(out).resolve() / "submitit"
        n = len(jobs)
        submitted = self.executor(folder).map_array(_call, [fn] * n, list(jobs), [self.cpus] * n)
        first = submitted[0].job_id.split("_")[0] if submitted else "-"
        log(f"{n} runs as {'SLURM job array ' + first if self.cluster == 'slurm' else 'local submitit jobs'} "
            f"({self.cpus} CPU(s), {self.gpus} GPU(s), {self.time_min} min each); logs under {folder}")
        poll = 10.0 if self.cluster == "slurm" else 0.5
        pending = dict(enumerate(submitted))
        try:
            while pending:
                ready = [i for i, job in pending.items() if job.done()]
                for i in ready:
                    on_done(i, pending.pop(i).result())
                if pending and not ready:
                    time.sleep(poll)
        finally:
            for job in pending.values():  # a failed task or an interrupt: stop the rest
                job.cancel(check=False)


def _build(jobs: int | None, cpus_per_job: int | None = None, gpus_per_job: float | None = None,
           submitit_cluster: str | None = None, slurm_partition: str | None = None, slurm_time: str | None = None,
           slurm_options: Sequence[str] | None = None) -> SubmititLauncher:
    return SubmititLauncher(jobs=jobs, cpus_per_job=cpus_per_job or 1, gpus_per_job=gpus_per_job or 0,
                            cluster=submitit_cluster or "slurm", partition=slurm_partition, time_limit=slurm_time,
                            options=slurm_options or ())


LAUNCHERS.add("submitit", LauncherInfo("submitit", _build, options=(
    "cpus_per_job", "gpus_per_job", "submitit_cluster", "slurm_partition", "slurm_time", "slurm_options"),
    needs="submitit", extra="submitit"))
