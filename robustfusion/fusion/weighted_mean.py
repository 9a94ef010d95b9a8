"""Learned weighted mean over the present modalities' vectors."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from robustfusion.fusion.base import FusionLayer, check_fusion_inputs, register_fusion
from robustfusion.masking import zero_absent

__all__ = ["WeightedMeanOfPresent"]


@register_fusion("weighted_mean")
class WeightedMeanOfPresent(FusionLayer):
    """``sum_m w_m h_m`` with ``w = softmax(a)`` taken over the *present* modalities only.

    One learned logit ``a_m`` per modality, initialised to 0, so an untrained layer is exactly
    :func:`robustfusion.fusion.mean_of_present` (GMC's missing-modality rule). Training can then
    give a weak modality less say when it is observed together with a strong one, which an
    equal-weight mean cannot: with ``a_text >> a_vision`` the text+vision vector stays close
    to the text vector. A single present modality always gets weight 1; no modality present
    gives the zero vector.

    Args:
        dim: size ``H`` of each modality vector (the output has the same size).
        num_modalities: ``M``.
    """

    def __init__(self, dim: int, num_modalities: int, **_: object) -> None:
        super().__init__()
        self.out_dim = dim
        self.logits = nn.Parameter(torch.zeros(num_modalities))

    def weights(self, present: Tensor) -> Tensor:
        """``[B, M]`` fusion weights (rows sum to 1 where anything is present, 0 elsewhere)."""
        e = torch.exp(self.logits - self.logits.max()).unsqueeze(0) * present.to(self.logits.dtype)
        return e / e.sum(dim=1, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)

    def forward(self, features: Mapping[str, Tensor], present: Tensor) -> Tensor:
        check_fusion_inputs(features, present)
        h = torch.stack(list(features.values()), dim=1)  # [B, M, H]
        w = self.weights(present).to(h.dtype).unsqueeze(-1)
        # a select, not a product: whatever an absent modality holds (even NaN/inf) never leaks
        h = zero_absent(h, present)
        return (w * h).sum(dim=1)
