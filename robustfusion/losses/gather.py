"""Gathering the rows of a batch from every rank, with autograd, for losses that couple the
samples of a batch (contrastive negatives, per-modality means).

As lightly's ``NTXentLoss(gather_distributed=True)`` and torchmultimodal's contrastive loss do, a
loss that needs the whole global batch gathers it itself: under an initialised
``torch.distributed`` process group with more than one rank, :func:`gather_rows` returns every
rank's rows in rank order and its backward sums the gradients of all copies and hands each rank
the gradient of its own rows (the convention of ``torch.distributed.nn.functional.all_gather``).
Every rank then holds the loss of the global batch; back-propagating it with the weight ``1 / W``
and summing the gradients over the ranks gives the single-process gradient. Without a process
group (or with one rank) everything here returns its input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["gather_rows", "gathered_world", "row_counts"]


def gathered_world() -> int:
    """Ranks a gather spans: the process group's size, 1 without one."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def row_counts(n: int, device: torch.device | str = "cpu") -> tuple[int, ...]:
    """Every rank's row count (``n`` on this rank), in rank order; ``(n,)`` in a single process.
    On NCCL ``device`` must be this rank's CUDA device."""
    if gathered_world() == 1:
        return (int(n),)
    mine = torch.tensor([int(n)], device=device)
    parts = [torch.empty_like(mine) for _ in range(gathered_world())]
    dist.all_gather(parts, mine)
    return tuple(int(p.item()) for p in parts)


class _GatherRows(torch.autograd.Function):
    """All-gather along dim 0 with per-rank row counts; the backward sums the gradients of every
    rank and returns this rank's rows."""

    @staticmethod
    def forward(ctx, x: Tensor, sizes: tuple[int, ...]) -> Tensor:
        me = dist.get_rank()
        ctx.sizes, ctx.me = sizes, me
        padded = x.new_zeros((max(sizes), *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        lo = sum(ctx.sizes[: ctx.me])
        return grad[lo: lo + ctx.sizes[ctx.me]], None


def gather_rows(x: Tensor, sizes: Sequence[int] | None = None) -> Tensor:
    """``[sum(sizes), ...]``: every rank's ``x`` (``[sizes[rank], ...]``) in rank order, with
    autograd; ``sizes`` default to :func:`row_counts` of ``x``. Every rank must call it alike. In a
    single process ``x`` itself. Bool tensors are gathered as ``uint8``."""
    if gathered_world() == 1:
        return x
    sizes = row_counts(x.shape[0], x.device) if sizes is None else tuple(int(s) for s in sizes)
    me = dist.get_rank()
    if x.shape[0] != sizes[me]:
        raise ValueError(f"gather_rows: expected {sizes[me]} rows on rank {me} (sizes {list(sizes)}), "
                         f"found {x.shape[0]}")
    if x.dtype == torch.bool:
        return _GatherRows.apply(x.to(torch.uint8), sizes).bool()
    return _GatherRows.apply(x, sizes)
