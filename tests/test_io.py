"""robustfusion.io: atomic files with the umask's mode, stale temporaries, whole-directory swaps."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from robustfusion.io import (
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    check_dir_target,
    current_umask,
    owner_tag,
    recover_dir,
    remove_stale_temporaries,
    replace_dir,
)


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _dead_tag() -> str:
    """``HOST-PID`` of a process of this host that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{owner_tag().rpartition('-')[0]}-{proc.pid}"


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_atomic_writers_give_new_files_the_mode_plain_open_gives(tmp_path, mask):
    with umask(mask):
        assert current_umask() == mask
        with open(tmp_path / "plain.txt", "w") as fh:
            fh.write("x")
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write_json(tmp_path / "sub" / "b.json", {"k": 1})
        atomic_write(tmp_path / "c.bin", lambda tmp: Path(tmp).write_bytes(b"\0"))
    expected = _mode(tmp_path / "plain.txt")
    assert expected == 0o666 & ~mask
    for name in ("a.txt", "sub/b.json", "c.bin"):
        assert _mode(tmp_path / name) == expected, name
    assert _mode(tmp_path / "sub") == 0o777 & ~mask


def test_an_existing_file_keeps_its_mode_as_with_plain_open(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    with umask(0o000):
        atomic_write_text(target, "new")
    assert target.read_text() == "new" and _mode(target) == 0o640


def test_remove_stale_temporaries_only_removes_hidden_tmp_files(tmp_path):
    (tmp_path / "d").mkdir()
    stale = [tmp_path / ".final.json.abc.tmp", tmp_path / "d" / ".x.png.q1.tmp"]
    keep = [tmp_path / "final.json", tmp_path / "d" / "x.tmp", tmp_path / "d" / "x.png"]
    for p in stale + keep:
        p.write_text("x")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


def _fill(d: Path, version: str) -> None:
    (d / "plots").mkdir(exist_ok=True)
    (d / "table.md").write_text(version)
    (d / "plots" / "p.png").write_text(version)


def _version(d: Path) -> str:
    a, b = (d / "table.md").read_text(), (d / "plots" / "p.png").read_text()
    assert a == b, "a mix of two versions"
    return a


def test_replace_dir_creates_and_replaces_a_folder_as_a_whole(tmp_path):
    target = tmp_path / "eval" / "test"
    with umask(0o027), replace_dir(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".test.") and not target.exists()
        _fill(tmp, "v1")
    assert _version(target) == "v1" and _mode(target) == 0o750
    (target / "plots" / "extra.png").write_text("old only")
    with replace_dir(target) as tmp:
        _fill(tmp, "v2")
        assert _version(target) == "v1"  # readers see the old set until the swap
    assert _version(target) == "v2" and not (target / "plots" / "extra.png").exists()
    assert [p.name for p in target.parent.iterdir()] == ["test"]  # no temporaries left


def test_replace_dir_keeps_the_old_folder_when_the_work_fails(tmp_path):
    target = tmp_path / "out"
    with replace_dir(target) as tmp:
        _fill(tmp, "v1")
    with pytest.raises(RuntimeError), replace_dir(target) as tmp:
        _fill(tmp, "v2")
        raise RuntimeError("evaluation failed")
    assert _version(target) == "v1" and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_replace_dir_without_an_atomic_exchange_still_swaps(tmp_path, monkeypatch):
    import robustfusion.io as rio

    monkeypatch.setattr(rio, "_exchange", lambda a, b: False)
    target = tmp_path / "out"
    for v in ("v1", "v2"):
        with replace_dir(target) as tmp:
            _fill(tmp, v)
    assert _version(target) == "v2" and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_leftovers_of_a_killed_swap_are_recovered(tmp_path):
    """What a SIGKILL leaves at each step of replace_dir, and how the next call resolves it."""
    dead = _dead_tag()
    target = tmp_path / "test"
    # killed while filling the new folder: the old one stays, the half-built one goes
    _fill(target.mkdir() or target, "old")
    half = tmp_path / f".test.{dead}.new"
    half.mkdir()
    (half / "table.md").write_text("half")
    recover_dir(target)
    assert _version(target) == "old" and not half.exists()
    # killed between the two renames of the fallback: the old one is put back
    os.rename(target, tmp_path / f".test.{dead}.old")
    (tmp_path / f".test.{dead}.new").mkdir()
    recover_dir(target)
    assert _version(target) == "old" and [p.name for p in tmp_path.iterdir()] == ["test"]
    # killed after the swap, before the old one was deleted
    (tmp_path / f".test.{dead}.new").mkdir()
    with replace_dir(target) as tmp:
        _fill(tmp, "new")
    assert _version(target) == "new" and [p.name for p in tmp_path.iterdir()] == ["test"]
    # a live process's temporaries are left alone
    live = tmp_path / f".test.{owner_tag()}.new"
    live.mkdir()
    other_host = tmp_path / ".test.elsewhere-1.new"
    other_host.mkdir()
    recover_dir(target)
    assert live.exists() and other_host.exists()


def test_replace_dir_in_an_unwritable_place_fails_before_the_work(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes everywhere")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        with pytest.raises(PermissionError, match="not writable"), replace_dir(ro / "out"):
            raise AssertionError("the work must not start")
    finally:
        os.chmod(ro, 0o755)


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("atomic", [True, False])
def test_replace_dir_carries_kept_entries_over_and_drops_every_other_old_file(tmp_path, monkeypatch, atomic):
    import robustfusion.io as rio

    if not atomic:
        monkeypatch.setattr(rio, "_exchange", lambda a, b: False)
    target = tmp_path / "out"
    with replace_dir(target, keep=("runs",)) as tmp:
        (tmp / "plots").mkdir()
        for k in range(3):
            (tmp / "plots" / f"p{k}.png").write_text("v1")
        (tmp / "table.md").write_text("v1")
    (target / "runs" / "r").mkdir(parents=True)  # trained meanwhile, under the folder
    (target / "runs" / "r" / "w").write_text("weights")
    with replace_dir(target, keep=("runs",)) as tmp:  # the second version writes fewer outputs
        (tmp / "table.md").write_text("v2")
    assert _tree(target) == {"runs/r/w": "weights", "table.md": "v2"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with pytest.raises(RuntimeError), replace_dir(target, keep=("runs",)) as tmp:  # a failed version
        raise RuntimeError
    assert _tree(target) == {"runs/r/w": "weights", "table.md": "v2"}


def test_a_swap_killed_after_the_kept_entries_moved_puts_them_back(tmp_path):
    dead = _dead_tag()
    target = tmp_path / "out"
    (target / "runs" / "r").mkdir(parents=True)
    (target / "runs" / "r" / "w").write_text("weights")
    (target / "table.md").write_text("old")
    # killed after moving runs into the new version, before the swap
    new = tmp_path / f".out.{dead}.new"
    new.mkdir()
    (new / "table.md").write_text("new, maybe half")
    os.rename(target / "runs", new / "runs")
    recover_dir(target, keep=("runs",))
    assert _tree(target) == {"runs/r/w": "weights", "table.md": "old"}
    # fallback killed between its two renames: old version aside, runs in the new one
    os.rename(target / "runs", new.parent / "runs-moved")
    new.mkdir()
    os.rename(new.parent / "runs-moved", new / "runs")
    os.rename(target, tmp_path / f".out.{dead}.old")
    recover_dir(target, keep=("runs",))
    assert _tree(target) == {"runs/r/w": "weights", "table.md": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_check_dir_target_follows_a_link_and_refuses_loops_and_files(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert check_dir_target(tmp_path / "link") == real.resolve()
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(ValueError, match="symlink that leads nowhere"):
        check_dir_target(tmp_path / "loop")
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        check_dir_target(tmp_path / "f")
    with replace_dir(tmp_path / "link") as tmp:
        (tmp / "a").write_text("x")
    assert (tmp_path / "link").is_symlink() and (real / "a").read_text() == "x"
