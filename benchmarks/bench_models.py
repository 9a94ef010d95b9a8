"""Parameter count, forward+backward time and peak memory of every registered model.

MOSEI-shaped inputs: B=24, T=50, text 300 / audio 74 / vision 35 (GloVe / COVAREP / Facet),
regression, every modality present, default constructor of each model (plus GMC with the
``"crossmodal"`` joint encoder). Prints one markdown table.

Each model is measured in a fresh subprocess so that peak memory is its own:

* CPU: peak resident-set growth during the first forward+backward step (Linux: ``VmHWM`` after
  resetting it through ``/proc/self/clear_refs``; elsewhere ``ru_maxrss``), in MiB;
* CUDA: ``torch.cuda.max_memory_allocated`` growth during one step, in MiB.

Time is the median (and the minimum, less sensitive to other processes on a shared machine)
over ``--repeats`` steps after one warm-up step, with one intra-op thread on
CPU (``torch.set_num_threads(1)``) so numbers on a shared machine are comparable.

    python benchmarks/bench_models.py [--device cpu|cuda] [--repeats 5] [--models mult tfn]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DIMS = {"text": 300, "audio": 74, "vision": 35}
B, T = 24, 50
VARIANTS = {"gmc+crossmodal": ("gmc", {"joint_encoder": "crossmodal"})}


def _rss_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(label: str, device: str, repeats: int) -> dict:
    import torch

    from robustfusion import MultimodalBatch, create_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    name, kwargs = VARIANTS.get(label, (label, {}))
    model = create_model(name, modality_dims=DIMS, task="regression", num_outputs=1, **kwargs).to(device).train()
    batch = MultimodalBatch({m: torch.randn(B, T, d) for m, d in DIMS.items()}, targets=torch.randn(B)).to(device)
    params = sum(p.numel() for p in model.parameters())

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(batch).loss.backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        if _reset_peak():
            before = _rss_kib("VmRSS") or 0
            step()
            peak_mib = ((_rss_kib("VmHWM") or 0) - before) / 1024
        else:  # ru_maxrss: kilobytes on Linux, bytes on macOS
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            step()
            scale = 1024 * 1024 if sys.platform == "darwin" else 1024
            peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / scale
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    return {"model": label, "params": params, "ms": statistics.median(times), "min_ms": min(times),
            "peak_mib": peak_mib}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="*", help="registry names (default: all registered + variants)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.device, args.repeats)))
        return
    from robustfusion import list_models

    labels = args.models or (list_models() + list(VARIANTS))
    rows = []
    for label in labels:
        res = subprocess.run([sys.executable, __file__, "--one", label, "--device", args.device,
                              "--repeats", str(args.repeats)], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            rows.append({"model": label, "error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"})
            continue
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"MOSEI-shaped inputs B={B}, T={T}, dims {DIMS}; device {args.device}; "
          f"median of {args.repeats} forward+backward steps, 1 thread")
    print()
    print("| model | parameters | fwd+bwd median (ms) | fwd+bwd min (ms) | peak memory (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['model']} | error: {r['error']} | | | |")
        else:
            print(f"| {r['model']} | {r['params']:,} | {r['ms']:.1f} | {r['min_ms']:.1f} | {r['peak_mib']:.1f} |")


if __name__ == "__main__":
    main()
