"""GMC-style partial-observation table (Poklukar et al., 2022, Table 4) on CMU-MOSEI / CMU-MOSI.

Data: the MulT pickles GMC used, `mosei_senti_data.pkl` or `mosi_data.pkl` (aligned, 50 frames),
distributed with the Multimodal Transformer code (Tsai et al., 2019; see the README "Data"
section). Put the file anywhere and pass its path.

    python experiments/gmc_partial_observation.py --dataset mosei_mult --data /data/mosei_senti_data.pkl

Trains GMC, GMC + progressive fusion and late fusion (with and without modality dropout) over
3 seeds, scores every modality subset of the test split, and writes robustness.csv, table.md,
table.tex and plots to --out.
"""

from __future__ import annotations

import argparse

from robustfusion.runner import Grid, reproduce
from robustfusion.runner.presets import dataset_base, deep_merge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="mosei_mult", choices=["mosei_mult", "mosi_mult"])
    ap.add_argument("--data", required=True, help="path of the MulT pickle")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=dataset_base("mosei_mult")["train"]["epochs"])
    ap.add_argument("--out", default="results/gmc_partial_observation")
    args = ap.parse_args()
    grid = Grid(
        base=deep_merge(dataset_base(args.dataset), {"data": {"path": args.data}, "model": {"params": {"latent_dim": 60}},
                                                     "train": {"epochs": args.epochs}, "eval": {"protocols": ["subsets"]}}),
        methods=["gmc", "gmc_pf", "late_fusion", "late_fusion_dropout"], seeds=args.seeds,
        description=f"GMC partial observations on {args.dataset}")
    print(reproduce(grid, out=args.out)["markdown"])


if __name__ == "__main__":
    main()
