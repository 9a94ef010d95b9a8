"""Interaction fit: progressive fusion vs plain late fusion of (at least) the same size.

Synthetic task where one modality's useful signal is only readable given another modality's
content: modality ``selector`` is a (noisy) one-hot code of a slot ``k`` among ``S``, modality
``payload`` holds ``S`` independent N(0, 1) numbers, and the target is ``y = payload[k]``.
Neither modality alone predicts ``y`` (``E[y | selector] = 0``; ``E[y | payload]`` is the mean of
the slots), and every modality pipeline ends in a ``hidden_dim``-wide bottleneck smaller than
``S``, so late fusion must compress ``payload`` without knowing which slot matters. Progressive
fusion (Shankar et al., arXiv 2209.00302) feeds the fused step-1 representation (which
carries ``k``) back into the ``payload`` encoder, which can then keep just ``payload[k]``.

Run (prints a markdown table; about a minute and a half on one CPU thread)::

    .venv/bin/python benchmarks/interaction_fit.py --seeds 0 1 2

``run_experiment`` is also used, at a smaller size, by ``tests/models/test_progressive.py``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
from torch import nn

from robustfusion import MultimodalBatch, create_model

__all__ = [
    "InteractionResult",
    "build_pair",
    "count_parameters",
    "evaluate_mse",
    "make_interaction_data",
    "run_experiment",
    "train_model",
]


def make_interaction_data(n: int, num_slots: int = 8, noise: float = 0.1,
                          generator: torch.Generator | None = None) -> MultimodalBatch:
    """``n`` samples: ``selector [n, S]`` (one-hot of ``k`` + noise), ``payload [n, S]`` (N(0, 1)),
    targets ``[n, 1] = payload[k]``."""
    k = torch.randint(num_slots, (n,), generator=generator)
    selector = nn.functional.one_hot(k, num_slots).float() + noise * torch.randn(n, num_slots, generator=generator)
    values = torch.randn(n, num_slots, generator=generator)
    y = values.gather(1, k[:, None])
    return MultimodalBatch({"selector": selector, "payload": values}, targets=y)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_pair(num_slots: int, hidden_dim: int, width: int, steps: int, context_mode: str,
               seed: int) -> tuple[nn.Module, nn.Module]:
    """``(progressive, late_fusion)`` with MLP encoders; the late-fusion encoders' hidden width is
    the smallest ``>= width`` that gives it at least as many parameters as the progressive model."""
    dims = {"selector": num_slots, "payload": num_slots}
    common = {"modality_dims": dims, "task": "regression", "num_outputs": 1, "encoder": "mlp",
              "hidden_dim": hidden_dim, "regression_loss": "mse"}
    torch.manual_seed(seed)
    prog = create_model("progressive", steps=steps, context_mode=context_mode,
                        encoder_kwargs={"hidden_dim": width, "dropout": 0.0}, **common)
    target = count_parameters(prog)
    w = width
    while True:
        torch.manual_seed(seed)
        late = create_model("late_fusion", encoder_kwargs={"hidden_dim": w, "dropout": 0.0}, **common)
        if count_parameters(late) >= target:
            return prog, late
        w += 1


def build_gmc_trio(num_slots: int, hidden_dim: int, width: int, steps: int, context_mode: str,
                   seed: int, contrastive_weight: float = 1.0) -> list[tuple[str, nn.Module]]:
    """``gmc_pf`` with GMC's prediction rule, ``gmc_pf`` predicting from the modalities' latents,
    and a plain ``gmc`` whose base encoders are widened to at least the same parameter count.

    Note: the two modalities of this task share no information, which is what GMC's contrastive
    term rewards, so ``contrastive_weight`` matters a lot here."""
    dims = {"selector": num_slots, "payload": num_slots}
    common = {"modality_dims": dims, "task": "regression", "num_outputs": 1, "encoder": "mlp",
              "hidden_dim": hidden_dim, "latent_dim": 2 * hidden_dim, "regression_loss": "mse",
              "contrastive_weight": contrastive_weight,
              "joint_kwargs": {"encoder_kwargs": {"hidden_dim": width, "dropout": 0.0}}}
    out = []
    cw = f", cw={contrastive_weight:g}"
    for rule in ("gmc", "modalities"):
        torch.manual_seed(seed)
        out.append((f"gmc_pf R={steps} ({context_mode}, predict_from={rule}{cw})",
                    create_model("gmc_pf", steps=steps, context_mode=context_mode, predict_from=rule,
                                 encoder_kwargs={"hidden_dim": width, "dropout": 0.0}, **common)))
    target, w = count_parameters(out[0][1]), width
    while True:
        torch.manual_seed(seed)
        gmc = create_model("gmc", encoder_kwargs={"hidden_dim": w, "dropout": 0.0}, **common)
        if count_parameters(gmc) >= target:
            return [*out, (f"gmc (vs {context_mode}{cw})", gmc)]
        w += 1


def train_model(model: nn.Module, data: MultimodalBatch, epochs: int, batch_size: int, lr: float,
                seed: int) -> None:
    """Minimal loop: Adam, shuffled mini-batches, ``model(batch).loss``."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    n = data.batch_size
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=g).split(batch_size):
            loss = model(data.select(idx)).loss
            opt.zero_grad()
            loss.backward()
            opt.step()


def evaluate_mse(model: nn.Module, data: MultimodalBatch) -> float:
    pred = model.predict(data)
    return float(((pred - data.targets) ** 2).mean())


@dataclass
class InteractionResult:
    seed: int
    model: str
    params: int
    test_mse: float
    seconds: float


def run_experiment(seeds: list[int], n_train: int = 4000, n_test: int = 2000, num_slots: int = 8,
                   hidden_dim: int = 4, width: int = 32, steps: int = 2,
                   context_modes: tuple[str, ...] = ("add", "gate", "concat"), epochs: int = 60,
                   batch_size: int = 128, lr: float = 1e-2, gmc: bool = False,
                   contrastive_weight: float = 1.0) -> list[InteractionResult]:
    """Train, for every seed and context mode, a progressive model and a late-fusion model with at
    least as many parameters on the same data (and, with ``gmc``, the trio of
    :func:`build_gmc_trio`); test MSE (predicting 0 scores 1.0)."""
    results = []
    for seed in seeds:
        g = torch.Generator().manual_seed(1000 + seed)
        train = make_interaction_data(n_train, num_slots, generator=g)
        test = make_interaction_data(n_test, num_slots, generator=g)
        for mode in context_modes:
            prog, late = build_pair(num_slots, hidden_dim, width, steps, mode, seed)
            models = [(f"progressive R={steps} ({mode})", prog), (f"late_fusion (vs {mode})", late)]
            if gmc:
                models += build_gmc_trio(num_slots, hidden_dim, width, steps, mode, seed, contrastive_weight)
            for name, model in models:
                t0 = time.perf_counter()
                train_model(model, train, epochs, batch_size, lr, seed)
                results.append(InteractionResult(seed, name, count_parameters(model), evaluate_mse(model, test),
                                                 time.perf_counter() - t0))
    return results


def markdown_table(results: list[InteractionResult]) -> str:
    rows = ["| model | params | seed | test MSE | train s |", "|---|---:|---:|---:|---:|"]
    rows += [f"| {r.model} | {r.params} | {r.seed} | {r.test_mse:.4f} | {r.seconds:.1f} |" for r in results]
    by_model: dict[str, list[float]] = {}
    for r in results:
        by_model.setdefault(r.model, []).append(r.test_mse)
    rows += ["", "| model | mean test MSE | std |", "|---|---:|---:|"]
    for name, v in by_model.items():
        t = torch.tensor(v)
        rows.append(f"| {name} | {t.mean():.4f} | {t.std(unbiased=len(v) > 1) if len(v) > 1 else 0.0:.4f} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-train", type=int, default=4000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--hidden-dim", type=int, default=4)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--context-modes", nargs="+", default=["add", "gate", "concat"])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--gmc", action="store_true", help="also train gmc and gmc_pf (both prediction rules)")
    p.add_argument("--contrastive-weight", type=float, default=1.0, help="GMC loss weight (with --gmc)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    res = run_experiment(a.seeds, a.n_train, a.n_test, a.slots, a.hidden_dim, a.width, a.steps,
                         tuple(a.context_modes), a.epochs, lr=a.lr, gmc=a.gmc,
                         contrastive_weight=a.contrastive_weight)
    print(markdown_table(res))


if __name__ == "__main__":
    main()
