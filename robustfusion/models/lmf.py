"""LMF: Low-rank Multimodal Fusion (Liu et al., ACL 2018, arXiv 1806.00064)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from robustfusion.models.builders import build_fusion, build_modality_encoders, per_modality
from robustfusion.models.fused_readout import FusedReadoutModel
from robustfusion.models.registry import register_model

__all__ = ["LMF"]


@register_model("lmf")
class LMF(FusedReadoutModel):
    """Modality subnetworks, low-rank fusion with modality-specific factors, Linear head.

    LMF (arXiv 1806.00064): "we decompose the weight tensor into low-rank factors ...
    h = Lambda_{m=1}^M [sum_{i=1}^r w_m^(i) . z_m]", with ``z_m = [h_m; 1]`` as in TFN, so the
    cost is linear in the number of modalities
    (:class:`~robustfusion.fusion.low_rank.LowRankFusion`). Any number ``M >= 1`` of modalities.

    Missing-modality rule (common practice, as for TFN): the absent modality's ``h_m`` is
    zero-filled through the presence mask (``z_m = [0; 1]``); the output never depends on the
    values stored in absent modalities. A sample with no modality present gets ``fallback``.

    Args:
        modality_dims, task, num_outputs: see :class:`MultimodalModel`.
        encoder: registered encoder for every modality (default ``"gru"``).
        hidden_dim: ``D_m``, an int or ``{name: int}`` (default 32).
        fusion_dim: output size of the fusion (default 32).
        rank: ``r`` (default 4).
        dropout: dropout on the fused vector before the head (default 0.1).
        encoder_kwargs: extra encoder arguments.
        regression_loss: ``"l1"`` (default) or ``"mse"``.
    """

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1,
                 encoder: str = "gru", hidden_dim: int | Mapping[str, int] = 32, fusion_dim: int = 32,
                 rank: int = 4, dropout: float = 0.1, encoder_kwargs: Mapping[str, object] | None = None,
                 regression_loss: str = "l1") -> None:
        super().__init__(modality_dims, task, num_outputs)
        hidden = per_modality(hidden_dim, self.modalities, "hidden_dim")
        self.encoders = build_modality_encoders(self.modality_dims, encoder, hidden, encoder_kwargs)
        self.fusion = build_fusion("lmf", [hidden[m] for m in self.modalities], len(self.modalities),
                                   {"out_dim": fusion_dim, "rank": rank})
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(fusion_dim, num_outputs))
        self.regression_loss = regression_loss

    def readout(self) -> nn.Module:
        return self.head
