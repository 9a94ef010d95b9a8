"""The CMU-MOSI utterance table on the bc-LSTM features (the `mosi_utterance` npz layout).

Data: a directory with `train.npz` (and optionally `valid.npz` / `test.npz`); in this project's
development checkout that is `../shared/data/mosi-bclstm` (62 training videos). Missing splits
are carved from `train` grouped by video (no video in two splits), seeded by `data.split_seed`.

    python experiments/mosi_utterance_table.py --data ../shared/data/mosi-bclstm
    python experiments/mosi_utterance_table.py --data ../shared/data/mosi-bclstm --split-seeds 0 1 2

Trains gmc_pf, gmc and late fusion (with and without modality dropout) on the carved train
videos over 3 seeds, scores all 7 modality subsets and random modality dropping on the held-out
videos, and adds per-subset ridge specialists (standardised features, regularisation chosen on
the validation videos) as a reference row. With one split seed this is `robustfusion reproduce
mosi_utterance data.path=...`. With several, the grid is run once per carving of the videos
(`OUT/split<k>/`) and `OUT/all_splits/` aggregates every run of every carving (its `seed`
column is `1000 * split seed + model seed`, so each run stays one row per number): with ~12
test videos per carving, one carving's ranking of two close models is largely the luck of which
videos were held out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robustfusion.reporting import write_report
from robustfusion.robustness import read_rows_csv, write_rows_csv
from robustfusion.runner.reproduce import reproduce


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory holding train.npz")
    ap.add_argument("--out", default="results/mosi_utterance")
    ap.add_argument("--split-seeds", type=int, nargs="+", default=None,
                    help="carve the held-out videos with each of these seeds (default: the config's one carving)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    overrides = [f"data.path={args.data}"]
    if not args.split_seeds:
        print(reproduce("mosi_utterance", quick=args.quick, out=args.out, overrides=overrides)["markdown"])
        return
    out = Path(args.out)
    rows = []
    for k in args.split_seeds:
        reproduce("mosi_utterance", quick=args.quick, out=out / f"split{k}",
                  overrides=[*overrides, f"data.split_seed={k}"])
        rows += [{**r, "seed": 1000 * k + r["seed"]} for r in read_rows_csv(out / f"split{k}" / "robustness.csv")]
    write_rows_csv(rows, out / "all_splits" / "robustness.csv")
    print(write_report(rows, out / "all_splits")["markdown"])


if __name__ == "__main__":
    main()
