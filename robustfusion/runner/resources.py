"""Threads and devices of a run: the core count this process may use, the torch thread count of
``train.num_threads=0``, a scoped thread setting, and ``train.device`` resolved to a device."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from robustfusion.runner import distributed as ddp

__all__ = ["auto_num_threads", "available_cores", "resolve_device", "torch_threads"]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def auto_num_threads(jobs: int = 1) -> int:
    """The torch thread count of ``train.num_threads=0``: ``min(4, cores // 2)`` for one job
    (torch's own default thread count is much slower on a machine shared with another process:
    README, "Threads and logs"; these models are small, so more than 4 threads rarely pay), and
    ``cores // jobs`` for each of ``jobs`` parallel jobs; at least 1."""
    cores = available_cores()
    if jobs > 1:
        return max(1, cores // jobs)
    return max(1, min(4, cores // 2))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(n)`` (``n`` <= 0: :func:`auto_num_threads`),
    restoring the previous count after. Yields the count used."""
    n = n if n > 0 else auto_num_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; an unavailable CUDA request is an error. Under
    ``torchrun`` a CUDA device is the rank's own (:func:`robustfusion.runner.distributed.local_device`)."""
    if device == "auto":
        return ddp.local_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={device!r} but CUDA is not available here; use device=cpu or auto")
    return ddp.local_device(dev)
