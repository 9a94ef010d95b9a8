"""TFN: Tensor Fusion Network (Zadeh et al., EMNLP 2017, arXiv 1707.07250)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from robustfusion.models.builders import build_fusion, build_modality_encoders, per_modality
from robustfusion.models.fused_readout import FusedReadoutModel
from robustfusion.models.registry import register_model

__all__ = ["TFN"]


@register_model("tfn")
class TFN(FusedReadoutModel):
    """Modality embedding subnetworks, tensor fusion of ``[h_m; 1]``, post-fusion MLP.

    TFN (arXiv 1707.07250): "z^m = [z^l; 1] (x) [z^v; 1] (x) [z^a; 1]", a 3-fold Cartesian
    product that holds the unimodal, bimodal and trimodal interactions; the sentiment inference
    subnetwork is a fully connected network on ``vec(z^m)``. Here for any number ``M >= 1`` of
    modalities (:class:`~robustfusion.fusion.tensor.TensorFusion`), with the library's encoders as
    embedding subnetworks (TFN used an LSTM for language and pooled DNNs for audio/visual).

    Missing-modality rule (common practice): the absent modality's embedding ``h_m`` is
    zero-filled through the presence mask, so ``[0; 1]`` keeps exactly the interactions among
    the present modalities; the output never depends on the values stored in absent modalities.
    A sample with no modality present gets ``fallback``.

    Args:
        modality_dims, task, num_outputs: see :class:`MultimodalModel`.
        encoder: registered encoder for every modality (default ``"gru"``).
        hidden_dim: embedding size ``D_m``, an int or ``{name: int}`` (default 16; the fused
            tensor has ``prod (D_m + 1)`` entries, 4913 for three modalities).
        post_fusion_dim: width of the two hidden layers of the inference subnetwork (default 64).
        dropout: dropout on the fused tensor (default 0.1).
        encoder_kwargs: extra encoder arguments.
        regression_loss: ``"l1"`` (default) or ``"mse"``.
    """

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1,
                 encoder: str = "gru", hidden_dim: int | Mapping[str, int] = 16, post_fusion_dim: int = 64,
                 dropout: float = 0.1, encoder_kwargs: Mapping[str, object] | None = None,
                 regression_loss: str = "l1") -> None:
        super().__init__(modality_dims, task, num_outputs)
        hidden = per_modality(hidden_dim, self.modalities, "hidden_dim")
        self.encoders = build_modality_encoders(self.modality_dims, encoder, hidden, encoder_kwargs)
        self.fusion = build_fusion("tfn", [hidden[m] for m in self.modalities], len(self.modalities))
        self.post_fusion = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.fusion.out_dim, post_fusion_dim), nn.ReLU(),
            nn.Linear(post_fusion_dim, post_fusion_dim), nn.ReLU(), nn.Linear(post_fusion_dim, num_outputs))
        self.regression_loss = regression_loss

    def readout(self) -> nn.Module:
        return self.post_fusion
