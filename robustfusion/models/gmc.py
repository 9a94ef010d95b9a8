"""GMC: Geometric Multimodal Contrastive representation learning (Poklukar et al., ICML 2022,
arXiv 2202.03390), supervised variant as in GMC's affect (CMU-MOSI/MOSEI) experiments."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.encoders.joint import create_joint_encoder
from robustfusion.fusion.mean import mean_of_present
from robustfusion.heads import PredictionHead, SharedProjectionHead
from robustfusion.losses.gather import gather_rows, row_counts
from robustfusion.losses.gmc_contrastive import GMCContrastiveLoss
from robustfusion.losses.supervised import supervised_loss
from robustfusion.models.base import MultimodalModel
from robustfusion.models.builders import build_fusion, build_modality_encoders
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import register_model

__all__ = ["GMC"]


@register_model("gmc")
class GMC(MultimodalModel):
    """Base encoders ``f_m``, a joint encoder ``f_joint``, one shared projection head ``g``,
    the GMC contrastive loss and a prediction head.

    ``z_m = g(f_m(x_m))``, ``z_joint = g(f_joint(x_1..x_M))``. GMC: "a model trained once
    serves every subset": with every modality present the prediction is ``head(z_joint)``;
    with some missing it is ``head(mean of the present z_m)``; with none it is ``fallback``
    (see :class:`MultimodalModel`). The rule is applied per sample, so a batch may mix subsets.
    The loss is ``contrastive_weight * L_GMC + supervised_weight * L_sup`` where ``L_GMC`` is
    :func:`robustfusion.losses.gmc_contrastive_loss` (absent modalities excluded per term) and
    ``L_sup`` is computed on the per-sample prediction.

    Args:
        modality_dims: ``{name: D}``.
        task, num_outputs: see :class:`MultimodalModel`.
        encoder: registered encoder name for every ``f_m`` (``"gru"``, ``"transformer"``,
            ``"mlp"``), or pass built modules in ``encoders``.
        hidden_dim: size of the intermediate vectors ``h``.
        latent_dim: size of ``z``.
        encoder_kwargs: extra arguments for every base encoder.
        joint_encoder / joint_kwargs: registered joint encoder (default ``"concat"``).
        projection_hidden: hidden width of the shared head (0 = one Linear).
        temperature: contrastive ``tau`` (0.3 in GMC's affect experiments).
        contrastive_weight, supervised_weight: loss weights.
        regression_loss: ``"l1"`` (GMC) or ``"mse"``.
        unimodal_weight: weight of an extra supervised term on ``head(z_m)`` for every present
            modality (mean over modalities; default 0 = GMC's loss). This library's addition:
            it trains the single-modality predictions the missing-modality rule relies on.
        head_dropout: dropout in the prediction head.
        partial_fusion: how the present ``z_m`` of an incomplete sample are combined: ``"mean"``
            (GMC's rule, default) or a registered mask-aware fusion layer of width ``latent_dim``,
            e.g. ``"weighted_mean"`` (learned per-modality weights; equal to the mean at
            initialisation). This library's addition.
        encoders: optional ``{name: module}`` replacing the registry-built base encoders.
    """

    supports_latent_reuse = True
    couples_samples = True  # the contrastive and unimodal terms: add_losses gathers the global batch

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1,
                 encoder: str = "gru", hidden_dim: int = 64, latent_dim: int = 64,
                 encoder_kwargs: Mapping[str, object] | None = None, joint_encoder: str = "concat",
                 joint_kwargs: Mapping[str, object] | None = None, projection_hidden: int = 0,
                 temperature: float = 0.3, contrastive_weight: float = 1.0, supervised_weight: float = 1.0,
                 regression_loss: str = "l1", head_dropout: float = 0.0, unimodal_weight: float = 0.0,
                 partial_fusion: str = "mean", encoders: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__(modality_dims, task, num_outputs)
        self.encoders = build_modality_encoders(self.modality_dims, encoder, hidden_dim, encoder_kwargs, encoders)
        jkw = {"encoder": encoder, **dict(joint_kwargs or {})}
        self.joint_encoder = create_joint_encoder(joint_encoder, modality_dims=self.modality_dims,
                                                  out_dim=hidden_dim, **jkw)
        self.projection = SharedProjectionHead(hidden_dim, latent_dim, projection_hidden)
        self.head = PredictionHead(latent_dim, num_outputs, head_dropout)
        self.contrastive = GMCContrastiveLoss(temperature)
        self.contrastive_weight, self.supervised_weight = contrastive_weight, supervised_weight
        self.regression_loss = regression_loss
        if unimodal_weight < 0:
            raise ValueError(f"unimodal_weight: expected >= 0, found {unimodal_weight}")
        self.unimodal_weight = float(unimodal_weight)
        self.partial_fusion = None
        if partial_fusion != "mean":
            self.partial_fusion = build_fusion(partial_fusion, latent_dim, len(self.modalities), what="partial_fusion")
            if self.partial_fusion.out_dim != latent_dim:
                raise ValueError(f"partial_fusion={partial_fusion!r}: expected a fused size of latent_dim="
                                 f"{latent_dim}, found {self.partial_fusion.out_dim}")

    # ------------------------------------------------------------------ encoding
    def encode(self, batch: MultimodalBatch, contexts: Mapping[str, Tensor] | None = None) -> tuple[dict[str, Tensor], Tensor]:
        """``({name: z_m}, z_joint)`` for every sample and modality, present or not.

        ``z_m`` depends only on ``x_m`` (and its frame mask), never on which other modalities
        are present, which is what lets an evaluator reuse it for every subset.
        """
        self.check_batch(batch)
        contexts = contexts or {}
        # model order (not the order of a user-given `encoders` dict): `present` columns follow it
        z = {m: self.projection(self.encoders[m](batch.inputs[m], batch.frame_mask(m), contexts.get(m)))
             for m in self.modalities}
        z_joint = self.projection(self.joint_encoder(batch))
        return z, z_joint

    def fuse_present(self, z: Mapping[str, Tensor], present: Tensor) -> Tensor:
        """The present ``z_m`` of each sample combined by ``partial_fusion`` (GMC: their mean)."""
        z = {m: z[m] for m in self.modalities}
        return mean_of_present(z, present) if self.partial_fusion is None else self.partial_fusion(z, present)

    def predict_from_latents(self, z: Mapping[str, Tensor], z_joint: Tensor, present: Tensor) -> Tensor:
        """GMC's prediction rule from cached latents; ``present`` is ``[B, M]`` in model order."""
        all_present = present.all(dim=1, keepdim=True)
        latent = torch.where(all_present, z_joint, self.fuse_present(z, present))
        return self.apply_fallback(self.head(latent), present)

    # ------------------------------------------------------------------ forward
    def forward(self, batch: MultimodalBatch) -> ModelOutput:
        present = self.check_batch(batch)
        z, z_joint = self.encode(batch)
        prediction = self.predict_from_latents(z, z_joint, present)
        out = ModelOutput(prediction=prediction, z=z, z_joint=z_joint)
        if batch.targets is not None:
            self.add_losses(out, batch, present)
        return out

    def add_losses(self, out: ModelOutput, batch: MultimodalBatch, present: Tensor) -> None:
        """Fill ``out.loss`` / ``out.losses`` from ``out.prediction``, ``out.z``, ``out.z_joint``.

        The contrastive loss takes the other samples of the batch as negatives and the unimodal
        term averages over the samples that have each modality, so under a process group the rows
        of every rank are gathered first (with autograd, :func:`robustfusion.losses.gather.gather_rows`):
        every rank computes the loss of the global batch, as lightly's
        ``NTXentLoss(gather_distributed=True)`` does. In one process nothing is gathered."""
        sizes = row_counts(len(present), present.device)
        prediction, z_joint = gather_rows(out.prediction, sizes), gather_rows(out.z_joint, sizes)
        z = {m: gather_rows(v, sizes) for m, v in out.z.items()}
        targets, present = gather_rows(batch.targets, sizes), gather_rows(present, sizes)
        con = self.contrastive(z_joint, z, present)
        sup = supervised_loss(prediction, targets, self.task, self.regression_loss)
        out.losses = {"supervised": sup, "contrastive": con.total,
                      **{f"contrastive/{m}": t for m, t in con.terms.items()}}
        out.loss = self.supervised_weight * sup + self.contrastive_weight * con.total
        if self.unimodal_weight > 0:
            terms = []
            for i, m in enumerate(self.modalities):
                keep = present[:, i]
                if bool(keep.any()):
                    pred = self.head(z[m][keep])
                    terms.append(supervised_loss(pred, targets[keep], self.task, self.regression_loss))
            if terms:
                uni = torch.stack(terms).mean()
                out.losses["unimodal"] = uni
                out.loss = out.loss + self.unimodal_weight * uni
