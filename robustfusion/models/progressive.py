"""Progressive Fusion (Shankar, Thompson, Fiterau, arXiv 2209.00302): a late-fusion model
unrolled for ``R`` steps with the fused representation fed back into every unimodal encoder.

The paper: "Our model-agnostic technique introduces backward connections that make late stage
fused representations available to early layers". Here the backward connection is the
``context`` port of every :class:`robustfusion.encoders.ModalityEncoder` (see
:class:`robustfusion.encoders.ContextInjection`), so any late-fusion model whose encoders have
that port can be unrolled with :func:`unroll_progressive`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.encoders.context import CONTEXT_MODES
from robustfusion.heads import PredictionHead
from robustfusion.losses.supervised import supervised_loss
from robustfusion.models.base import MultimodalModel
from robustfusion.models.late_fusion import build_fusion, build_modality_encoders
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import register_model

__all__ = ["LOSS_AT", "ProgressiveFusion", "check_progressive_options", "unroll_progressive"]

LOSS_AT = ("last", "every")


def check_progressive_options(steps: int, context_mode: str, loss_at: str) -> None:
    """Raise ``ValueError`` for ``steps < 1``, an unknown ``context_mode`` or ``loss_at``."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps: expected an integer R >= 1, found {steps!r}")
    if context_mode not in CONTEXT_MODES:
        raise ValueError(f"context_mode: expected one of {CONTEXT_MODES}, found {context_mode!r}")
    if loss_at not in LOSS_AT:
        raise ValueError(f"loss_at: expected one of {LOSS_AT}, found {loss_at!r}")


def unroll_progressive(encode: Callable[[Tensor | None], Mapping[str, Tensor]],
                       fuse: Callable[[Mapping[str, Tensor]], Tensor],
                       c0: Tensor | None, steps: int, any_present: Tensor,
                       detach_context: bool = False) -> tuple[list[dict[str, Tensor]], list[Tensor | None]]:
    """Run the ``R`` steps of progressive fusion; the model-agnostic core of this module.

    For ``r = 1..R``: ``feats_r = encode(c_{r-1})`` (every modality's encoder with the context
    injected), ``c_r = fuse(feats_r)`` zeroed for samples with no modality present. With
    ``detach_context`` the context is detached before it is fed back (gradients then flow
    through the last step only; ``c_0`` itself is never detached).

    Args:
        encode: ``context [B, K] | None -> {name: [B, H]}``.
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


@register_model("progressive")
class ProgressiveFusion(MultimodalModel):
    """Late fusion unrolled for ``R`` steps with backward connections (arXiv 2209.00302).

    Step ``r = 1..R``: every modality's encoder runs with the context ``c_{r-1}`` injected
    into its early layers (its input features, see :class:`ContextInjection`), the fusion
    module combines the *present* modalities' outputs into ``c_r``. The prediction is
    ``head(c_R)``; the per-step predictions ``head(c_r)`` are in
    ``output.extras["step_predictions"]``. ``R = 1`` is exactly :class:`LateFusion` with the
    same weights (``c_0 = 0`` is the encoders' plain path)::

        x_m --[+c_{r-1}]--> f_m --> h_m^r --\\
        x_n --[+c_{r-1}]--> f_n --> h_n^r ---> fusion(present only) --> c_r --> head
                   ^                                                    |
                   +-------------------- back-connection ---------------+

    Missing modalities: an absent modality's features are excluded by the fusion at every
    step, so the context a sample receives, and therefore its prediction, depends only on its
    present modalities (never on what is stored in an absent modality's tensor). A sample with
    no modality present gets zero context at every step and the ``fallback`` prediction.

    Cost: one forward runs every modality encoder ``R`` times and the fusion ``R`` times
    (about ``R`` times the encoder compute and activation memory of the plain late-fusion
    model when gradients flow through all steps); parameters grow only by the context
    injection of each encoder (``K x D_m`` for ``"add"``). Measured by
    ``benchmarks/bench_progressive.py`` (GRU encoders, B=24, T=50, MOSEI sizes, one CPU
    thread): R=2 / R=3 keep 2.1x / 3.2x the activations for backward and take about 2.6x /
    4.0x the CPU time of forward+backward; a step after the first costs a bit more than the
    first because its encoder inputs (``x + P c``) require gradients.

    Args:
        modality_dims: ``{name: D}``.
        task, num_outputs: see :class:`MultimodalModel`.
        encoder: registered encoder name (default ``"gru"``).
        hidden_dim: size ``H`` of every modality representation (default 64).
        steps: ``R >= 1`` (default 2, this library's choice: the paper unrolls for a few steps
            and leaves ``R`` as a hyperparameter).
        context_mode: how the context enters the encoders, ``"concat"``, ``"add"`` or
            ``"gate"`` (default ``"add"``, this library's choice: the paper does not fix it).
        detach_context: ``False`` (default, this library's choice) backpropagates through all
            ``R`` steps; ``True`` detaches every fed-back context so gradients flow through the
            last step only (earlier steps, and a learned ``c_0`` when ``R > 1``, then get no
            gradient from the last step's loss).
        loss_at: ``"last"`` (default, this library's choice) trains on ``head(c_R)`` only;
            ``"every"`` averages the supervised loss over the ``R`` per-step predictions.
        learned_init: ``False`` (default, this library's choice): ``c_0 = 0``; ``True``: ``c_0``
            is a learned vector (initialised to zero, so an untrained model equals the
            ``c_0 = 0`` one).
        fusion: registered fusion name (default ``"mean"``, the mean over present modalities,
            this library's choice) or a built fusion module with ``out_dim``; its output size
            is the context size ``K``.
        fusion_kwargs, encoder_kwargs: extra arguments for registry-built parts.
        head_dropout: dropout inside the prediction head (default 0.0).
        regression_loss: ``"l1"`` (default) or ``"mse"``.
        encoders: optional ``{name: module}`` of built encoders with ``context_dim == K``.
        head: optional built head ``[B, K] -> [B, num_outputs]``.
    """

    supports_latent_reuse = False

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1,
                 encoder: str = "gru", hidden_dim: int = 64, steps: int = 2, context_mode: str = "add",
                 detach_context: bool = False, loss_at: str = "last", learned_init: bool = False,
                 fusion: str | nn.Module = "mean", fusion_kwargs: Mapping[str, object] | None = None,
                 encoder_kwargs: Mapping[str, object] | None = None, head_dropout: float = 0.0,
                 regression_loss: str = "l1", encoders: Mapping[str, nn.Module] | None = None,
                 head: nn.Module | None = None) -> None:
        super().__init__(modality_dims, task, num_outputs)
        check_progressive_options(steps, context_mode, loss_at)
        self.steps, self.context_mode, self.detach_context = steps, context_mode, bool(detach_context)
        self.loss_at, self.learned_init, self.regression_loss = loss_at, bool(learned_init), regression_loss
        self.fusion = build_fusion(fusion, hidden_dim, len(self.modalities), fusion_kwargs)
        self.context_dim = int(self.fusion.out_dim)
        self.encoders = build_modality_encoders(self.modality_dims, encoder, hidden_dim, encoder_kwargs, encoders,
                                                context_dim=self.context_dim, context_mode=context_mode)
        self.head = head if head is not None else PredictionHead(self.context_dim, num_outputs, head_dropout)
        self.c0 = nn.Parameter(torch.zeros(self.context_dim)) if self.learned_init else None

    def initial_context(self, any_present: Tensor) -> Tensor | None:
        """``c_0`` ``[B, K]`` (learned, zero for samples with no modality), or ``None`` (= zeros)."""
        if self.c0 is None:
            return None
        return self.c0.unsqueeze(0) * any_present.to(self.c0.dtype)

    def unroll(self, batch: MultimodalBatch, present: Tensor) -> tuple[list[dict[str, Tensor]], list[Tensor | None]]:
        """The ``R`` steps on ``batch``; see :func:`unroll_progressive` for the returned lists."""
        any_present = present.any(dim=1, keepdim=True)

        def encode(c: Tensor | None) -> dict[str, Tensor]:
            return {m: enc(batch.inputs[m], batch.frame_mask(m), c) for m, enc in self.encoders.items()}

        return unroll_progressive(encode, lambda h: self.fusion(h, present), self.initial_context(any_present),
                                  self.steps, any_present, self.detach_context)

    def forward(self, batch: MultimodalBatch) -> ModelOutput:
        present = self.check_batch(batch)
        feats, contexts = self.unroll(batch, present)
        step_predictions = []
        for r, c in enumerate(contexts[1:], start=1):
            with torch.set_grad_enabled(torch.is_grad_enabled() and (self.loss_at == "every" or r == self.steps)):
                step_predictions.append(self.apply_fallback(self.head(c), present))
        prediction = step_predictions[-1]
        out = ModelOutput(prediction=prediction, extras={
            "step_predictions": step_predictions, "contexts": contexts, "features": feats[-1]})
        if batch.targets is not None:
            if self.loss_at == "every":
                terms = [supervised_loss(p, batch.targets, self.task, self.regression_loss) for p in step_predictions]
                out.losses = {f"supervised/step{r}": t for r, t in enumerate(terms, start=1)}
                out.losses["supervised"] = torch.stack(terms).mean()
            else:
                out.losses = {"supervised": supervised_loss(prediction, batch.targets, self.task, self.regression_loss)}
            out.loss = out.losses["supervised"]
        return out
