"""Training and inference speed of a preset's model, built as the runner builds it.

The model comes from ``create_model(cfg.model.name, modality_dims=..., **cfg.model.params)`` of
``--config`` (default ``configs/mosei_mult/gmc.yaml``, GMC's published affect model) on random
inputs of the dataset's published shape (MOSEI: text 300 / audio 74 / vision 35, T = 50). A
training step is what the reference's is: forward with the loss, backward, gradient clipping at
``train.grad_clip``, a plain ``torch.optim.Adam`` step. Inference is ``model.predict`` under
``torch.no_grad``. Each figure is the median over ``--steps`` timed steps after ``--warmup``.

Prints a markdown table: device, threads, batch, parameters, train ms/step and samples/s,
inference ms/batch and samples/s; on CUDA also peak memory, and with ``--bf16`` the same under
bf16 autocast.

    python benchmarks/bench_train_speed.py [--config configs/mosei_mult/gmc.yaml]
        [--batch-sizes 24 256] [--threads 2] [--steps 20] [--warmup 3] [--device auto] [--bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from robustfusion import MultimodalBatch, create_model
from robustfusion.runner.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {  # published feature sizes and frames
    "mosei_mult": ({"text": 300, "audio": 74, "vision": 35}, 50),
    "mosi_mult": ({"text": 300, "audio": 5, "vision": 20}, 50),
    "iemocap_mult": ({"text": 300, "audio": 74, "vision": 35}, 20),
}


def _timed(fn, device: torch.device, steps: int, warmup: int) -> float:
    """Median seconds of ``fn()`` over ``steps`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(cfg, batch_size: int, device: torch.device, steps: int, warmup: int, bf16: bool = False) -> dict:
    dims, frames = SHAPES[cfg.data.name]
    torch.manual_seed(0)
    model = create_model(cfg.model.name, modality_dims=dims, **OmegaConf.to_container(cfg.model.params)).to(device)
    inputs = {m: torch.randn(batch_size, frames, d, device=device) for m, d in dims.items()}
    batch = MultimodalBatch(inputs, targets=torch.randn(batch_size, device=device))
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg.train.lr))
    clip = float(cfg.train.grad_clip)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def train_step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = model(batch).loss
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    @torch.no_grad()
    def infer_step():
        with autocast():
            model.predict(batch)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.train()
    train_s = _timed(train_step, device, steps, warmup)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    model.eval()
    infer_s = _timed(infer_step, device, steps, warmup)
    return {"params": sum(p.numel() for p in model.parameters()), "train_ms": 1000 * train_s,
            "train_sps": batch_size / train_s, "infer_ms": 1000 * infer_s, "infer_sps": batch_size / infer_s,
            "peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "mosei_mult" / "gmc.yaml"))
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                    help="default: the config's train.batch_size on CPU; it and 256 on CUDA")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (CPU)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--bf16", action="store_true", help="also measure under bf16 autocast (CUDA)")
    args = ap.parse_args()
    cfg = load_config(args.config)
    if cfg.data.name not in SHAPES:
        raise SystemExit(f"--config: expected a config of {sorted(SHAPES)}, found data.name={cfg.data.name!r}")
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    sizes = args.batch_sizes or ([int(cfg.train.batch_size), 256] if device.type == "cuda"
                                 else [int(cfg.train.batch_size)])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({args.threads} threads)"
    print(f"model: {args.config} ({cfg.model.name}), torch {torch.__version__}, {name}\n")
    print("| device | precision | batch | parameters | train ms/step | train samples/s | infer ms/batch "
          "| infer samples/s | peak MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for bf16 in ([False, True] if args.bf16 else [False]):
        for bs in sizes:
            r = measure(cfg, bs, device, args.steps, args.warmup, bf16)
            peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
            print(f"| {device.type} | {'bf16' if bf16 else 'fp32'} | {bs} | {r['params']:,} | {r['train_ms']:.1f} | "
                  f"{r['train_sps']:.0f} | {r['infer_ms']:.1f} | {r['infer_sps']:.0f} | {peak} |")


if __name__ == "__main__":
    main()
