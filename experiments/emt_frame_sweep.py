"""EMT-DLFR / TFR-Net-style frame-level dropping sweep with AUILC on MMSA pickles.

Data: MMSA's `aligned_50.pkl` / `unaligned_50.pkl` (CMU-MOSI, CMU-MOSEI) or `unaligned_39.pkl`
(CH-SIMS), as distributed with the MMSA toolkit (thuiar/MMSA; see the README "Data" section).

    python experiments/emt_frame_sweep.py --dataset mosi_mmsa --data /data/MOSI/Processed/unaligned_50.pkl

Trains every method over 3 seeds, drops each frame of each modality with rate 0.0, 0.1, ..., 1.0
(one generator per modality and rate, identical for every model), and reports the metric-vs-rate
curves, AUILC (trapezoid over the full range including 0.0) and relative robustness.
"""

from __future__ import annotations

import argparse

from robustfusion.runner import Grid, reproduce
from robustfusion.runner.presets import dataset_base, deep_merge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="mosi_mmsa", choices=["mosi_mmsa", "mosei_mmsa", "sims_mmsa"])
    ap.add_argument("--data", required=True, help="path of the MMSA pickle")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=dataset_base("mosi_mmsa")["train"]["epochs"])
    ap.add_argument("--out", default="results/emt_frame_sweep")
    args = ap.parse_args()
    grid = Grid(
        base=deep_merge(dataset_base(args.dataset), {"data": {"path": args.data}, "train": {"epochs": args.epochs},
                                                     "eval": {"protocols": ["frame_rate"]}}),
        methods=["gmc", "gmc_pf", "late_fusion", "late_fusion_dropout", "mult"], seeds=args.seeds,
        description=f"frame-rate sweep on {args.dataset}")
    print(reproduce(grid, out=args.out)["markdown"])


if __name__ == "__main__":
    main()
