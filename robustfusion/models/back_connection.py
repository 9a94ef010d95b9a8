"""Progressive-fusion back-connection: the initial context, the ``R`` unrolled steps, detaching.

Progressive Fusion (Shankar, Thompson, Fiterau, arXiv 2209.00302): "Our model-agnostic technique
introduces backward connections that make late stage fused representations available to early
layers". Here the backward connection is the ``context`` port of every
:class:`robustfusion.encoders.ModalityEncoder` (see :class:`robustfusion.encoders.ContextInjection`):
for ``r = 1..R`` every encoder runs with ``c_{r-1}`` injected and the fused present modalities
give ``c_r``. Both ``"progressive"`` and ``"gmc_pf"`` run their steps through this module; use
:class:`BackConnection` to unroll a model of your own the same way.

Choices the paper leaves open, with this library's defaults: ``c_0 = 0`` (``learned_init=False``),
gradients through every step (``detach_context=False``). A sample with no modality present always
gets zero context, so its (fallback) prediction cannot depend on anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.encoders.context import CONTEXT_MODES

__all__ = [
    "LOSS_AT",
    "BackConnection",
    "check_progressive_options",
    "encode_with_context",
    "initial_context",
    "initial_context_parameter",
    "unroll_progressive",
]

#: Where a progressive model puts its supervised loss: on the last step or averaged over every step.
LOSS_AT = ("last", "every")

Encode = Callable[[Tensor | None], Mapping[str, Tensor]]
Fuse = Callable[[Mapping[str, Tensor]], Tensor]


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps: expected an integer R >= 1, found {steps!r}")


def check_progressive_options(steps: int, context_mode: str, loss_at: str = "last") -> None:
    """Raise ``ValueError`` for ``steps < 1``, an unknown ``context_mode`` or ``loss_at``."""
    _check_steps(steps)
    if context_mode not in CONTEXT_MODES:
        raise ValueError(f"context_mode: expected one of {CONTEXT_MODES}, found {context_mode!r}")
    if loss_at not in LOSS_AT:
        raise ValueError(f"loss_at: expected one of {LOSS_AT}, found {loss_at!r}")


def initial_context_parameter(context_dim: int, learned: bool) -> nn.Parameter | None:
    """A learned ``c_0`` ``[K]`` initialised to zero (so an untrained model equals the ``c_0 = 0``
    one), or ``None`` for ``c_0 = 0``."""
    return nn.Parameter(torch.zeros(context_dim)) if learned else None


def initial_context(c0: Tensor | None, any_present: Tensor) -> Tensor | None:
    """``c_0`` ``[B, K]`` from a learned ``c0`` ``[K]``, zero for samples with no modality
    (``any_present`` ``[B, 1]`` False); ``None`` (= zeros, the encoders' plain path) without one."""
    if c0 is None:
        return None
    return c0.unsqueeze(0) * any_present.to(c0.dtype)


def encode_with_context(encoders: Mapping[str, nn.Module], batch: MultimodalBatch) -> Encode:
    """``context [B, K] | None -> {name: encoder(x_m, frame_mask_m, context) [B, H]}`` over
    ``encoders`` (in their order): the ``encode`` step of :func:`unroll_progressive`."""

    def encode(c: Tensor | None) -> dict[str, Tensor]:
        return {m: enc(batch.inputs[m], batch.frame_mask(m), c) for m, enc in encoders.items()}

    return encode


def unroll_progressive(encode: Encode, fuse: Fuse, c0: Tensor | None, steps: int, any_present: Tensor,
                       detach_context: bool = False) -> tuple[list[dict[str, Tensor]], list[Tensor | None]]:
    """Run the ``R`` steps of progressive fusion; the model-agnostic core of this module.

    For ``r = 1..R``: ``feats_r = encode(c_{r-1})`` (every modality's encoder with the context
    injected), ``c_r = fuse(feats_r)`` zeroed for samples with no modality present. With
    ``detach_context`` the context is detached before it is fed back (gradients then flow
    through the last step only; ``c_0`` itself is never detached).

    Args:
        encode: ``context [B, K] | None -> {name: [B, H]}`` (e.g. :func:`encode_with_context`).
        fuse: ``{name: [B, H]} -> [B, K]``; must use the present modalities only.
        c0: initial context ``[B, K]`` or ``None`` (= zeros, the encoders' plain path).
        steps: ``R >= 1``.
        any_present: ``[B, 1]`` bool, the sample has at least one modality.
        detach_context: see above.

    Returns:
        ``(feats, contexts)``: ``feats[r-1]`` are the step-``r`` modality features and
        ``contexts = [c_0, c_1, ..., c_R]`` (``c_0`` may be ``None``); ``c_R`` is the final fused
        representation. Cost: ``R`` calls of ``encode`` and ``fuse``.
    """
    feats: list[dict[str, Tensor]] = []
    contexts: list[Tensor | None] = [c0]
    c = c0
    for _ in range(steps):
        h = dict(encode(c))
        fused = fuse(h)
        fused = fused * any_present.to(fused.dtype)
        feats.append(h)
        contexts.append(fused)
        c = fused.detach() if detach_context else fused
    return feats, contexts


class BackConnection(nn.Module):
    """The back-connection as a module you can drop into your own late-fusion model.

    ``back(encode, fuse, present) -> (feats, contexts)``: :func:`unroll_progressive` from
    ``c_0`` (learned or zero, zero for samples with no modality present), ``present`` ``[B, M]``.

    Args:
        context_dim: ``K``, the fused size fed back (the encoders' ``context_dim``).
        steps: ``R >= 1`` (default 2).
        learned_init: learned ``c_0`` (parameter ``c0`` ``[K]``, initialised to zero) instead of
            ``c_0 = 0`` (default).
        detach_context: detach every fed-back context (gradients through the last step only).

    Example (encoders built with a context port of size ``K``, any mask-aware fusion)::

        class MyModel(nn.Module):
            def __init__(self, dims, k=32):
                super().__init__()
                self.encoders = nn.ModuleDict({m: create_encoder("gru", in_dim=d, out_dim=k, context_dim=k)
                                               for m, d in dims.items()})
                self.fusion = create_fusion("mean", dim=k)
                self.back = BackConnection(k, steps=2)
                self.head = nn.Linear(k, 1)

            def forward(self, batch):
                present = torch.stack([batch.present_mask(m) for m in self.encoders], dim=1)
                feats, contexts = self.back(encode_with_context(self.encoders, batch),
                                            lambda h: self.fusion(h, present), present)
                return self.head(contexts[-1])  # [B, 1] from c_R; feats[-1]: last step's {name: [B, k]}
    """

    def __init__(self, context_dim: int, steps: int = 2, learned_init: bool = False,
                 detach_context: bool = False) -> None:
        super().__init__()
        _check_steps(steps)
        self.context_dim, self.steps, self.detach_context = int(context_dim), steps, bool(detach_context)
        self.c0 = initial_context_parameter(self.context_dim, learned_init)

    def initial_context(self, any_present: Tensor) -> Tensor | None:
        """``c_0`` ``[B, K]`` (zero rows where ``any_present`` ``[B, 1]`` is False), or ``None``."""
        return initial_context(self.c0, any_present)

    def forward(self, encode: Encode, fuse: Fuse, present: Tensor
                ) -> tuple[list[dict[str, Tensor]], list[Tensor | None]]:
        any_present = present.any(dim=1, keepdim=True)
        return unroll_progressive(encode, fuse, self.initial_context(any_present), self.steps, any_present,
                                  self.detach_context)
