"""The training loop: seeded, resumable, with validation, selection and early stopping.

``fit`` works with or without a run directory. With one, it writes ``metrics.jsonl`` (one JSON
object per epoch) and a checkpoint after every epoch (see :mod:`.checkpoint`); with
``resume=True`` it continues from the last complete epoch and ends with exactly the metrics an
uninterrupted run with the same seed gives (the data order, modality dropout and the model's
own randomness are re-seeded from ``(seed, epoch)`` at the start of every epoch, and the
optimizer and scheduler states are restored).

Every epoch gives one line (:func:`epoch_line`: epoch, training loss, the validation monitor,
seconds): appended to ``RUN_DIR/train.log`` when there is a run directory, and printed on stderr
when stderr is not a terminal (nohup, SLURM, a pipe; on a terminal tqdm shows the progress
instead); ``train.progress=false`` silences stderr. A resume cuts ``train.log`` back to the
checkpointed epochs, as it does ``metrics.jsonl``, so both always describe the same epochs.

``train.num_threads`` sets torch's intra-op CPU threads for the run (:func:`torch_threads`); 0
chooses :func:`auto_num_threads`.

``train.tensorboard=true`` also writes every row's scalars (training losses, validation metrics,
learning rate; step = epoch) to ``RUN_DIR/tensorboard/`` (:func:`tensorboard_writer`).

Under ``torchrun`` (:mod:`robustfusion.runner.distributed`) each rank trains on its shard of every
global batch and the gradients are summed over the ranks, so the run ends with the
single-process numbers up to float summation order; only rank 0 writes into ``run_dir``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import all_subsets, keep_subset
from robustfusion.io import atomic_write_text
from robustfusion.metrics import compute_metrics, higher_is_better, primary_metric
from robustfusion.models.base import target_fallback
from robustfusion.robustness import metric_options
from robustfusion.runner import distributed as ddp
from robustfusion.runner.augmentations import RunAugmentations, run_augmentations
from robustfusion.runner.checkpoint import (
    load_latest_checkpoint,
    load_weights,
    rng_state,
    save_checkpoint,
    save_weights,
)
from robustfusion.seeding import derived_seed

__all__ = [
    "FitResult",
    "auto_num_threads",
    "available_cores",
    "check_monitor",
    "epoch_line",
    "evaluate_dataset",
    "fit",
    "predict_dataset",
    "read_metrics",
    "resolve_device",
    "set_fallback_from_targets",
    "subset_mean_metric",
    "tensorboard_writer",
    "torch_threads",
]


@dataclass
class FitResult:
    epochs_run: int
    selected_epoch: int
    best_value: float | None
    history: list[dict[str, Any]] = field(default_factory=list)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def auto_num_threads(jobs: int = 1) -> int:
    """The torch thread count of ``train.num_threads=0``: ``min(4, cores // 2)`` for one job
    (measured on a 2-core machine shared with another process: torch's default of 2 threads made a
    run 4-5x slower than 1 thread, while alone 2 threads gained only 7%; these models are small,
    so more than 4 threads rarely pay), and ``cores // jobs`` for each of ``jobs`` parallel jobs;
    at least 1."""
    cores = available_cores()
    if jobs > 1:
        return max(1, cores // jobs)
    return max(1, min(4, cores // 2))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(n)`` (``n`` <= 0: :func:`auto_num_threads`),
    restoring the previous count after. Yields the count used."""
    n = n if n > 0 else auto_num_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; an unavailable CUDA request is an error. Under
    ``torchrun`` a CUDA device is the rank's own (:func:`robustfusion.runner.distributed.local_device`)."""
    if device == "auto":
        return ddp.local_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={device!r} but CUDA is not available here; use device=cpu or auto")
    return ddp.local_device(dev)


TENSORBOARD_HINT = 'pip install "robustfusion[tensorboard]"'


def tensorboard_writer(log_dir: str | Path | None = None):
    """A ``torch.utils.tensorboard.SummaryWriter`` writing into ``log_dir``; ``log_dir=None`` only
    checks that the ``tensorboard`` package is installed. A missing package is a ``ValueError``
    naming the optional extra to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError(f"train.tensorboard=true needs the tensorboard package, which is not installed; "
                         f"{TENSORBOARD_HINT}") from None
    return None if log_dir is None else SummaryWriter(log_dir=str(log_dir))


def set_fallback_from_targets(model: nn.Module, train: MultimodalDataset) -> None:
    """The all-missing prediction of ``model`` from ``train``'s targets
    (:func:`robustfusion.models.base.target_fallback`)."""
    model.set_fallback(target_fallback(train.task, train.targets, model.num_outputs))


@torch.no_grad()
def predict_dataset(model: nn.Module, dataset: MultimodalDataset, batch_size: int = 256,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """``[N, K]`` predictions of ``model`` on ``dataset`` (all its modalities as stored)."""
    preds = [model.predict(b.to(device)).cpu() for b in dataset.batches(batch_size)]
    return torch.cat(preds)


def evaluate_dataset(model: nn.Module, dataset: MultimodalDataset, batch_size: int = 256,
                     device: torch.device | str = "cpu") -> dict[str, float]:
    """The task's metrics (:func:`robustfusion.metrics.compute_metrics`) on ``dataset``."""
    return compute_metrics(dataset.task, predict_dataset(model, dataset, batch_size, device), dataset.targets,
                           **metric_options(dataset))


@torch.no_grad()
def validation_loss(model: nn.Module, dataset: MultimodalDataset, batch_size: int = 256,
                    device: torch.device | str = "cpu") -> float:
    """The model's training objective on ``dataset`` in eval mode, averaged over samples (the
    ``val_loss`` that GMC's learning-rate schedule watches)."""
    model.eval()
    total, n = 0.0, 0
    for batch in dataset.batches(batch_size):
        out = model(batch.to(device))
        if out.loss is None:
            raise ValueError("train.scheduler=plateau watches the validation loss, but the model returned no loss")
        total += float(out.loss) * len(batch)
        n += len(batch)
    return total / max(n, 1)


def subset_mean_metric(model: nn.Module, dataset: MultimodalDataset, metric: str, batch_size: int = 256,
                       device: torch.device | str = "cpu") -> float:
    """``metric`` averaged over every non-empty modality subset of ``dataset`` (the selection
    rule of ``train.monitor_subsets``: one model that must serve every subset)."""
    values = []
    for subset in all_subsets(dataset.modalities):
        preds = torch.cat([model.predict(keep_subset(b, subset).to(device)).cpu() for b in dataset.batches(batch_size)])
        values.append(float(compute_metrics(dataset.task, preds, dataset.targets, **metric_options(dataset))[metric]))
    return sum(values) / len(values)


def read_metrics(path: str | Path, before_epoch: int | None = None) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` (those of epochs ``< before_epoch`` when given). A torn
    last line, left by a kill while it was being appended, is skipped; an unreadable line
    elsewhere is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            epoch = int(row["epoch"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if i == last:
                break
            raise ValueError(f"{path}: line {i + 1} is not a metrics row (expected a JSON object with an "
                             f"'epoch'), found {line[:60]!r}") from None
        if before_epoch is None or epoch < before_epoch:
            rows.append(row)
    return rows


def epoch_line(row: dict[str, Any], epochs: int, monitor: str, name: str = "") -> str:
    """The log line of one ``metrics.jsonl`` row: epoch, training loss, validation monitor (and its
    subset mean when selected on it), seconds; ``name`` (the run directory's) is put first."""
    parts = [name] if name else []
    parts.append(f"epoch {row['epoch']}/{epochs}")
    if "train/loss" in row:
        parts.append(f"train/loss={row['train/loss']:.4f}")
    for key in (f"valid/{monitor}", f"valid/subset_mean/{monitor}"):
        if key in row:
            parts.append(f"{key}={row[key]:.4f}")
    parts.append(f"{row.get('time_s', 0.0):.2f}s")
    return " ".join(parts)


def _build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)


def _build_scheduler(opt: torch.optim.Optimizer, cfg):
    if cfg.scheduler == "plateau":  # stepped on the validation loss (GMC's schedule)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=cfg.plateau_patience,
                                                          factor=cfg.plateau_factor)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _is_better(value: float, best: float | None, higher: bool) -> bool:
    if math.isnan(value):
        return False
    return best is None or (value > best if higher else value < best)


@torch.no_grad()
def check_monitor(model: nn.Module, valid: MultimodalDataset, monitor: str, device: torch.device) -> None:
    """Refuse, before the first epoch, a ``train.monitor`` that the task's metrics do not include
    (the names come from the metrics of an untrained prediction on a few validation samples)."""
    batch = next(iter(valid.batches(64)))
    names = compute_metrics(valid.task, model.predict(batch.to(device)).cpu(), batch.targets.cpu(),
                            **metric_options(valid))
    if monitor not in names:
        raise ValueError(f"train.monitor={monitor!r} is not a validation metric of a {valid.task} task; "
                         f"available: {sorted(names)}")


def fit(model: nn.Module, train: MultimodalDataset, valid: MultimodalDataset | None, cfg: Any, seed: int,
        run_dir: str | Path | None = None, resume: bool = False,
        on_epoch_end: Callable[[int], None] | None = None) -> FitResult:
    """Train ``model`` on ``train``; select and early-stop on ``valid``.

    Args:
        cfg: an object with the fields of :class:`robustfusion.runner.config.TrainConfig`.
        seed: the run seed (data order, modality dropout, dropout masks per epoch).
        run_dir: where to write ``metrics.jsonl`` and checkpoints (``None``: in memory only;
            ``selection="best"`` then keeps the best weights in memory).
        resume: continue from ``run_dir``'s latest checkpoint.
        on_epoch_end: called with the epoch number after its checkpoint is written (tests use
            it to interrupt a run).

    Under ``torchrun`` every rank calls ``fit`` with the same arguments; ``cfg.batch_size`` is the
    global batch (see :mod:`robustfusion.runner.distributed`) and only rank 0 writes.

    Returns:
        :class:`FitResult`; the model holds the selected weights (``cfg.selection``).
    """
    device = resolve_device(cfg.device)
    model.to(device)
    opt = _build_optimizer(model, cfg)
    sched = _build_scheduler(opt, cfg)
    plateau = cfg.scheduler == "plateau"
    if plateau and valid is None:
        raise ValueError("train.scheduler=plateau lowers the lr when the validation loss stops falling, but there is "
                         "no validation split; choose train.scheduler=none, cosine or step")
    monitor = cfg.monitor or primary_metric(train.task)  # train_run checks it before the run starts
    higher = higher_is_better(monitor)
    augmentations = run_augmentations(cfg, train)
    run_dir = Path(run_dir) if run_dir is not None else None
    main = ddp.is_main()  # the only rank that writes into run_dir
    ddp.check_batches(len(train), cfg.batch_size)
    if run_dir is not None and main:
        run_dir.mkdir(parents=True, exist_ok=True)
    start, best, best_epoch, stale, history = 1, None, 0, 0, []
    best_state: dict[str, torch.Tensor] | None = None

    if resume:
        if run_dir is None:
            raise ValueError("resume=True needs a run_dir")
        state = load_latest_checkpoint(run_dir, model)
        if state is not None:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            start = int(state["epoch"]) + 1
            best, best_epoch, stale = state["best"], int(state["best_epoch"]), int(state["stale"])
        # cut back to the checkpointed epochs: a kill between an epoch's metrics line and its
        # checkpoint must not leave that epoch twice, nor a torn last line
        metrics_path = run_dir / "metrics.jsonl"
        history = read_metrics(metrics_path, before_epoch=start)
        if metrics_path.exists() and main:
            atomic_write_text(metrics_path, "".join(json.dumps(h) + "\n" for h in history))
        # train.log: the same epochs, each line rebuilt from its metrics row (identical to the one written)
        if main:
            atomic_write_text(run_dir / "train.log", "".join(epoch_line(h, cfg.epochs, monitor, run_dir.name) + "\n"
                                                               for h in history))

    show = bool(cfg.progress) and main and sys.stderr.isatty()
    echo = bool(cfg.progress) and main and not sys.stderr.isatty()
    writer = None
    if getattr(cfg, "tensorboard", False) and main and run_dir is not None:
        writer = tensorboard_writer(run_dir / "tensorboard")
    log_name = run_dir.name if run_dir is not None else ""
    epoch = start - 1
    for epoch in range(start, cfg.epochs + 1):
        if cfg.patience and stale >= cfg.patience:
            epoch -= 1
            break
        t0 = time.perf_counter()
        torch.manual_seed(derived_seed(seed, "epoch", epoch))
        order = torch.Generator().manual_seed(derived_seed(seed, "order", epoch))
        drawn = augmentations.for_epoch(seed, epoch)
        model.train()
        sums: dict[str, float] = {}
        n_batches = 0
        n_total = math.ceil(len(train) / cfg.batch_size)
        for batch in tqdm(train.batches(cfg.batch_size, shuffle=True, generator=order), total=n_total,
                          desc=f"epoch {epoch}/{cfg.epochs}", disable=not show, leave=False):
            batch = RunAugmentations.apply(batch, drawn)
            # masks drawn for the global batch above; under torchrun the model sees this rank's shard
            out, weight = ddp.shard_forward(model, batch, device)
            if out.loss is None:
                raise FloatingPointError(f"epoch {epoch}: training loss is None; the model returned no loss")
            values = ddp.reduce_sum([weight * float(v.detach()) for v in (out.loss, *out.losses.values())])
            if not math.isfinite(values[0]):
                raise FloatingPointError(f"epoch {epoch}: training loss is {values[0]}; lower train.lr or check the data")
            opt.zero_grad(set_to_none=True)
            (out.loss if weight == 1.0 else out.loss * weight).backward()
            ddp.all_reduce_grads(model)
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            n_batches += 1
            for k, v in zip(("loss", *out.losses), values):
                sums[k] = sums.get(k, 0.0) + v
        lr = opt.param_groups[0]["lr"]
        row: dict[str, Any] = {"epoch": epoch, "lr": lr, **{f"train/{k}": v / max(n_batches, 1) for k, v in sums.items()}}
        if plateau:
            row["valid/loss"] = ddp.broadcast_object(validation_loss(model, valid, max(cfg.batch_size, 256), device))
            sched.step(row["valid/loss"])
        else:
            sched.step()
        if valid is not None:
            vm = evaluate_dataset(model, valid, max(cfg.batch_size, 256), device)
            row.update({f"valid/{k}": v for k, v in vm.items()})
            if monitor not in vm:  # direct callers of fit; train_run refuses this before the run starts
                raise ValueError(f"train.monitor={monitor!r} is not a validation metric; available: {sorted(vm)}")
            value = float(vm[monitor])
            if getattr(cfg, "monitor_subsets", False):
                value = subset_mean_metric(model, valid, monitor, max(cfg.batch_size, 256), device)
                row[f"valid/subset_mean/{monitor}"] = value
            value = ddp.broadcast_object(value)  # rank 0's: every rank takes the same decisions
            if _is_better(value, best, higher):
                best, best_epoch, stale = value, epoch, 0
                if cfg.selection == "best":
                    if run_dir is not None:
                        if main:
                            save_weights(model, run_dir / "checkpoints" / "best.safetensors", {"epoch": str(epoch)})
                    else:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
        row["time_s"] = round(time.perf_counter() - t0, 4)
        history.append(row)
        if run_dir is not None and main:
            with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            save_checkpoint(run_dir, epoch, model, {
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": rng_state(),
                "best": best, "best_epoch": best_epoch, "stale": stale, "seed": seed,
            })
        line = epoch_line(row, cfg.epochs, monitor, log_name)
        if run_dir is not None and main:  # append-only: a kill can tear only the line being written
            with open(run_dir / "train.log", "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        if writer is not None:
            for k, v in row.items():
                if k not in ("epoch", "time_s") and isinstance(v, (int, float)):
                    writer.add_scalar(k, v, epoch)
            writer.flush()
        if echo:
            print(line, file=sys.stderr, flush=True)
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    if writer is not None:
        writer.close()
    selected = epoch
    if cfg.selection == "best" and valid is not None and best_epoch > 0:
        selected = best_epoch
        if run_dir is not None:
            ddp.barrier()  # rank 0 has written best.safetensors
            load_weights(model, run_dir / "checkpoints" / "best.safetensors")
        elif best_state is not None:
            model.load_state_dict(best_state)
    return FitResult(epochs_run=epoch, selected_epoch=selected, best_value=best, history=history)
