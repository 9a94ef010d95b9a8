"""The CMU-MOSI utterance table on the bc-LSTM features (the `mosi_utterance` npz layout).

Data: a directory with `train.npz` (and optionally `valid.npz` / `test.npz`); in this project's
development checkout that is `../shared/data/mosi-bclstm` (62 training videos). Missing splits
are carved from `train` grouped by video (no video in two splits), seeded by `data.split_seed`.

    python experiments/mosi_utterance_table.py --data ../shared/data/mosi-bclstm

Trains gmc_pf, gmc and late fusion (with and without modality dropout) on the carved train
videos over 3 seeds, scores all 7 modality subsets and random modality dropping on the held-out
videos, and adds per-subset ridge specialists (standardised features, regularisation chosen on
the validation videos) as a reference row. Same as `robustfusion reproduce mosi_utterance
data.path=...`.
"""

from __future__ import annotations

import argparse

from robustfusion.runner.reproduce import reproduce


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory holding train.npz")
    ap.add_argument("--out", default="results/mosi_utterance")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(reproduce("mosi_utterance", quick=args.quick, out=args.out, overrides=[f"data.path={args.data}"])["markdown"])


if __name__ == "__main__":
    main()
