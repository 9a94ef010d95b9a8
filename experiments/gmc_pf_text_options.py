"""gmc_pf on MOSI utterance data with text_features = bclstm | minilm | both, cross-fitted over the
leak-free validation videos (2 folds, 3 seeds; `robustfusion reproduce mosi_utterance --data DIR`'s
scheme, gmc_pf only). Prints MAE / Non0_F1 per subset (mean over folds and seeds) for each option.

    ROBUSTFUSION_CACHE=/work/rf-cache python experiments/gmc_pf_text_options.py DIR OUT [bclstm minilm both]
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from robustfusion.runner.data_grids import reproduce_on_data
from robustfusion.runner.presets import GRIDS, Grid, deep_merge


def main(data: str, out: str, modes: list[str], method: str = "gmc_pf", extra: tuple[str, ...] = ()) -> None:
    base = GRIDS.get("mosi_utterance")
    for mode in modes:
        grid = Grid(base=deep_merge(base.base, {"data": {"options": {"text_features": mode}}}), methods=[method],
                    seeds=[0, 1, 2], specialists=False, description=f"mosi_utterance text={mode}")
        res = reproduce_on_data(grid, data, out=Path(out) / mode, overrides=["train.progress=false", *extra],
                                log=lambda m: None)
        cells = defaultdict(list)
        for r in res["rows"]:
            if r["protocol"] == "subsets" and r["metric"] in ("MAE", "Non0_F1_score"):
                cells[(r["subset"], r["metric"])].append(r["value"])
        subs = ["text", "audio", "vision", "text+audio", "text+vision", "audio+vision", "text+audio+vision"]
        print(f"{mode:7s} " + "; ".join(f"{s} {np.mean(cells[(s, 'MAE')]):.3f}/{np.mean(cells[(s, 'Non0_F1_score')]):.3f}"
                                       for s in subs), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:] or ["bclstm", "minilm", "both"])
