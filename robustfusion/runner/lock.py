"""One writer per run directory: an OS-level lock on ``RUN_DIR/.lock``.

``train``, ``train --resume`` and ``evaluate`` hold :func:`run_lock` while they read and write a
run directory. The lock is ``fcntl.flock`` on the file ``RUN_DIR/.lock``: the kernel releases it
when its process ends, however it ends (a ``kill -9`` included), so a lock left by a dead process
is taken over by the next one without any clean-up step (the stale file is simply reused). The
file holds the holder's pid, host, command line and start time as JSON, which a second process
reads to say who holds the run:

    robustfusion train: error: runs/x is in use by pid 4242 on host1 since 2026-12-06T17:00:00Z
    (robustfusion train --resume runs/x); wait for it to end or stop it: a run directory has one
    writer at a time

The holder removes the file when it is done. ``flock`` locks are advisory and local to one
machine's kernel (on NFS they are emulated with ``fcntl`` locks by recent Linux kernels); the
platforms without ``fcntl`` (Windows) run without the lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; runs without the lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "RunLockedError", "lock_holder", "run_lock"]

#: Name of the lock file inside a run directory.
LOCK_NAME = ".lock"


class RunLockedError(OSError):
    """Another live process holds the run directory's lock (the message names it)."""


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """What ``RUN_DIR/.lock`` says about its holder (``pid``, ``host``, ``command``, ``since``);
    ``None`` when there is no readable record. Says nothing about whether the holder is alive."""
    try:
        text = (Path(run_dir) / LOCK_NAME).read_text(encoding="utf-8")
        info = json.loads(text)
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _describe(run_dir: Path, info: dict[str, Any] | None) -> str:
    if not info:
        who = "another process (it has not written its name yet)"
    else:
        who = f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('since', '?')}"
        if info.get("command"):
            who += f" ({info['command']})"
    return (f"{run_dir} is in use by {who}; wait for it to end or stop it: a run directory has one writer "
            "at a time")


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "robustfusion")):
        argv[0] = "robustfusion"
    return " ".join(argv)[:300]


def _acquire(path: Path, run_dir: Path) -> int:
    """Open and ``flock`` ``path``; returns the descriptor (raises :class:`RunLockedError`)."""
    for _ in range(20):  # retried only when the file was removed/replaced between open and flock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = None
            for _ in range(10):  # the holder may be between flock and writing its record
                info = lock_holder(run_dir)
                if info:
                    break
                time.sleep(0.05)
            raise RunLockedError(_describe(run_dir, info)) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # a previous holder unlinked this file after we opened it: lock the new one
    raise RunLockedError(_describe(run_dir, lock_holder(run_dir)))


@contextlib.contextmanager
def run_lock(run_dir: str | Path, command: str | None = None, *, required: bool = True) -> Iterator[Path | None]:
    """Hold the lock of ``run_dir`` for the block.

    Args:
        run_dir: an existing run directory.
        command: what to record as the holder's command (default: this process's command line).
        required: when False, a run directory in which the lock file cannot be created (read-only)
            is used without the lock (no other process can write there either); when True that is
            an error.

    Yields:
        the lock file's path (``None`` when running without a lock).

    Raises:
        RunLockedError: a live process holds the lock; the message names its pid, host, command
            and start time.
    """
    run_dir = Path(run_dir)
    if fcntl is None:
        yield None
        return
    if not run_dir.is_dir():
        raise NotADirectoryError(f"{run_dir}: expected a run directory to lock, found "
                                 f"{'a file' if run_dir.exists() else 'nothing'}")
    path = run_dir / LOCK_NAME
    try:
        fd = _acquire(path, run_dir)
    except RunLockedError:
        raise
    except OSError as err:
        if required or not (isinstance(err, PermissionError) or err.errno == errno.EROFS):
            raise
        fd = None
    if fd is None:  # read-only run directory, lock not required
        yield None
        return
    try:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or _command_line(),
                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # before the unlock: a process that opened it meanwhile sees a new inode
        os.close(fd)
