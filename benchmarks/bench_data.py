"""Loader throughput on MOSEI-shaped data and synthetic-benchmark generation / oracle time.

1. Writes a MulT-format pickle shaped like ``mosei_senti_data.pkl`` (T = 50, text 300 / audio 74
   / vision 35, sentiment labels (N, 1, 1), a few ``-inf`` in audio as in the real file) into a
   temporary directory, then times ``load_dataset("mosei_mult", path)`` (restricted unpickling,
   validation, -inf replacement, frame masks) and one pass of ``batches(32)`` over train.
   The real file has 16326 / 1871 / 4659 samples; ``--scale`` sets the fraction written
   (default 0.1: about 1.9 GB would be 190 MB).
2. Times ``load_dataset("synthetic")`` at the default sizes (1500 / 500 / 500) and the oracle
   on the test split for all 7 modality subsets (sentiment; emotion with 2000 Monte-Carlo draws).

3. The oracle ceiling per modality subset on the default synthetic test split (seed 0):
   sentiment MSE and R^2, emotion accuracy, against a ridge regression on the flattened raw
   features of the same subset (alpha picked on the valid split).

Median over ``--repeats`` runs, one intra-op thread. Prints markdown tables.

    python benchmarks/bench_data.py [--scale 0.1] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from robustfusion.data import load_dataset
from robustfusion.dropping import all_subsets, keep_subset

MOSEI = {"train": 16326, "valid": 1871, "test": 4659}
DIMS = {"text": 300, "audio": 74, "vision": 35}
T = 50


def write_mosei_like(path: Path, scale: float, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    data, total = {}, 0
    for split, n_full in MOSEI.items():
        n = max(2, round(n_full * scale))
        total += n
        lengths = rng.integers(5, T + 1, size=n)
        d = {}
        for m, dim in DIMS.items():
            x = rng.standard_normal((n, T, dim)).astype(np.float32)
            x[np.arange(T)[None, :] < (T - lengths)[:, None]] = 0.0  # MulT pads at the front
            d[m] = x
        d["audio"][rng.random(d["audio"].shape) < 1e-4] = -np.inf
        d["labels"] = rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32)
        d["id"] = np.array([[f"video{i}", "0.0", "1.0"] for i in range(n)])
        data[split] = d
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)
    return total


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _ridge_mse(data, subset) -> float:
    """Test MSE of ridge on standardised flattened features (alpha chosen on valid)."""
    def feats(ds):
        return np.concatenate([ds.features[m].reshape(len(ds), -1).numpy().astype(np.float64) for m in subset], 1)

    xtr, ytr = feats(data["train"]), data["train"].targets.numpy().astype(np.float64)
    mu, sd, ym = xtr.mean(0), xtr.std(0) + 1e-8, ytr.mean()
    z = (xtr - mu) / sd
    zva, zte = (feats(data["valid"]) - mu) / sd, (feats(data["test"]) - mu) / sd
    best = None
    for alpha in np.logspace(-2, 5, 15):
        coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (ytr - ym))
        val = float(np.mean((zva @ coef + ym - data["valid"].targets.numpy()) ** 2))
        if best is None or val < best[0]:
            best = (val, coef)
    return float(np.mean((zte @ best[1] + ym - data["test"].targets.numpy()) ** 2))


def oracle_table(seed: int) -> None:
    data = load_dataset("synthetic", seed=seed)
    test = data["test"]
    gen = test.meta["generator"]
    batch = test.full_batch()
    y = test.targets
    emotion = torch.as_tensor(test.meta["emotion"])
    var_y = float(y.var(unbiased=False))
    print(f"\nOracle ceiling, synthetic seed={seed}, test n={len(test)}, Var(y)={var_y:.3f}\n")
    print("| subset | oracle MSE | oracle R^2 | ridge MSE | oracle emotion acc |")
    print("|---|---:|---:|---:|---:|")
    for s in all_subsets(test.modalities):
        out = gen.oracle_predict(keep_subset(batch, s), num_samples=2000)
        mse = float(((out.sentiment[:, 0] - y) ** 2).mean())
        acc = float((out.emotion_probs.argmax(1) == emotion).float().mean())
        print(f"| {'+'.join(s)} | {mse:.3f} | {1 - mse / var_y:.3f} | {_ridge_mse(data, s):.3f} | {acc:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.1, help="fraction of the real MOSEI split sizes")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="synthetic generator seed of the oracle table")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mosei_senti_data.pkl"
        t0 = time.perf_counter()
        n = write_mosei_like(path, args.scale)
        rows.append(("write MOSEI-shaped MulT pickle (not the loader)", n, time.perf_counter() - t0,
                     f"{path.stat().st_size / 2**20:.0f} MiB"))
        t, data = timed(lambda: load_dataset("mosei_mult", path), args.repeats)
        rows.append(("load_dataset('mosei_mult') all splits", n, t, ""))
        train = data["train"]
        t, _ = timed(lambda: sum(b.batch_size for b in train.batches(32, shuffle=True,
                                                                     generator=torch.Generator().manual_seed(0))),
                     args.repeats)
        rows.append(("train.batches(32, shuffle=True) one epoch", len(train), t, ""))
    sizes = {"n_train": 1500, "n_valid": 500, "n_test": 500}
    t, syn = timed(lambda: load_dataset("synthetic", **sizes), args.repeats)
    rows.append(("load_dataset('synthetic') default sizes", sum(sizes.values()), t, ""))
    test = syn["test"]
    batch = test.full_batch()
    gen = test.meta["generator"]
    subsets = all_subsets(test.modalities)
    t, _ = timed(lambda: [gen.oracle_predict(keep_subset(batch, s), emotion=False) for s in subsets], args.repeats)
    rows.append(("oracle sentiment, test split x 7 subsets", len(test) * len(subsets), t, ""))
    t, _ = timed(lambda: [gen.oracle_predict(keep_subset(batch, s), emotion=True, num_samples=2000)
                          for s in subsets], args.repeats)
    rows.append(("oracle sentiment+emotion (2000 MC draws) x 7 subsets", len(test) * len(subsets), t, ""))
    print(f"scale={args.scale}, repeats={args.repeats} (median), torch threads=1\n")
    print("| step | samples | seconds | samples/s | note |")
    print("|---|---:|---:|---:|---|")
    for name, n, secs, note in rows:
        print(f"| {name} | {n} | {secs:.3f} | {n / secs:,.0f} | {note} |")
    oracle_table(args.seed)


if __name__ == "__main__":
    main()
