"""Where ``reproduce`` trains its runs: ``local`` (this process, or a pool of ``--jobs N``
processes), ``ray`` (one Ray task per run) or ``submitit`` (one SLURM array task per run).

A launcher only moves work: ``run(fn, jobs, on_done)`` calls ``fn(*args, num_threads=T)`` for
every ``args`` in ``jobs`` somewhere, with ``T`` the torch thread count it gives each job, and
hands each result to ``on_done(index, result)`` in this process as it arrives. Which runs to
train, their rows' order, the reference rows and the tables stay with the caller
(:mod:`robustfusion.runner.reproduce`), so every launcher writes the same ``robustness.csv``.

Each launcher is a :data:`LAUNCHERS` entry (:class:`LauncherInfo`: its builder, the package it
needs, the options that belong to it); the built-ins register theirs in their own modules, imported
by name at the end of this one. Ray and submitit are optional extras (``pip install
"robustfusion[ray]"`` / ``"robustfusion[submitit]"``); they are imported by :func:`import_engine`,
when such a launcher is made, and nowhere else in the package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from robustfusion.registry import Registry

__all__ = ["LAUNCHERS", "OPTION_FLAGS", "Launcher", "LauncherInfo", "import_engine", "make_launcher"]

OnDone = Callable[[int, Any], None]

#: :func:`make_launcher`'s options -> the ``robustfusion reproduce`` flag that sets each
OPTION_FLAGS = {"cpus_per_job": "--cpus-per-job", "gpus_per_job": "--gpus-per-job", "ray_address": "--ray-address",
                "submitit_cluster": "--submitit-cluster", "slurm_partition": "--slurm-partition",
                "slurm_time": "--slurm-time", "slurm_options": "--slurm-option"}


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


@dataclass(frozen=True)
class LauncherInfo:
    """A registered launcher. ``build(jobs=..., **options)`` makes it from ``jobs`` and the
    :func:`make_launcher` options in ``options`` (keys of :data:`OPTION_FLAGS`; ``None``: not given);
    any other option given is refused. ``needs``: the package it imports (named in errors),
    ``extra``: the pip extra that installs it (``None``: nothing to install)."""

    name: str
    build: Callable[..., Launcher]
    options: tuple[str, ...] = ()
    needs: str | None = None
    extra: str | None = None


#: Every launcher ``make_launcher`` knows, in registration order (``local``, ``ray``, ``submitit``).
LAUNCHERS: Registry[LauncherInfo] = Registry("launcher")


def import_engine(module: str, launcher: str) -> ModuleType:
    """``import module`` for ``--launcher launcher``; a missing package is one ``ValueError``
    line that says which extra to install."""
    info = LAUNCHERS.get(launcher)
    what = info.needs or module
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name == module:  # the package itself is absent (or blocked)
            how = f'pip install "robustfusion[{info.extra}]"' if info.extra else f"pip install {module}"
            raise ValueError(f"--launcher {launcher} needs {what}: {how}") from None
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
        raise ValueError(f"--launcher {name}: expected one of {', '.join(LAUNCHERS.ordered())}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs {jobs}: expected a number of processes >= 1")
    given = {"cpus_per_job": cpus_per_job, "gpus_per_job": gpus_per_job, "ray_address": ray_address,
             "submitit_cluster": submitit_cluster, "slurm_partition": slurm_partition, "slurm_time": slurm_time,
             "slurm_options": tuple(slurm_options) or None}
    info = LAUNCHERS.get(name)
    stray = [option for option, value in given.items() if value is not None and option not in info.options]
    if stray:
        owners = [n for n in LAUNCHERS.ordered() if stray[0] in LAUNCHERS.get(n).options]
        raise ValueError(f"{OPTION_FLAGS[stray[0]]}: expected with --launcher {' or '.join(owners)}, "
                         f"found --launcher {name}")
    if cpus_per_job is not None and cpus_per_job < 1:
        raise ValueError(f"--cpus-per-job {cpus_per_job}: expected a number of CPUs >= 1")
    if gpus_per_job is not None and gpus_per_job < 0:
        raise ValueError(f"--gpus-per-job {gpus_per_job}: expected a number of GPUs >= 0")
    return info.build(jobs=jobs, **{option: given[option] for option in info.options})


# The built-ins, each registered in its own module, imported explicitly (registration order = this line's)
from robustfusion.runner.launchers import local, raytasks, slurm  # noqa: F401
