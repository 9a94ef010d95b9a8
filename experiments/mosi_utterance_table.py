"""The CMU-MOSI utterance table on the bc-LSTM features (the `mosi_utterance` npz layout).

Data: a directory with `train.npz` (and optionally `valid.npz` / `test.npz`); in this project's
development checkout that is `../shared/data/mosi-bclstm` (62 training videos in `train.npz`, 10
leak-free validation videos in `valid.npz`).

    python experiments/mosi_utterance_table.py --data ../shared/data/mosi-bclstm            # cross-fit, 2 folds
    python experiments/mosi_utterance_table.py --data DIR --split-seeds 0 1 2               # carvings of train.npz

Trains gmc_pf, gmc and late fusion (with and without modality dropout) over 3 seeds, scores all 7
modality subsets and random modality dropping, and adds per-subset ridge specialists (fit on the
training split, penalty chosen on the validation split) as a reference row.

Where the test split comes from:

* `test.npz` present: it is the test split (one grid, `OUT/`; same as `robustfusion reproduce
  mosi_utterance data.path=DIR`).
* `valid.npz` present, no `test.npz` (the default here): **cross-fitting** over the validation
  videos (`--crossfit K`, default 2): the grid runs once per fold `k` with fold `k`'s videos as
  test and the other folds as validation (epoch selection, calibrations, the ridge penalty), see
  `data.options.crossfit_folds`. Every reported number is on videos that neither the models nor
  the feature extractors were trained on. A test set carved from `train.npz` is not (the
  extractors saw those videos: text looks almost perfect there).
* `--split-seeds`: carvings of `train.npz` (only meaningful for data without that leak).

With several parts, each is in `OUT/<part>/` and `OUT/combined/` aggregates every run of every
part (its `seed` column is `1000 * part + model seed`, so each run stays one row per number; the
mean over it is the mean over folds and seeds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robustfusion.reporting import write_report
from robustfusion.results import read_rows_csv, write_rows_csv
from robustfusion.runner import reproduce


def parts(data: Path, crossfit: int | None, split_seeds: list[int] | None) -> list[tuple[str, list[str]]]:
    """``[(name, overrides)]``: the grids to run (see the module docstring)."""
    if split_seeds:
        return [(f"split{k}", [f"data.split_seed={k}"]) for k in split_seeds]
    if crossfit is None:
        crossfit = 2 if (data / "valid.npz").is_file() and not (data / "test.npz").is_file() else 0
    if crossfit:
        return [(f"fold{k}", [f"data.options.crossfit_folds={crossfit}", f"data.options.crossfit_fold={k}"])
                for k in range(crossfit)]
    return [("", [])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory holding train.npz (and valid.npz / test.npz)")
    ap.add_argument("--out", default="results/mosi_utterance")
    ap.add_argument("--crossfit", type=int, default=None,
                    help="folds of the validation videos (default: 2 when valid.npz is present and test.npz is not; 0: off)")
    ap.add_argument("--split-seeds", type=int, nargs="+", default=None,
                    help="instead, carve the held-out videos from train.npz with each of these seeds")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    base = [f"data.path={args.data}"]
    todo = parts(Path(args.data), args.crossfit, args.split_seeds)
    out = Path(args.out)
    if len(todo) == 1:
        print(reproduce("mosi_utterance", quick=args.quick, out=out / todo[0][0], overrides=base + todo[0][1])["markdown"])
        return
    rows = []
    for k, (name, overrides) in enumerate(todo):
        reproduce("mosi_utterance", quick=args.quick, out=out / name, overrides=base + overrides)
        part = int(overrides[0].rsplit("=", 1)[1]) if args.split_seeds else k
        rows += [{**r, "seed": 1000 * part + r["seed"]} for r in read_rows_csv(out / name / "robustness.csv")]
    write_rows_csv(rows, out / "combined" / "robustness.csv")
    print(write_report(rows, out / "combined")["markdown"])


if __name__ == "__main__":
    main()
