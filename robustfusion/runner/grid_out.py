"""Where a grid's results go, and the rule that keeps one grid from overwriting another.

``reproduce NAME`` writes into ``results/NAME`` (``results/NAME-quick`` with ``--quick``) unless
``--out`` says otherwise, so grids run one after the other keep their results side by side. A
folder belongs to the grid that first wrote into it: ``OUT/grid.yaml`` is written before any run
starts and names the grid, whether it was the quick version and its overrides. A later
``reproduce`` into the same folder with the same grid, quick flag and overrides reuses its
finished runs (an interrupted grid continues); anything else is refused with a message naming
both, before any work, as is a folder that holds results (``robustness.csv`` or ``runs/``) but no
``grid.yaml`` (written by ``report``, ``evaluate --out`` or by hand).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from robustfusion.io import atomic_write_text

__all__ = ["GRID_FILE", "claim_grid_out", "default_grid_out", "describe_grid"]

#: The file naming the grid a results folder belongs to.
GRID_FILE = "grid.yaml"
#: The parent folder of every grid's default output folder.
RESULTS_ROOT = "results"


def default_grid_out(name: str, quick: bool = False, root: str | Path = RESULTS_ROOT) -> Path:
    """``root/NAME`` (``root/NAME-quick`` for the quick version): the default folder of grid ``name``."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"grid name: expected a plain folder name, found {name!r}")
    return Path(root) / (f"{name}-quick" if quick else name)


def describe_grid(name: str, quick: bool, overrides: Sequence[str] = ()) -> str:
    """``'synthetic' --quick [a=1 b=2]``: a grid as a message names it."""
    text = repr(name) + (" --quick" if quick else "")
    return text + (f" with overrides {list(overrides)}" if overrides else "")


#: Override keys that cannot change a grid's results (as ``reproduce`` compares run configs).
RESULT_NEUTRAL = ("train.num_threads=",)


def _identity(record: dict[str, Any]) -> tuple[str, bool, list[str]]:
    overrides = [str(o) for o in record.get("overrides") or [] if not str(o).startswith(RESULT_NEUTRAL)]
    return str(record.get("name")), bool(record.get("quick", False)), overrides


def claim_grid_out(out: str | Path, name: str, quick: bool, overrides: Sequence[str], methods: Sequence[str],
                   seeds: Sequence[int]) -> None:
    """Refuse ``out`` when it holds another grid's results (see the module docstring); otherwise
    write ``out/grid.yaml`` naming this grid (creating ``out``) where there is none yet (an existing
    one of the same grid is left for ``reproduce`` to replace with its whole output folder).

    Raises ``ValueError`` naming the grid found there and the grid asked for.
    """
    out = Path(out)
    mine = {"name": name, "quick": bool(quick), "overrides": [str(o) for o in overrides]}
    grid_file = out / GRID_FILE
    if grid_file.is_file():
        found = OmegaConf.to_container(OmegaConf.load(grid_file), resolve=True)
        if not isinstance(found, dict):
            raise ValueError(f"{grid_file}: expected a mapping with name, quick, overrides; found {found!r}")
        if _identity(found) != _identity(mine):
            raise ValueError(
                f"{out} holds the results of grid {describe_grid(*_identity(found))}; refusing to write grid "
                f"{describe_grid(name, quick, overrides)} into it: leave out --out (each grid has its own "
                f"folder, results/<grid>[-quick]), give another --out, or remove {out}")
    elif out.is_dir() and any((out / f).exists() for f in ("robustness.csv", "runs")):
        raise ValueError(f"{out} holds results (robustness.csv or runs/) but no {GRID_FILE}, so not of a "
                         f"`reproduce` grid; refusing to write grid {describe_grid(name, quick, overrides)} "
                         f"into it: give another --out or remove {out}")
    out.mkdir(parents=True, exist_ok=True)
    if grid_file.is_file():  # the same grid: the folder keeps its files until reproduce swaps in the new set
        return
    atomic_write_text(grid_file, OmegaConf.to_yaml(OmegaConf.create(
        {**mine, "methods": list(methods), "seeds": [int(s) for s in seeds]})))
