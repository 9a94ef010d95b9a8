"""Time for the full modality-subsets table with latent reuse vs 2^M - 1 independent passes.

GMC's per-modality latents z_m do not depend on which other modalities are present
(Poklukar et al., arXiv 2202.03390), so :func:`robustfusion.robustness.evaluate` encodes each
batch once and predicts all 2^M - 1 subsets from the cached latents. This script measures the
gain on CMU-MOSEI-shaped inputs (T = 50 frames; text 300-d GloVe, audio 74-d COVAREP,
vision 35-d Facet; random features, an untrained GMC: speed only).

    .venv/bin/python benchmarks/bench_subsets.py [--n 480] [--batch-size 24] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from robustfusion import create_model
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.robustness import evaluate

DIMS = {"text": 300, "audio": 74, "vision": 35}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=480, help="samples")
    ap.add_argument("--t", type=int, default=50, help="frames per sequence")
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--encoder", default="gru")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    feats = {m: torch.randn(args.n, args.t, d, generator=g) for m, d in DIMS.items()}
    ds = MultimodalDataset(feats, torch.randn(args.n, generator=g).clamp(-3, 3), name="mosei-shaped")
    torch.manual_seed(0)
    model = create_model("gmc", modality_dims=ds.modality_dims, encoder=args.encoder).to(args.device)

    def run(reuse: bool) -> tuple[float, list[dict]]:
        best, rows = math.inf, []
        for _ in range(args.repeats):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            rows = evaluate(model, ds, protocols=("subsets",), batch_size=args.batch_size, device=args.device,
                            reuse_latents=reuse)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        return best, rows

    run(True)  # warm-up
    t_reuse, rows_reuse = run(True)
    t_plain, rows_plain = run(False)
    diff = max(abs(a["value"] - b["value"]) for a, b in zip(rows_reuse, rows_plain)
               if not (math.isnan(a["value"]) or math.isnan(b["value"])))
    n_sub = 2 ** len(DIMS) - 1
    print(f"dataset: n={args.n}, T={args.t}, dims={DIMS}, batch_size={args.batch_size}, "
          f"encoder={args.encoder}, device={args.device}, threads={args.threads}, best of {args.repeats}")
    print(f"subsets table ({n_sub} subsets), latent reuse : {t_reuse:.3f} s")
    print(f"subsets table ({n_sub} subsets), {n_sub} passes   : {t_plain:.3f} s")
    print(f"speed-up (independent / reuse): {t_plain / t_reuse:.2f}x; max |metric difference| = {diff:.2e}")


if __name__ == "__main__":
    main()
