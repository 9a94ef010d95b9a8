"""Where ``reproduce`` trains its runs: ``local`` (this process, or a pool of ``--jobs N``
processes), ``ray`` (one Ray task per run) or ``submitit`` (one SLURM array task per run).

A launcher only moves work: ``run(fn, jobs, on_done)`` calls ``fn(*args, num_threads=T)`` for
every ``args`` in ``jobs`` somewhere, with ``T`` the torch thread count it gives each job, and
hands each result to ``on_done(index, result)`` in this process as it arrives. Which runs to
train, their rows' order, the reference rows and the tables stay with the caller
(:mod:`robustfusion.runner.reproduce`), so every launcher writes the same ``robustness.csv``.

Ray and submitit are optional extras (``pip install "robustfusion[ray]"`` /
``"robustfusion[submitit]"``); they are imported here, when such a launcher is made, and nowhere
else in the package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["LAUNCHERS", "Launcher", "import_engine", "make_launcher"]

#: launcher name -> the optional extra (and the package) it needs
LAUNCHERS = {"local": None, "ray": "Ray", "submitit": "submitit"}

OnDone = Callable[[int, Any], None]


class Launcher:
    """Runs a list of jobs; subclasses say where. ``jobs``: at most this many at once
    (``None``: the launcher's default)."""

    name = "launcher"

    @property
    def concurrent(self) -> bool:
        """Whether several jobs may run at once (then ``reproduce`` launches the longest first)."""
        return True

    def run(self, fn: Callable[..., Any], jobs: Sequence[tuple], on_done: OnDone, *, out: Path,
            log: Callable[[str], None]) -> None:
        """Call ``fn(*args, num_threads=T)`` for each ``args`` in ``jobs`` and ``on_done(i, result)``
        in this process for each (in the order they finish). ``out``: the grid's output directory
        (a launcher may keep its own files below it). A failed job raises here, after the
        launcher has cancelled the jobs not yet finished."""
        raise NotImplementedError


def import_engine(module: str, launcher: str) -> ModuleType:
    """``import module`` for ``--launcher launcher``; a missing package is one ``ValueError``
    line that says which extra to install."""
    what = LAUNCHERS[launcher]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name == module:  # the package itself is absent (or blocked)
            raise ValueError(f'--launcher {launcher} needs {what}: pip install "robustfusion[{launcher}]"') from None
        raise ValueError(f"--launcher {launcher} needs {what}: expected `import {module}` to work, "
                         f"found {type(err).__name__}: {err}") from None


def make_launcher(name: str = "local", *, jobs: int | None = None, cpus_per_job: int | None = None,
                  gpus_per_job: float | None = None, ray_address: str | None = None,
                  submitit_cluster: str | None = None, slurm_partition: str | None = None,
                  slurm_time: str | None = None, slurm_options: Sequence[str] = ()) -> Launcher:
    """The launcher ``name`` with the options of ``robustfusion reproduce`` (``None``: not given).
    An option that does not belong to ``name`` is refused, so a typo never runs a grid
    somewhere else than meant."""
    if name not in LAUNCHERS:
        raise ValueError(f"--launcher {name}: expected one of {', '.join(LAUNCHERS)}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs {jobs}: expected a number of processes >= 1")
    given = {"--cpus-per-job": cpus_per_job, "--gpus-per-job": gpus_per_job, "--ray-address": ray_address,
             "--submitit-cluster": submitit_cluster, "--slurm-partition": slurm_partition,
             "--slurm-time": slurm_time, "--slurm-option": list(slurm_options) or None}
    belongs = {"local": (), "ray": ("--cpus-per-job", "--gpus-per-job", "--ray-address"),
               "submitit": ("--cpus-per-job", "--gpus-per-job", "--submitit-cluster", "--slurm-partition",
                            "--slurm-time", "--slurm-option")}[name]
    stray = [flag for flag, value in given.items() if value is not None and flag not in belongs]
    if stray:
        owners = [n for n, flags in (("ray", ("--ray-address",)),
                                     ("submitit", ("--submitit-cluster", "--slurm-partition", "--slurm-time",
                                                   "--slurm-option"))) if stray[0] in flags] or ["ray", "submitit"]
        raise ValueError(f"{stray[0]}: expected with --launcher {' or '.join(owners)}, found --launcher {name}")
    if cpus_per_job is not None and cpus_per_job < 1:
        raise ValueError(f"--cpus-per-job {cpus_per_job}: expected a number of CPUs >= 1")
    if gpus_per_job is not None and gpus_per_job < 0:
        raise ValueError(f"--gpus-per-job {gpus_per_job}: expected a number of GPUs >= 0")
    if name == "local":
        from robustfusion.runner.launchers.local import LocalLauncher

        return LocalLauncher(jobs=jobs or 1)
    if name == "ray":
        from robustfusion.runner.launchers.raytasks import RayLauncher

        return RayLauncher(jobs=jobs, cpus_per_job=cpus_per_job or 1, gpus_per_job=gpus_per_job,
                           address=ray_address)
    from robustfusion.runner.launchers.slurm import SubmititLauncher

    return SubmititLauncher(jobs=jobs, cpus_per_job=cpus_per_job or 1, gpus_per_job=gpus_per_job or 0,
                            cluster=submitit_cluster or "slurm", partition=slurm_partition,
                            time_limit=slurm_time, options=slurm_options)
