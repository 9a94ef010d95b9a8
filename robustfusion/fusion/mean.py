"""Mean over the present modalities' vectors (GMC's missing-modality rule)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from robustfusion.fusion.base import FusionLayer, check_fusion_inputs, register_fusion
from robustfusion.masking import zero_absent

__all__ = ["MeanOfPresent", "mean_of_present"]


def mean_of_present(features: Mapping[str, Tensor], present: Tensor) -> Tensor:
    """``sum_m present[b, m] * h_m[b] / max(1, sum_m present[b, m])``; zeros when none present."""
    check_fusion_inputs(features, present)
    h = torch.stack(list(features.values()), dim=1)  # [B, M, H]
    # a select, not a product: whatever an absent modality holds (even NaN/inf) never leaks
    total = zero_absent(h, present).sum(dim=1)
    return total / present.bool().sum(dim=1, keepdim=True).clamp_min(1).to(h.dtype)


@register_fusion("mean")
class MeanOfPresent(FusionLayer):
    """Parameter-free mean over present modalities (all absent -> zero vector)."""

    def __init__(self, dim: int, **_: object) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, features: Mapping[str, Tensor], present: Tensor) -> Tensor:
        return mean_of_present(features, present)
