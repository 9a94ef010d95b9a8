"""Cost of the progressive-fusion back-connection: forward+backward time and peak memory.

Compares ``gmc_pf`` with ``R = 1, 2, 3`` against the plain ``gmc``, and ``progressive`` with
``R = 1, 2, 3`` against the plain ``late_fusion``, on MOSEI-shaped inputs (B = 24, T = 50,
text 300 / audio 74 / vision 35, every modality present, every model at its defaults: GRU
encoders, hidden 64, latent 64). Progressive Fusion (arXiv 2209.00302) runs every modality
encoder ``R`` times per forward, so time and activation memory should grow about linearly in
``R`` on top of the parts that are not unrolled (GMC's joint encoder, heads, losses).

Every configuration runs in a fresh subprocess so that its peak memory is its own:

* ``wall ms`` / ``CPU ms``: median over ``--iters`` forward+backward passes (after
  ``--warmup``) of wall-clock time and of process CPU time (the CPU time is the steadier
  number on a shared machine; on CUDA only the wall time means anything);
* ``saved MB``: bytes of the tensors autograd saves for backward in one forward (exact,
  counted with ``torch.autograd.graph.saved_tensors_hooks``, each storage once);
* ``peak MB``: on CUDA ``torch.cuda.max_memory_allocated`` during one forward+backward minus
  the memory allocated before it; on CPU the growth of the process's peak RSS
  (``ru_maxrss``) over that first forward+backward (coarse: allocator caching included).

Run (the machine is shared, so one thread)::

    .venv/bin/python benchmarks/bench_progressive.py --threads 1
    .venv/bin/python benchmarks/bench_progressive.py --device cuda   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from robustfusion import MultimodalBatch, create_model

DIMS = {"text": 300, "audio": 74, "vision": 35}
CONFIGS: list[tuple[str, dict]] = [
    ("gmc", {}),
    ("gmc_pf", {"steps": 1}),
    ("gmc_pf", {"steps": 2}),
    ("gmc_pf", {"steps": 3}),
    ("late_fusion", {}),
    ("progressive", {"steps": 1}),
    ("progressive", {"steps": 2}),
    ("progressive", {"steps": 3}),
]
BASELINE = {"gmc": "gmc", "gmc_pf": "gmc", "late_fusion": "late_fusion", "progressive": "late_fusion"}


def make_batch(b: int, t: int, device: str) -> MultimodalBatch:
    g = torch.Generator().manual_seed(0)
    inputs = {m: torch.randn(b, t, d, generator=g) for m, d in DIMS.items()}
    return MultimodalBatch(inputs, targets=torch.randn(b, generator=g)).to(device)


def saved_bytes(model: torch.nn.Module, batch: MultimodalBatch) -> int:
    """Bytes autograd keeps for backward in one forward (each storage counted once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(batch).loss
    del loss
    return sum(seen.values())


def worker(name: str, kwargs: dict, b: int, t: int, device: str, warmup: int, iters: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(name, modality_dims=DIMS, task="regression", num_outputs=1, **kwargs).to(device).train()
    batch = make_batch(b, t, device)
    params = sum(p.numel() for p in model.parameters())

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(batch).loss.backward()

    # peak memory of the first forward+backward
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # Linux: KiB
    saved = saved_bytes(model, batch)
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(iters):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"model": name, "steps": kwargs.get("steps"), "params": params,
            "time_ms": 1000 * statistics.median(wall), "cpu_ms": 1000 * statistics.median(cpu),
            "saved_mb": saved / 2**20, "peak_mb": peak / 2**20}


def markdown(rows: list[dict], header: str) -> str:
    base = {r["model"]: r for r in rows if r["steps"] is None}
    out = [header, "",
           "| model | R | params | wall ms | x plain | CPU ms | x plain | saved MB | x plain | peak MB | x plain |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = base[BASELINE[r["model"]]]
        cells = [f"{r[k]:.1f} | {r[k] / p[k]:.2f}" if p[k] > 0 else f"{r[k]:.1f} | -"
                 for k in ("time_ms", "cpu_ms", "saved_mb", "peak_mb")]
        out.append(f"| {r['model']} | {r['steps'] or '-'} | {r['params']:,} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description="progressive fusion cost benchmark")
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--frames", type=int, default=50)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        name, kwargs = json.loads(a.worker)
        print(json.dumps(worker(name, kwargs, a.batch, a.frames, a.device, a.warmup, a.iters, a.threads)))
        return
    rows = []
    for name, kwargs in CONFIGS:
        cmd = [sys.executable, __file__, "--worker", json.dumps([name, kwargs]), "--batch", str(a.batch),
               "--frames", str(a.frames), "--device", a.device, "--threads", str(a.threads),
               "--warmup", str(a.warmup), "--iters", str(a.iters)]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    dev = torch.cuda.get_device_name() if a.device.startswith("cuda") else f"CPU, {a.threads} thread(s)"
    print(markdown(rows, f"B={a.batch}, T={a.frames}, text 300 / audio 74 / vision 35, forward+backward, "
                         f"median of {a.iters}, {dev}, torch {torch.__version__}"))


if __name__ == "__main__":
    main()
