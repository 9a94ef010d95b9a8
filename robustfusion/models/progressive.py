"""Progressive Fusion (Shankar, Thompson, Fiterau, arXiv 2209.00302): a late-fusion model
unrolled for ``R`` steps with the fused representation fed back into every unimodal encoder.

The paper: "Our model-agnostic technique introduces backward connections that make late stage
fused representations available to early layers". Here the backward connection is the
``context`` port of every :class:`robustfusion.encoders.ModalityEncoder` (see
:class:`robustfusion.encoders.ContextInjection`), so any late-fusion model whose encoders have
that port can be unrolled with :mod:`robustfusion.models.back_connection`
(:class:`~robustfusion.models.back_connection.BackConnection`, :func:`unroll_progressive`), which
this model uses for its initial context, its ``R`` steps and detaching.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.heads import PredictionHead
from robustfusion.losses.supervised import supervised_loss
from robustfusion.models.back_connection import (
    LOSS_AT,
    check_progressive_options,
    encode_with_context,
    initial_context,
    initial_context_parameter,
    unroll_progressive,
)
from robustfusion.models.base import MultimodalModel
from robustfusion.models.builders import build_fusion, build_modality_encoders
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import register_model

# LOSS_AT, check_progressive_options and unroll_progressive live in back_connection.py (shared
# with gmc_pf); they stay importable from here.
__all__ = ["LOSS_AT", "ProgressiveFusion", "check_progressive_options", "unroll_progressive"]


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
        self.c0 = initial_context_parameter(self.context_dim, self.learned_init)

    def initial_context(self, any_present: Tensor) -> Tensor | None:
        """``c_0`` ``[B, K]`` (learned, zero for samples with no modality), or ``None`` (= zeros)."""
        return initial_context(self.c0, any_present)

    def unroll(self, batch: MultimodalBatch, present: Tensor) -> tuple[list[dict[str, Tensor]], list[Tensor | None]]:
        """The ``R`` steps on ``batch``; see :func:`unroll_progressive` for the returned lists."""
        any_present = present.any(dim=1, keepdim=True)
        return unroll_progressive(encode_with_context(self.encoders, batch), lambda h: self.fusion(h, present),
                                  self.initial_context(any_present), self.steps, any_present, self.detach_context)

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
