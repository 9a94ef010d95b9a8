"""One method of a real-data grid under named option sets, cross-fitted over the validation
groups (`robustfusion reproduce <grid> --data DIR`'s scheme, that method only, seeds 0-2).
Prints each subset's primary metrics and those of its uncertainty (mean over folds and seeds) per
option set, in the order of ``METRICS``.

    ROBUSTFUSION_CACHE=/work/rf-cache python experiments/gmc_pf_options.py iemocap_utterance \
        ../shared/data/iemocap-ta OUT "modalities:" "gmc:model.params.predict_from=gmc"

An option set is `label:override,override,...` (empty after the colon: the preset as it is);
separate the overrides with `;` instead when one of them holds a comma.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from robustfusion.runner.data_grids import reproduce_on_data
from robustfusion.runner.presets import GRIDS, Grid

METRICS = {"regression": ("MAE", "Non0_F1_score", "PI_coverage", "PI_width"),
           "classification": ("Acc", "F1_weighted", "ECE", "NLL", "Set_coverage")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("grid")
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--method", default="gmc_pf")
    args = ap.parse_args()
    base = GRIDS.get(args.grid)
    task = "regression" if args.grid.startswith("mosi") else "classification"
    for spec in args.sets:
        label, _, overrides = spec.partition(":")
        grid = Grid(base=base.base, methods=[args.method], seeds=[0, 1, 2], specialists=False, description=label)
        res = reproduce_on_data(grid, args.data, out=Path(args.out) / label,
                                overrides=["train.progress=false", *[o for o in overrides.split(";" if ";" in overrides else ",") if o]],
                                log=lambda m: None)
        cells = defaultdict(list)
        for r in res["rows"]:
            if r["protocol"] == "subsets" and r["metric"] in METRICS[task]:
                cells[(r["subset"], r["metric"])].append(r["value"])
        subsets = list(dict.fromkeys(s for s, _ in cells))
        print(f"{label:12s} " + "; ".join(
            f"{s} " + "/".join(f"{np.mean(cells[(s, m)]):.3f}" for m in METRICS[task] if cells[(s, m)])
            for s in subsets), flush=True)


if __name__ == "__main__":
    main()
