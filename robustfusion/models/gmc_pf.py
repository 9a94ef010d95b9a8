"""GMC + Progressive Fusion: GMC (Poklukar et al., arXiv 2202.03390) whose base encoders
receive the back-connected context of Progressive Fusion (Shankar et al., arXiv 2209.00302).

No published code combines the two. Progressive Fusion: "Our model-agnostic technique
introduces backward connections that make late stage fused representations available to
early layers"; GMC: one shared projection head aligns every modality's latent ``z_m`` with the
joint latent ``z_joint``. Here the aligned latent space is refined over ``R`` steps, and the
context fed back at every step is computed from the present modalities only.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.fusion.mean import mean_of_present
from robustfusion.models.back_connection import (
    check_progressive_options,
    encode_with_context,
    initial_context,
    initial_context_parameter,
    unroll_progressive,
)
from robustfusion.models.builders import build_fusion, build_modality_encoders
from robustfusion.models.gmc import GMC
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import register_model

__all__ = ["PREDICT_FROM", "GMCProgressive"]

PREDICT_FROM = ("gmc", "modalities")


@register_model("gmc_pf")
class GMCProgressive(GMC):
    """GMC whose base encoders ``f_m`` are unrolled for ``R`` steps with a back-connection.

    Step ``r = 1..R``: ``h_m^r = f_m(x_m, context=c_{r-1})`` for every modality, ``z_m^r =
    g(h_m^r)`` with GMC's shared projection head ``g``, and the next context ``c_r`` is
    computed from the present modalities only:

    * ``context="z_mean"`` (default, this library's choice): ``c_r`` = mean of the present
      ``z_m^r`` (parameter-free, ``K = latent_dim``; it is exactly GMC's representation of the
      sample's modality subset, so the encoders are told "what the other present modalities
      say" in the aligned space);
    * any registered fusion name (e.g. ``"concat"``, ``"mean"``): that fusion layer over the
      present ``h_m^r`` (``K`` = its ``out_dim``).

    The joint encoder ``f_joint`` is not unrolled (it sees every modality at once already)::

        x_m --[+c_{r-1}]--> f_m --> h_m^r --g--> z_m^r --\\
        x_n --[+c_{r-1}]--> f_n --> h_n^r --g--> z_n^r ---> mean over present --> c_r
                  ^                                                              |
                  +---------------------- back-connection -----------------------+
        all x --> f_joint --> g --> z_joint        (contrastive anchor, GMC's rule)

    The shared head, the GMC contrastive loss and the supervised loss apply to the final step
    (``loss_at="last"``, default, this library's choice) or are averaged over all steps
    (``loss_at="every"``). Prediction: GMC's rule on the final latents (``predict_from="gmc"``,
    default): ``head(z_joint)`` when every modality is present, ``head(mean of present z_m^R)``
    otherwise, ``fallback`` with none. Because ``f_joint`` is not unrolled, the back-connection
    then reaches complete samples' predictions only through training (the contrastive loss
    aligns ``z_joint`` with the refined ``z_m^R``); ``predict_from="modalities"`` predicts
    every sample from the mean of its present ``z_m^R``. On the interaction task of
    ``benchmarks/interaction_fit.py --gmc`` only the latter gains from the back-connection.

    Missing modalities cannot leak in: the context of a sample at every step is a function of
    its present modalities only, and its prediction and loss terms use only its present
    ``z_m``. Since ``z_m`` depends on which other modalities are present (through the
    context), ``supports_latent_reuse`` is ``False``: an evaluator must re-encode each subset.

    Cost: one forward runs every base encoder ``R`` times and the joint encoder once (about
    ``R`` times the base-encoder compute of :class:`GMC`). Measured by
    ``benchmarks/bench_progressive.py`` against plain GMC (GRU encoders, B=24, T=50, MOSEI
    sizes, one CPU thread): R=2 / R=3 keep 1.6x / 2.1x the activations for backward and take
    about 1.5x / 2.1x the CPU time of forward+backward. ``R = 1`` with ``c_0 = 0`` is exactly :class:`GMC`
    with the same weights.

    Args:
        modality_dims, task, num_outputs, encoder, hidden_dim, latent_dim, encoder_kwargs:
            as :class:`GMC`.
        steps: ``R >= 1`` (default 2, this library's choice).
        context_mode: ``"concat"``, ``"add"`` (default, this library's choice) or ``"gate"``;
            see :class:`robustfusion.encoders.ContextInjection`.
        context: ``"z_mean"`` (default) or a registered fusion name, see above.
        context_kwargs: extra arguments for a registry-built context fusion.
        detach_context: ``False`` (default, this library's choice) backpropagates through all
            steps; ``True`` detaches each fed-back context (gradients through the last step only).
        loss_at: ``"last"`` (default) or ``"every"`` (losses averaged over the ``R`` steps).
        learned_init: ``False`` (default, this library's choice): ``c_0 = 0``; ``True``: a learned
            ``c_0`` initialised to zero.
        predict_from: ``"gmc"`` (default) or ``"modalities"``, see above.
        encoders: optional built base encoders with ``context_dim == K``.
        **gmc_kwargs: every other :class:`GMC` argument (``joint_encoder``, ``temperature``,
            ``contrastive_weight``, ``supervised_weight``, ``regression_loss``, ...).
    """

    supports_latent_reuse = False

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1,
                 encoder: str = "gru", hidden_dim: int = 64, latent_dim: int = 64,
                 encoder_kwargs: Mapping[str, object] | None = None, steps: int = 2, context_mode: str = "add",
                 context: str = "z_mean", context_kwargs: Mapping[str, object] | None = None,
                 detach_context: bool = False, loss_at: str = "last", learned_init: bool = False,
                 predict_from: str = "gmc", encoders: Mapping[str, nn.Module] | None = None,
                 **gmc_kwargs: object) -> None:
        check_progressive_options(steps, context_mode, loss_at)
        if predict_from not in PREDICT_FROM:
            raise ValueError(f"predict_from: expected one of {PREDICT_FROM}, found {predict_from!r}")
        if not isinstance(context, str):
            raise TypeError(f"context: expected 'z_mean' or a registered fusion name, found {type(context).__name__}")
        context_fusion = None
        if context == "z_mean":
            context_dim = latent_dim
        else:
            context_fusion = build_fusion(context, hidden_dim, len(modality_dims), context_kwargs)
            context_dim = int(context_fusion.out_dim)
        base = build_modality_encoders(modality_dims, encoder, hidden_dim, encoder_kwargs, encoders,
                                       context_dim=context_dim, context_mode=context_mode)
        super().__init__(modality_dims, task, num_outputs, encoder=encoder, hidden_dim=hidden_dim,
                         latent_dim=latent_dim, encoders=dict(base), **gmc_kwargs)
        self.steps, self.context_mode, self.context_source = steps, context_mode, context
        self.context_dim, self.detach_context = context_dim, bool(detach_context)
        self.loss_at, self.learned_init, self.predict_from = loss_at, bool(learned_init), predict_from
        self.context_fusion = context_fusion
        self.c0 = initial_context_parameter(context_dim, self.learned_init)

    # ------------------------------------------------------------------ unrolling
    def initial_context(self, any_present: Tensor) -> Tensor | None:
        """``c_0`` ``[B, K]`` (learned, zero for samples with no modality), or ``None`` (= zeros)."""
        return initial_context(self.c0, any_present)

    def _context(self, h: Mapping[str, Tensor], present: Tensor) -> Tensor:
        if self.context_fusion is None:
            return mean_of_present({m: self.projection(h[m]) for m in self.modalities}, present)
        return self.context_fusion({m: h[m] for m in self.modalities}, present)

    def unroll(self, batch: MultimodalBatch, present: Tensor) -> tuple[list[dict[str, Tensor]], list[Tensor | None]]:
        """``(h per step, [c_0, ..., c_R])``; see
        :func:`robustfusion.models.back_connection.unroll_progressive`. ``c_R`` is computed too
        (it is returned in ``extras["contexts"]``)."""
        any_present = present.any(dim=1, keepdim=True)
        return unroll_progressive(encode_with_context(self.encoders, batch), lambda h: self._context(h, present),
                                  self.initial_context(any_present), self.steps, any_present, self.detach_context)

    def encode(self, batch: MultimodalBatch, contexts: Mapping[str, Tensor] | None = None) -> tuple[dict[str, Tensor], Tensor]:
        """``({name: z_m^R}, z_joint)`` after the ``R`` steps, for the batch's presence mask.

        ``z_m^R`` depends on which modalities are present (the contexts are computed from them),
        so it must not be reused for another subset. ``contexts`` must be ``None``: this model
        computes its own.
        """
        if contexts is not None:
            raise ValueError("gmc_pf computes its own back-connected contexts; expected contexts=None, "
                             f"found contexts for {list(contexts)}")
        present = self.check_batch(batch)
        feats, _ = self.unroll(batch, present)
        z = {m: self.projection(h) for m, h in feats[-1].items()}
        return z, self.projection(self.joint_encoder(batch))

    def predict_from_latents(self, z: Mapping[str, Tensor], z_joint: Tensor, present: Tensor) -> Tensor:
        """GMC's rule (``predict_from="gmc"``) or the fused present ``z_m`` (``partial_fusion``,
        default their mean) for every sample."""
        if self.predict_from == "gmc":
            return super().predict_from_latents(z, z_joint, present)
        return self.apply_fallback(self.head(self.fuse_present(z, present)), present)

    # ------------------------------------------------------------------ forward
    def forward(self, batch: MultimodalBatch) -> ModelOutput:
        present = self.check_batch(batch)
        feats, contexts = self.unroll(batch, present)
        z_joint = self.projection(self.joint_encoder(batch))
        every = self.loss_at == "every"
        step_z, step_predictions = [], []
        for r, h in enumerate(feats, start=1):
            with torch.set_grad_enabled(torch.is_grad_enabled() and (every or r == self.steps)):
                z = {m: self.projection(h[m]) for m in self.modalities}
                step_z.append(z)
                step_predictions.append(self.predict_from_latents(z, z_joint, present))
        out = ModelOutput(prediction=step_predictions[-1], z=step_z[-1], z_joint=z_joint,
                          extras={"step_predictions": step_predictions, "step_z": step_z, "contexts": contexts})
        if batch.targets is not None:
            if not every:
                self.add_losses(out, batch, present)
                return out
            per_step = []
            for z, p in zip(step_z, step_predictions):
                o = ModelOutput(prediction=p, z=z, z_joint=z_joint)
                self.add_losses(o, batch, present)
                per_step.append(o)
            out.losses = {k: torch.stack([o.losses[k] for o in per_step]).mean() for k in per_step[-1].losses}
            for r, o in enumerate(per_step, start=1):
                out.losses.update({f"{k}/step{r}": v for k, v in o.losses.items() if "/" not in k})
            out.loss = torch.stack([o.loss for o in per_step]).mean()
        return out
