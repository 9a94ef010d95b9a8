"""Result folders of ``reproduce`` and ``report``, replaced whole.

Both commands build their tables, CSVs and plots in a hidden sibling of ``--out`` and swap it in
(:func:`robustfusion.io.replace_dir`): a kill leaves the previous complete set or the new one,
never a mix, and a run that writes fewer outputs than the previous one leaves none of the
previous files behind. What must survive a new version (the trained runs of ``reproduce``, which
are reused) is carried over (:data:`REPRODUCE_KEPT`). Because the old version is deleted, a folder
holding anything the command does not write is refused before any work
(:func:`check_result_dir`), so ``--out`` never deletes a user's own files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from robustfusion.io import check_dir_target, recover_dir

__all__ = ["REPORT_FILES", "REPRODUCE_FILES", "REPRODUCE_KEPT", "check_result_dir", "prepare_result_dir", "relocate"]

#: What ``report --out`` writes.
REPORT_FILES = frozenset({"robustness.csv", "robustness_aggregate.csv", "table.md", "table.tex", "plots",
                          "sources.json", "comparisons.csv"})
#: Entries of a ``reproduce`` folder carried over into each new version (trained runs, SLURM logs).
REPRODUCE_KEPT = ("runs", "submitit")
#: What ``reproduce --out`` writes.
REPRODUCE_FILES = frozenset({"robustness.csv", "robustness_aggregate.csv", "table.md", "table.tex", "plots",
                             "timings.json", "grid.yaml", "comparisons.csv", *REPRODUCE_KEPT})


def check_result_dir(out: str | Path, allowed: Iterable[str], command: str,
                     keep: tuple[str, ...] = ()) -> Path:
    """Make ``out`` ready to be replaced whole by ``command``: leftovers of a killed swap are
    recovered (entries in ``keep`` put back), and a folder holding entries other than ``allowed``
    (hidden ``.*`` temporaries aside) is refused with a ``FileExistsError`` naming a few of them.
    Returns the folder to replace (a symlink to a folder is followed)."""
    out = check_dir_target(out, f"{command} --out")
    recover_dir(out, keep)
    if not out.exists():
        return out
    allowed = frozenset(allowed)
    foreign = sorted(p.name for p in out.iterdir() if p.name not in allowed and not p.name.startswith("."))
    if foreign:
        raise FileExistsError(f"{command} --out {out}: the folder holds entries {command} does not write "
                              f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); it is replaced "
                              f"as a whole, so choose a new or empty folder, or one written by `robustfusion "
                              f"{command}`")
    return out


def prepare_result_dir(out: str | Path, command: str) -> Path:
    """:func:`check_result_dir` with the entries of ``command`` (``"reproduce"`` or ``"report"``)."""
    if command == "reproduce":
        return check_result_dir(out, REPRODUCE_FILES, command, REPRODUCE_KEPT)
    if command == "report":
        return check_result_dir(out, REPORT_FILES, command)
    raise ValueError(f"prepare_result_dir: expected command 'reproduce' or 'report', found {command!r}")


def relocate(obj: Any, built: Path, final: Path) -> Any:
    """``obj`` (a path, or dicts / lists of them) with paths under ``built`` moved under ``final``:
    the paths ``write_report`` returned for the hidden sibling, as they are after the swap."""
    if isinstance(obj, Path):
        try:
            return final / obj.relative_to(built)
        except ValueError:
            return obj
    if isinstance(obj, dict):
        return {k: relocate(v, built, final) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(relocate(v, built, final) for v in obj)
    return obj
