"""How large ECE is for a *perfectly calibrated* model at a given test-set size: the floor below
which a measured ECE cannot be told apart from noise.

ECE over 15 equal-width bins is biased upwards on a finite sample: even when every predicted
probability is exact, the empirical accuracy of a bin scatters around its confidence. This
script takes the class probabilities of one evaluation (``predictions.npz`` written by
``robustfusion evaluate``: the softmax of the stored logits, under the ``subsets`` condition
asked for), draws labels *from those probabilities* (so the model is calibrated by construction),
and prints the ECE of the draws, at the file's size and at other sizes (probabilities resampled
with replacement). The stored predictions are the model's logits before the per-pattern
temperature, so the confidences are those of the uncalibrated softmax; the floor depends on them
only through how they spread over the bins.

    python benchmarks/ece_floor.py RUN/eval/test/predictions.npz --subset text --sizes 500 1241 5000
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from robustfusion.runner.predictions_file import read_predictions
from robustfusion.uncertainty import probability_scores


def ece_of_calibrated_draws(probs: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """ECE of ``draws`` samples of ``n`` rows of ``probs`` (resampled) with labels drawn from them."""
    out = np.empty(draws)
    for i in range(draws):
        p = probs[rng.integers(0, len(probs), size=n)] if n != len(probs) else probs
        y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(max=p.shape[1] - 1)
        out[i] = probability_scores(torch.from_numpy(p), torch.from_numpy(y))["ECE"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions", help="predictions.npz of a classification run's evaluation")
    ap.add_argument("--subset", default=None, help="the subsets condition (default: every one in the file)")
    ap.add_argument("--sizes", type=int, nargs="*", default=[], help="test-set sizes besides the file's own")
    ap.add_argument("--draws", type=int, default=300)
    args = ap.parse_args(argv)
    kept = read_predictions(args.predictions)
    if kept.task != "classification":
        raise SystemExit(f"ece_floor: expected a classification evaluation, found task {kept.task!r}")
    rng = np.random.default_rng(0)
    conds = [c for c in kept.predictions if c[0] == "subsets" and (args.subset in (None, c[2]))]
    print(f"{kept.model} seed {kept.seed} on {kept.dataset}/{kept.split}, N = {len(kept.targets)}; "
          f"ECE of labels drawn from the model's own probabilities ({args.draws} draws): mean [5%, 95%]")
    for cond in conds:
        logits = torch.from_numpy(kept.predictions[cond]).double()
        probs = torch.softmax(logits, dim=1).numpy()
        line = [f"{cond[2]:>18}"]
        for n in [len(probs), *args.sizes]:
            e = ece_of_calibrated_draws(probs, n, args.draws, rng)
            line.append(f"N={n}: {e.mean():.3f} [{np.quantile(e, .05):.3f}, {np.quantile(e, .95):.3f}]")
        print("; ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
