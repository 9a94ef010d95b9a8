"""MOSI utterance: which text input on the leak-free validation videos? Per-subset ridge
specialists (the library's reference row; penalty chosen on the validation part of each fold),
cross-fitted over the videos of valid.npz (2 folds; each fold's test videos took no part in the
penalty choice), for text_features = bclstm | minilm | both.

    ROBUSTFUSION_CACHE=/work/rf-cache python experiments/mosi_text_options.py [DIR]
"""

from __future__ import annotations

import sys

import torch

from robustfusion.baselines import fit_ridge_specialist
from robustfusion.data import load_dataset
from robustfusion.metrics import sentiment_metrics

SUBSETS = (["text"], ["audio"], ["vision"], ["text", "audio"], ["text", "vision"], ["audio", "vision"],
           ["text", "audio", "vision"])


def main(path: str) -> None:
    torch.set_num_threads(1)
    for mode in ("bclstm", "minilm", "both"):
        cells = []
        for sub in SUBSETS:
            preds, ys = [], []
            for k in (0, 1):
                d = load_dataset("mosi_utterance", path, text_features=mode, crossfit_folds=2, crossfit_fold=k)
                sp = fit_ridge_specialist(d["train"], d["valid"], sub)
                b = d["test"].full_batch()
                preds.append(torch.as_tensor(sp.predict(b)).reshape(-1))
                ys.append(d["test"].targets.reshape(-1))
            m = sentiment_metrics(torch.cat(preds), torch.cat(ys))
            cells.append(f"{'+'.join(s[0] for s in sub)} {m['MAE']:.3f}/{m['Non0_F1_score']:.3f}")
        print(f"{mode:7s} MAE/Non0_F1 pooled over 2 folds: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mosi-bclstm")
