"""``robustfusion train`` under ``torchrun``: the process group, rank helpers, shards and gathers.

Run as ``torchrun --nproc-per-node N -m robustfusion train CONFIG [key=value ...]``. As timm's
``train.py`` does, the process group comes from the environment torchrun sets (``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): gloo on CPU, NCCL on CUDA with one
device per local rank (:func:`process_group`). Without torchrun (no ``WORLD_SIZE``, or
``WORLD_SIZE=1``) every helper here is a no-op and a run is exactly the single-process one.

What a run on ``W`` ranks computes (this library's choices, made so that with the same global
batch it ends with the single-process numbers up to float summation order):

* ``train.batch_size`` is the global batch ``B``. Every rank walks the same epoch order (seeded as
  in one process) and draws the training masks (modality dropout, frame dropout) for the whole
  global batch with the same generator, then keeps its contiguous shard (:func:`shard_bounds`:
  sizes differ by at most one, e.g. a last batch of 33 samples is split 16 / 17 on two ranks). A
  batch with fewer samples than ranks (only the last one of an epoch can be) is refused before
  training (:func:`check_batches`).
* Losses. A model whose loss couples the samples of a batch (``couples_samples``; the GMC family:
  the contrastive loss takes the other samples of the batch as negatives, the unimodal term
  averages over the samples that have each modality) gathers the outputs and targets of every
  rank's shard itself in ``add_losses`` (with autograd, :func:`robustfusion.losses.gather.gather_rows`),
  so every rank computes the single-process loss (:func:`shard_forward`). Any other model's loss is taken to be
  a mean over its samples, and each rank's shard loss is weighted by its share ``b_r / B``.
* Gradients are summed over the ranks after ``backward`` (:func:`all_reduce_grads`); with the
  weights above that is the single-process gradient, so clipping and the optimizer step, run
  alike on every rank, keep the replicas identical.
* Model-internal randomness (dropout layers) is seeded alike on every rank, as in one process, but
  drawn for the rank's shard, so it differs from a single-process run: runs compared for equality
  need internal dropout 0 (e.g. ``model.params.head_dropout=0``). Layers with batch statistics
  (BatchNorm in a frame backbone being fine-tuned) see the shard only.
* Validation, selection, early stopping and calibration run on every rank on the same weights; the
  monitored value of rank 0 is broadcast (:func:`broadcast_object`) so that every rank takes the
  same decisions. Only rank 0 writes the run directory; the others wait at barriers.

A rank that fails ends its process; torchrun then stops the others, and a rank blocked in a
collective gives up after the process group's timeout (:data:`TIMEOUT`) at the latest.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.losses.gather import gather_rows as _gather_rows
from robustfusion.models.output import ModelOutput

__all__ = [
    "TIMEOUT",
    "all_reduce_grads",
    "barrier",
    "broadcast_object",
    "check_batches",
    "env_world_size",
    "gather_rows",
    "is_main",
    "local_device",
    "process_group",
    "rank",
    "reduce_sum",
    "shard_bounds",
    "shard_forward",
    "world_size",
]

#: How long a rank waits in a collective (a barrier while rank 0 writes, a gradient all-reduce)
#: before it gives up: torch's default for gloo, long enough for rank 0 to write a checkpoint.
TIMEOUT = datetime.timedelta(minutes=30)


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset); a value that is not a positive
    integer is an error."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"WORLD_SIZE: expected a positive integer (set by torchrun), found {raw!r}")
    return n


def world_size() -> int:
    """Ranks of the initialised process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on rank 0, the only rank that writes files (and in a single process)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if world_size() > 1:
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable objects; ``obj`` itself in a single process)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def _wants_cuda(device: str) -> bool:
    device = str(device)
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"train.device={device!r} but CUDA is not available here; use device=cpu or auto")
        return True
    return device == "auto" and torch.cuda.is_available()


@contextlib.contextmanager
def process_group(device: str = "auto", timeout: datetime.timedelta = TIMEOUT) -> Iterator[int]:
    """Join the process group torchrun describes in the environment for the block; yields the
    world size.

    ``WORLD_SIZE`` unset or 1, or a group already initialised by the caller: nothing is done.
    Otherwise ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` must be set; the backend
    is NCCL when ``device`` (``train.device``) selects CUDA, with ``cuda:LOCAL_RANK`` made the
    current device, else gloo. The group is destroyed when the block ends, also on an error.
    """
    world = env_world_size()
    if world == 1 or (dist.is_available() and dist.is_initialized()):
        yield world_size()
        return
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE={world} but {missing} are not set; expected the environment torchrun sets "
                         "(run `torchrun --nproc-per-node N -m robustfusion train ...`)")
    cuda = _wants_cuda(device)
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    try:
        yield dist.get_world_size()
    finally:
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """Under a process group, a CUDA ``device`` becomes this rank's own (the current device set by
    :func:`process_group`); anything else is returned as it is."""
    if world_size() > 1 and device.type == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return device


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a batch of ``n`` samples that rank ``rank`` of ``world`` trains on:
    contiguous shards, in rank order, whose sizes differ by at most one."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard_bounds: expected 0 <= rank < world, found rank={rank}, world={world}")
    return n * rank // world, n * (rank + 1) // world


def shard_sizes(n: int, world: int) -> list[int]:
    """The shard size of every rank for a batch of ``n`` samples (:func:`shard_bounds`)."""
    return [hi - lo for lo, hi in (shard_bounds(n, r, world) for r in range(world))]


def check_batches(n_train: int, batch_size: int, world: int | None = None) -> None:
    """Refuse a global batch size that leaves some rank a batch without samples: ``batch_size``
    below the world size, or a last batch of the epoch (``n_train % batch_size``) that is."""
    world = world_size() if world is None else world
    if world == 1:
        return
    last = n_train % batch_size
    if batch_size < world or 0 < last < world:
        small = batch_size if batch_size < world else last
        raise ValueError(f"train.batch_size={batch_size} on {world} ranks: expected every batch to hold at least "
                         f"one sample per rank, found a batch of {small} ({n_train} training samples); choose a "
                         f"batch size >= {world} whose last batch ({n_train} % batch size) is 0 or >= {world}")


def gather_rows(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """``[sum(sizes), ...]``: every rank's ``x`` (``[sizes[rank], ...]``) in rank order, with
    autograd (:func:`robustfusion.losses.gather.gather_rows`). Every rank must call it with the same
    ``sizes``. In a single process ``x`` itself."""
    sizes = tuple(int(s) for s in sizes)
    if x.shape[0] != sizes[rank()]:
        raise ValueError(f"gather_rows: expected {sizes[rank()]} rows on rank {rank()} (sizes {list(sizes)}), "
                         f"found {x.shape[0]}")
    return _gather_rows(x, sizes)


def shard_forward(model: nn.Module, batch: MultimodalBatch, device: torch.device) -> tuple[ModelOutput, float]:
    """``model`` on this rank's shard of the global ``batch``; returns ``(out, weight)``.

    ``out.loss`` is the loss of the global batch when the model's loss couples its samples
    (``model.couples_samples``: its ``add_losses`` gathers the rows of every rank itself;
    ``weight = 1 / W``: every rank holds the same loss and the gathers' backward sums the ranks'
    gradients), else the shard's own mean loss (``weight = b_r / B``). Back-propagate
    ``weight * out.loss`` and sum the gradients over ranks (:func:`all_reduce_grads`). In a single
    process: ``model(batch)`` and weight 1.
    """
    world = world_size()
    if world == 1:
        return model(batch.to(device)), 1.0
    n = batch.batch_size
    lo, hi = shard_bounds(n, rank(), world)
    shard = batch.select(slice(lo, hi)).to(device)
    gathered = bool(getattr(model, "couples_samples", False)) and shard.targets is not None
    return model(shard), (1.0 / world if gathered else (hi - lo) / n)


def reduce_sum(values: Sequence[float]) -> list[float]:
    """The sum over ranks of each of ``values`` (the values themselves in a single process)."""
    if world_size() == 1:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.tolist()


def all_reduce_grads(model: nn.Module) -> None:
    """Sum every parameter's gradient over the ranks, in one flat all-reduce (no-op in a single
    process). A parameter that got no gradient on any rank keeps ``None`` (the optimizer skips it,
    as in one process); one that got it on some ranks only counts zeros for the others."""
    if world_size() == 1:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return
    device = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    used = [p for p, h in zip(params, has.tolist()) if h > 0]
    if not used:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in used])
    dist.all_reduce(flat)
    offset = 0
    for p in used:
        k = p.numel()
        p.grad = flat[offset: offset + k].view_as(p).clone()
        offset += k
