"""Atomic file writes: a results or checkpoint file is never left half written.

Each writer writes to a temporary file in the target's directory, flushes and fsyncs it, gives it
the mode a plain ``open()`` would (the target's mode when it exists, else ``0o666`` minus the
umask: ``tempfile`` alone makes every file 0600), then ``os.replace``-s it over the target
(atomic on POSIX and Windows). On failure the temporary file is removed and the previous target,
if any, is untouched. A process killed mid-write can leave a hidden ``.NAME.*.tmp`` beside the
target; :func:`remove_stale_temporaries` clears them (resume and evaluate call it).

:func:`replace_dir` builds a whole directory the same way: files are written into a fresh hidden
sibling, which is then swapped with the target in one step, so readers see the old set of files
or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "check_dir_target",
    "current_umask",
    "make_temp_dir",
    "owner_tag",
    "recover_dir",
    "remove_stale_temporaries",
    "replace_dir",
    "stale_owned_siblings",
]


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _plain_open_mode(path: Path) -> int:
    """The mode ``open(path, "w")`` would leave: an existing file keeps its own, a new one gets
    ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to produce the file, then move it to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _plain_open_mode(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    # no sort_keys: dict order carries meaning (modality_dims order = the model's modality order)
    return atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def remove_stale_temporaries(root: str | Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files :func:`atomic_write` leaves when a process is killed
    mid-write, anywhere under ``root``; returns what was removed. Only for a directory no other
    process is writing to (a run being resumed)."""
    removed = []
    for p in Path(root).rglob(".*.tmp"):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# ---------------------------------------------------------------- whole directories

def owner_tag() -> str:
    """``HOST-PID`` of this process, embedded in the names of temporary directories so that a later
    process can tell a dead owner's leftovers (safe to remove) from a live one's."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}"


def _owner_is_dead(tag: str) -> bool:
    host, _, pid = tag.rpartition("-")
    if host != owner_tag().rpartition("-")[0] or not pid.isdigit():
        return False  # another machine's (shared disk) or not ours: leave it alone
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def stale_owned_siblings(parent: str | Path, stem: str, kinds: tuple[str, ...]) -> Iterator[tuple[Path, str]]:
    """Entries ``parent/.{stem}.{HOST-PID}.{kind}`` whose owner process on this host is gone."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    for p in parent.iterdir():
        name = p.name
        for kind in kinds:
            prefix, suffix = f".{stem}.", f".{kind}"
            if name.startswith(prefix) and name.endswith(suffix):
                tag = name[len(prefix):-len(suffix)]
                if tag and "." not in tag and _owner_is_dead(tag):
                    yield p, kind


def make_temp_dir(parent: Path, stem: str, kind: str) -> Path:
    """``parent/.{stem}.{HOST-PID}.{kind}``, fresh, with the mode ``mkdir`` gives under the umask."""
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{stem}.{owner_tag()}.{kind}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False
    where the platform or file system cannot."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def check_dir_target(target: str | Path, what: str = "output folder") -> Path:
    """``target`` as a folder to be replaced whole: a symlink to a folder is followed (the folder it
    names is replaced, the link stays); a symlink loop, a dangling link or a file is a ``ValueError``."""
    target = Path(target)
    if target.is_symlink() and not target.exists():
        raise ValueError(f"{what} {target}: expected a folder (or a place to create one), found a symlink that "
                         f"leads nowhere (a loop or a missing target: {os.readlink(target)!r})")
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{what} {target}: exists and is not a directory; expected a folder")
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def recover_dir(target: str | Path, keep: tuple[str, ...] = ()) -> None:
    """Clear what a killed :func:`replace_dir` on ``target`` left: a ``.old`` sibling is put back when
    the kill came between the two renames of the non-atomic fallback (no ``target``), else removed;
    entries named in ``keep`` that a killed swap had already moved into a ``.new`` sibling go back
    into ``target``; then the ``.new`` siblings (half-built versions) are removed."""
    target = Path(target)
    order = {"old": 0, "new": 1}
    for p, kind in sorted(stale_owned_siblings(target.parent, target.name, ("new", "old")), key=lambda x: order[x[1]]):
        if kind == "old" and not target.exists():
            os.rename(p, target)
            continue
        if kind == "new" and target.is_dir():
            for name in keep:
                if (p / name).exists() and not (target / name).exists():
                    os.rename(p / name, target / name)
        shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def replace_dir(target: str | Path, keep: tuple[str, ...] = ()) -> Iterator[Path]:
    """Build a new version of directory ``target``: yields a fresh hidden sibling to fill; when the
    block ends without error it takes ``target``'s place in one step (the previous version is then
    deleted); on error it is removed and ``target`` is untouched.

    ``keep``: names of entries of ``target`` that carry over into the new version as they are
    (moved, not copied, just before the swap; e.g. the trained runs under a ``reproduce`` folder).
    Every other entry of the old version is gone after the swap, so a new version that writes
    fewer files leaves none of the old ones behind.

    The swap is atomic where Linux ``renameat2(RENAME_EXCHANGE)`` works; elsewhere the old version
    is first renamed aside, and a kill between the two renames is undone by :func:`recover_dir`
    (which this function calls first, also for the leftovers of killed writers). Created before the
    work, the sibling also shows early whether the location is writable.
    """
    target = check_dir_target(target)
    try:
        recover_dir(target, keep)
        tmp = make_temp_dir(target.parent, target.name, "new")
    except PermissionError as err:
        raise PermissionError(f"cannot write {target}: {target.parent} is not writable ({err.strerror})") from None
    try:
        yield tmp
        for name in keep:  # a kill from here to the swap: recover_dir moves them back
            if (target / name).exists() and not (tmp / name).exists():
                os.rename(target / name, tmp / name)
        if target.exists() and _exchange(tmp, target):
            shutil.rmtree(tmp)  # now the old version
        elif target.exists():
            old = target.parent / f".{target.name}.{owner_tag()}.old"
            if old.exists():
                shutil.rmtree(old)
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old)
        else:
            os.rename(tmp, target)
    except BaseException:
        old = target.parent / f".{target.name}.{owner_tag()}.old"
        if not target.exists() and old.is_dir():  # failed between the fallback's two renames
            os.rename(old, target)
        if target.is_dir():
            for name in keep:  # the work failed: what was moved over goes back
                if (tmp / name).exists() and not (target / name).exists():
                    os.rename(tmp / name, target / name)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
