"""Plain late fusion: per-modality encoders, a mask-aware fusion of their outputs, a head.

This is the model that Progressive Fusion (Shankar, Thompson, Fiterau, arXiv 2209.00302)
starts from: "late fusion" encodes every modality separately and combines the unimodal
representations only at the end. :class:`robustfusion.models.progressive.ProgressiveFusion`
with ``steps=1`` is numerically this model.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.heads import PredictionHead
from robustfusion.losses.supervised import supervised_loss
from robustfusion.models.base import MultimodalModel
from robustfusion.models.builders import build_fusion, build_modality_encoders
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import register_model

__all__ = ["LateFusion"]


@register_model("late_fusion")
class LateFusion(MultimodalModel):
    """``prediction = head(fusion({f_m(x_m)}, present))``.

    Shapes: every ``f_m`` maps ``[B, D_m]`` / ``[B, T, D_m]`` to ``[B, hidden_dim]``; the
    fusion maps ``{name: [B, hidden_dim]}`` and ``present [B, M]`` to ``[B, H']``; the head
    gives ``[B, num_outputs]``.

    Missing-modality rule: absent modalities are excluded from the fusion (the default
    ``"mean"`` is :func:`robustfusion.fusion.mean_of_present`, the mean over the *present*
    modalities' representations), so a sample's prediction never depends on what is stored in
    its absent modalities' tensors; a sample with no modality present gets ``fallback``
    (see :class:`MultimodalModel`).

    Args:
        modality_dims: ``{name: D}``.
        task, num_outputs: see :class:`MultimodalModel`.
        encoder: registered encoder name for every ``f_m`` (default ``"gru"``).
        hidden_dim: size of each modality representation (default 64).
        encoder_kwargs: extra arguments for every registry-built encoder.
        fusion: registered fusion name (default ``"mean"``) or a built fusion module.
        fusion_kwargs: extra arguments for a registry-built fusion.
        head_dropout: dropout inside the prediction head (default 0.0).
        regression_loss: ``"l1"`` (default, as GMC on MOSI/MOSEI) or ``"mse"``.
        encoders: optional ``{name: module}`` of built encoders (e.g. the encoders of a
            :class:`ProgressiveFusion`, to compare both with the same weights).
        head: optional built head module ``[B, H'] -> [B, num_outputs]``.
    """

    supports_latent_reuse = False

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1,
                 encoder: str = "gru", hidden_dim: int = 64,
                 encoder_kwargs: Mapping[str, object] | None = None,
                 fusion: str | nn.Module = "mean", fusion_kwargs: Mapping[str, object] | None = None,
                 head_dropout: float = 0.0, regression_loss: str = "l1",
                 encoders: Mapping[str, nn.Module] | None = None, head: nn.Module | None = None) -> None:
        super().__init__(modality_dims, task, num_outputs)
        self.encoders = build_modality_encoders(self.modality_dims, encoder, hidden_dim, encoder_kwargs, encoders)
        self.fusion = build_fusion(fusion, hidden_dim, len(self.modalities), fusion_kwargs)
        self.head = head if head is not None else PredictionHead(self.fusion.out_dim, num_outputs, head_dropout)
        self.regression_loss = regression_loss

    def fuse(self, batch: MultimodalBatch, present: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """``({name: h_m [B, H]}, fused [B, H'])``; the fused vector of a sample with no modality
        present is zero."""
        h = {m: enc(batch.inputs[m], batch.frame_mask(m)) for m, enc in self.encoders.items()}
        fused = self.fusion(h, present)
        fused = fused * present.any(dim=1, keepdim=True).to(fused.dtype)
        return h, fused

    def forward(self, batch: MultimodalBatch) -> ModelOutput:
        present = self.check_batch(batch)
        h, fused = self.fuse(batch, present)
        prediction = self.apply_fallback(self.head(fused), present)
        out = ModelOutput(prediction=prediction, extras={"features": h, "fused": fused})
        if batch.targets is not None:
            out.losses = {"supervised": supervised_loss(prediction, batch.targets, self.task, self.regression_loss)}
            out.loss = out.losses["supervised"]
        return out
