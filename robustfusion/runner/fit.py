"""The training loop: seeded, resumable, with validation, selection and early stopping.

``fit`` works with or without a run directory. With one, it writes ``metrics.jsonl`` (one JSON
object per epoch, :mod:`.epoch_log`) and a checkpoint after every epoch (:mod:`.checkpoint`);
with ``resume=True`` it continues from the last complete epoch and ends with exactly the metrics
an uninterrupted run with the same seed gives: the data order, the augmentations and the model's
own randomness are re-seeded from ``(seed, epoch)`` at the start of every epoch, and the optimizer
and scheduler states are restored (so no global RNG state needs saving).

Under ``torchrun`` (:mod:`robustfusion.runner.distributed`) each rank trains on its shard of every
global batch and the gradients are summed over the ranks, so the run ends with the
single-process numbers up to float summation order; only rank 0 writes into ``run_dir``.

The pieces live beside it: threads and devices (:mod:`.resources`), scoring (:mod:`.scoring`), the
epoch record (:mod:`.epoch_log`), the optimizer and schedule (:mod:`.optim`), the augmentations
(:mod:`.augmentations`), the TensorBoard extra (:mod:`.tensorboard`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from robustfusion.data.dataset import MultimodalDataset
from robustfusion.metrics import higher_is_better, primary_metric
from robustfusion.runner import distributed as ddp
from robustfusion.runner.augmentations import RunAugmentations, run_augmentations
from robustfusion.runner.checkpoint import (
    load_latest_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from robustfusion.runner.config import TrainConfig
from robustfusion.runner.epoch_log import EpochLog
from robustfusion.runner.optim import build_optimizer, build_scheduler, is_better
from robustfusion.runner.resources import resolve_device
from robustfusion.runner.scoring import evaluate_dataset, subset_mean_metric, validation_loss
from robustfusion.seeding import derived_seed

__all__ = ["FitResult", "fit"]


@dataclass
class FitResult:
    epochs_run: int
    selected_epoch: int
    best_value: float | None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Loop:
    """What every epoch of one ``fit`` call uses, and the selection state it carries."""

    model: nn.Module
    train: MultimodalDataset
    valid: MultimodalDataset | None
    cfg: TrainConfig
    seed: int
    device: torch.device
    opt: torch.optim.Optimizer
    sched: Any
    monitor: str
    augmentations: RunAugmentations
    run_dir: Path | None
    log: EpochLog
    best: float | None = None
    best_epoch: int = 0
    stale: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def eval_batch(self) -> int:
        return max(self.cfg.batch_size, 256)


def _setup(model: nn.Module, train: MultimodalDataset, valid: MultimodalDataset | None, cfg: TrainConfig, seed: int,
           run_dir: Path | None) -> _Loop:
    device = resolve_device(cfg.device)
    model.to(device)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg)
    if cfg.scheduler == "plateau" and valid is None:
        raise ValueError("train.scheduler=plateau lowers the lr when the validation loss stops falling, but there is "
                         "no validation split; choose train.scheduler=none, cosine or step")
    monitor = cfg.monitor or primary_metric(train.task)  # train_run checks it before the run starts
    augmentations = run_augmentations(cfg, train)
    main = ddp.is_main()  # the only rank that writes into run_dir
    ddp.check_batches(len(train), cfg.batch_size)
    if run_dir is not None and main:
        run_dir.mkdir(parents=True, exist_ok=True)
    log = EpochLog(run_dir, main, cfg.epochs, monitor, cfg.progress, cfg.tensorboard)
    return _Loop(model, train, valid, cfg, seed, device, opt, sched, monitor, augmentations, run_dir, log)


def _resume(loop: _Loop) -> int:
    """Restore the latest checkpoint of ``loop.run_dir``; the first epoch still to train."""
    if loop.run_dir is None:
        raise ValueError("resume=True needs a run_dir")
    start = 1
    state = load_latest_checkpoint(loop.run_dir, loop.model)
    if state is not None:
        loop.opt.load_state_dict(state["optimizer"])
        loop.sched.load_state_dict(state["scheduler"])
        start = int(state["epoch"]) + 1
        loop.best, loop.best_epoch, loop.stale = state["best"], int(state["best_epoch"]), int(state["stale"])
    loop.history = loop.log.rewind(start)
    return start


def _train_epoch(loop: _Loop, epoch: int) -> dict[str, Any]:
    """One pass over the training data; the epoch's row with its mean losses and learning rate.
    A non-finite (or missing) training loss is a ``FloatingPointError``."""
    cfg, model = loop.cfg, loop.model
    torch.manual_seed(derived_seed(loop.seed, "epoch", epoch))
    order = torch.Generator().manual_seed(derived_seed(loop.seed, "order", epoch))
    drawn = loop.augmentations.for_epoch(loop.seed, epoch)
    model.train()
    sums: dict[str, float] = {}
    n_batches = 0
    for batch in tqdm(loop.train.batches(cfg.batch_size, shuffle=True, generator=order),
                      total=math.ceil(len(loop.train) / cfg.batch_size), desc=f"epoch {epoch}/{cfg.epochs}",
                      disable=not loop.log.show, leave=False):
        batch = RunAugmentations.apply(batch, drawn)
        # masks drawn for the global batch above; under torchrun the model sees this rank's shard
        out, weight = ddp.shard_forward(model, batch, loop.device)
        if out.loss is None:
            raise FloatingPointError(f"epoch {epoch}: training loss is None; the model returned no loss")
        values = ddp.reduce_sum([weight * float(v.detach()) for v in (out.loss, *out.losses.values())])
        if not math.isfinite(values[0]):
            raise FloatingPointError(f"epoch {epoch}: training loss is {values[0]}; lower train.lr or check the data")
        loop.opt.zero_grad(set_to_none=True)
        (out.loss if weight == 1.0 else out.loss * weight).backward()
        ddp.all_reduce_grads(model)
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        loop.opt.step()
        n_batches += 1
        for k, v in zip(("loss", *out.losses), values):
            sums[k] = sums.get(k, 0.0) + v
    return {"epoch": epoch, "lr": loop.opt.param_groups[0]["lr"],
            **{f"train/{k}": v / max(n_batches, 1) for k, v in sums.items()}}


def _validate_and_select(loop: _Loop, row: dict[str, Any], epoch: int) -> None:
    """Step the schedule, add the validation metrics to ``row`` and keep the best epoch's weights."""
    model, valid, cfg = loop.model, loop.valid, loop.cfg
    if cfg.scheduler == "plateau":
        row["valid/loss"] = ddp.broadcast_object(validation_loss(model, valid, loop.eval_batch, loop.device))
        loop.sched.step(row["valid/loss"])
    else:
        loop.sched.step()
    if valid is None:
        return
    vm = evaluate_dataset(model, valid, loop.eval_batch, loop.device)
    row.update({f"valid/{k}": v for k, v in vm.items()})
    if loop.monitor not in vm:  # direct callers of fit; train_run refuses this before the run starts
        raise ValueError(f"train.monitor={loop.monitor!r} is not a validation metric; available: {sorted(vm)}")
    value = float(vm[loop.monitor])
    if cfg.monitor_subsets:
        value = subset_mean_metric(model, valid, loop.monitor, loop.eval_batch, loop.device)
        row[f"valid/subset_mean/{loop.monitor}"] = value
    value = ddp.broadcast_object(value)  # rank 0's: every rank takes the same decisions
    if not is_better(value, loop.best, higher_is_better(loop.monitor)):
        loop.stale += 1
        return
    loop.best, loop.best_epoch, loop.stale = value, epoch, 0
    if cfg.selection == "best":
        if loop.run_dir is None:
            loop.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif loop.log.write:
            save_weights(model, loop.run_dir / "checkpoints" / "best.safetensors", {"epoch": str(epoch)})


def _record(loop: _Loop, row: dict[str, Any], epoch: int) -> None:
    """The epoch's metrics row, its checkpoint, then its log line (in this order)."""
    loop.history.append(row)
    loop.log.add_row(row)
    if loop.log.write:
        save_checkpoint(loop.run_dir, epoch, loop.model, {
            "optimizer": loop.opt.state_dict(), "scheduler": loop.sched.state_dict(), "best": loop.best,
            "best_epoch": loop.best_epoch, "stale": loop.stale, "seed": loop.seed})
    loop.log.add_line(row)


def _select(loop: _Loop, epoch: int) -> int:
    """Load the selected weights into the model (``train.selection``); the selected epoch."""
    if loop.cfg.selection != "best" or loop.valid is None or loop.best_epoch == 0:
        return epoch
    if loop.run_dir is not None:
        ddp.barrier()  # rank 0 has written best.safetensors
        load_weights(loop.model, loop.run_dir / "checkpoints" / "best.safetensors")
    elif loop.best_state is not None:
        loop.model.load_state_dict(loop.best_state)
    return loop.best_epoch


def fit(model: nn.Module, train: MultimodalDataset, valid: MultimodalDataset | None, cfg: TrainConfig, seed: int,
        run_dir: str | Path | None = None, resume: bool = False,
        on_epoch_end: Callable[[int], None] | None = None) -> FitResult:
    """Train ``model`` on ``train``; select and early-stop on ``valid``.

    Args:
        cfg: a :class:`robustfusion.runner.config.TrainConfig` (or the ``train`` node of a run config).
        seed: the run seed (data order, augmentations, dropout masks per epoch).
        run_dir: where to write ``metrics.jsonl`` and checkpoints (``None``: in memory only;
            ``selection="best"`` then keeps the best weights in memory).
        resume: continue from ``run_dir``'s latest checkpoint.
        on_epoch_end: called with the epoch number after its checkpoint is written (tests use
            it to interrupt a run).

    Under ``torchrun`` every rank calls ``fit`` with the same arguments; ``cfg.batch_size`` is the
    global batch (see :mod:`robustfusion.runner.distributed`) and only rank 0 writes.

    Returns:
        :class:`FitResult`; the model holds the selected weights (``cfg.selection``).

    Raises:
        FloatingPointError: a training loss that is not finite (or a model that returned none).
    """
    loop = _setup(model, train, valid, cfg, seed, Path(run_dir) if run_dir is not None else None)
    start = _resume(loop) if resume else 1
    epoch = start - 1
    try:
        for epoch in range(start, cfg.epochs + 1):
            if cfg.patience and loop.stale >= cfg.patience:
                epoch -= 1
                break
            t0 = time.perf_counter()
            row = _train_epoch(loop, epoch)
            _validate_and_select(loop, row, epoch)
            row["time_s"] = round(time.perf_counter() - t0, 4)
            _record(loop, row, epoch)
            if on_epoch_end is not None:
                on_epoch_end(epoch)
    finally:
        loop.log.close()
    return FitResult(epochs_run=epoch, selected_epoch=_select(loop, epoch), best_value=loop.best,
                     history=loop.history)
