"""Rewrite the README's generated result tables from a grid run, or check that they are current.

    robustfusion reproduce --jobs 2                      # writes results/synthetic (about 3 min on 2 cores)
    python experiments/update_readme.py                  # rewrites the marked README sections from it
    python experiments/update_readme.py --check          # exit 1 (and a diff) when the README differs

A generated section sits between ``<!-- BEGIN GENERATED: NAME -->`` and ``<!-- END GENERATED -->``;
:data:`SECTIONS` says which grid folder and which table each NAME holds. The table is the one
``robustfusion reproduce`` prints (the task's primary metric per modality subset, mean ± std over
seeds), drawn from the folder's ``robustness.csv``; nothing is typed in. The folder must hold the
full grid (its ``grid.yaml``: the grid's name, not ``--quick``, no overrides), so a smoke test can
never land in the README. Without ``--check`` the section's plots (``docs/<NAME>_sample_rate_MAE.png``, ``docs/<NAME>_subsets_intervals.png``)
is copied from the folder's plots as well; ``--check`` compares the tables only (the PNG bytes
depend on the matplotlib version).
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from robustfusion.comparisons import read_comparisons_csv
from robustfusion.metrics import PRIMARY_METRIC
from robustfusion.reporting import write_report
from robustfusion.reporting.comparisons import subset_comparison_table
from robustfusion.reporting.headline import metric_table
from robustfusion.results import read_rows_csv

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN = re.compile(r"<!-- BEGIN GENERATED: ([\w-]+) -->\n(.*?)<!-- END GENERATED -->", re.DOTALL)


@dataclass(frozen=True)
class Section:
    """A generated README section: the grid whose full run it shows, and the plots it ships."""

    grid: str
    metrics: tuple[str, ...] = ()  # the subsets tables shown (default: the task's primary metric)
    plots: tuple[str, ...] = ()  # files under the grid folder's plots/, each copied to docs/<name>_<plot>


SECTIONS = {"synthetic": Section("synthetic", plots=("sample_rate_MAE.png", "subsets_intervals.png")),
            "mosi_utterance": Section("mosi_utterance", metrics=("MAE", "Non0_F1_score")),
            "iemocap_utterance": Section("iemocap_utterance", metrics=("F1_weighted", "Acc"))}


def _tables(results: Path, rows: list[dict], metrics: tuple[str, ...]) -> list[str]:
    """Per metric: the mean ± std table, then (when the folder has ``comparisons.csv``) each
    model minus the reference with its 95% interval."""
    with tempfile.TemporaryDirectory() as tmp:
        markdown = write_report(rows, tmp, plots=False)["markdown"]
    present = {r["metric"] for r in rows if r["protocol"] == "subsets"}
    metrics = metrics or tuple(m for m in PRIMARY_METRIC.values() if m in present)[:1]
    comparisons = read_comparisons_csv(results / "comparisons.csv") if (results / "comparisons.csv").is_file() else []
    out: list[str] = []
    for metric in metrics:
        table = metric_table(markdown, metric)
        if table is None:
            raise ValueError(f"{results}/robustness.csv: expected subsets rows of {metric}, found none")
        out += [ln for ln in table.splitlines() if ln.startswith("|")] + [""]
        deltas = subset_comparison_table(comparisons, metric)
        if deltas:
            ref = next(r["reference"] for r in comparisons if r["protocol"] == "subsets" and r["metric"] == metric)
            note = (f"{metric}, model minus {ref}, with 95% intervals over test groups and seeds "
                    "(`*`: the interval excludes 0):")
            out += [note, "", deltas, ""]
    return out


def section_text(results: Path, grid: str, metrics: tuple[str, ...] = ()) -> str:
    """The body of a generated section: the subsets tables of ``results/robustness.csv`` (mean ±
    std over seeds) and the differences with intervals of ``results/comparisons.csv``."""
    grid_file = results / "grid.yaml"
    if not grid_file.is_file():
        raise ValueError(f"{results}: expected the folder of a `robustfusion reproduce {grid}` run (with grid.yaml), "
                         "found none")
    found = OmegaConf.to_container(OmegaConf.load(grid_file))
    if found.get("name") != grid or found.get("quick") or found.get("overrides"):
        raise ValueError(f"{results}: expected the full grid {grid!r} (no --quick, no overrides), found grid "
                         f"{found.get('name')!r} quick={found.get('quick')} overrides={found.get('overrides')}")
    rows = read_rows_csv(results / "robustness.csv")
    if not any(r["protocol"] == "subsets" for r in rows):
        raise ValueError(f"{results}/robustness.csv: expected rows of the subsets protocol, found none")
    return "\n".join(_tables(results, rows, metrics)).rstrip() + "\n"


def render(readme: str, bodies: dict[str, str]) -> str:
    """``readme`` with the body of every generated section named in ``bodies`` replaced."""
    names = [m.group(1) for m in BEGIN.finditer(readme)]
    missing = sorted(set(bodies) - set(names))
    if missing:
        raise ValueError(f"README: expected the markers <!-- BEGIN GENERATED: NAME --> ... <!-- END GENERATED --> for "
                         f"{missing}, found sections {names}")

    def sub(m: re.Match) -> str:
        name = m.group(1)
        body = bodies.get(name, m.group(2))
        return f"<!-- BEGIN GENERATED: {name} -->\n{body}<!-- END GENERATED -->"

    return BEGIN.sub(sub, readme)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=None,
                    help="the grid's folder (default: results/<grid>, where `robustfusion reproduce <grid>` writes)")
    ap.add_argument("--section", choices=sorted(SECTIONS), default="synthetic")
    ap.add_argument("--readme", type=Path, default=README)
    ap.add_argument("--check", action="store_true", help="exit 1 with a diff when the README's table differs")
    args = ap.parse_args(argv)
    section = SECTIONS[args.section]
    results = args.results or Path("results") / section.grid
    try:
        body = section_text(results, section.grid, section.metrics)
        old = args.readme.read_text(encoding="utf-8")
        new = render(old, {args.section: body})
    except (ValueError, OSError) as err:
        print(f"update_readme: error: {err}", file=sys.stderr)
        return 2
    if args.check:
        if new != old:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       "README.md (committed)", f"README.md (from {results})"))
            print(f"update_readme: the README's {args.section!r} table differs from {results}; run "
                  f"`python experiments/update_readme.py --results {results}` and commit", file=sys.stderr)
            return 1
        print(f"update_readme: the README's {args.section!r} table equals {results}/robustness.csv")
        return 0
    args.readme.write_text(new, encoding="utf-8")
    for plot in section.plots:
        if (results / "plots" / plot).is_file():
            shutil.copyfile(results / "plots" / plot, args.readme.parent / "docs" / f"{args.section}_{plot}")
    print(f"update_readme: wrote the {args.section!r} section of {args.readme} from {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
