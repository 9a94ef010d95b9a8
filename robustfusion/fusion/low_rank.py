"""Low-rank multimodal fusion (LMF).

Liu et al., "Efficient Low-rank Multimodal Fusion with Modality-Specific Factors", ACL 2018,
arXiv 1806.00064: the TFN weight tensor is decomposed into ``r`` modality-specific factors,
"h = (sum_{i=1}^r (x)_{m=1}^M w_m^(i)) . Z = Lambda_{m=1}^M [sum_{i=1}^r w_m^(i) . z_m]"
(Lambda = element-wise product over modalities), with ``z_m = [h_m; 1]``. Never builds the
outer-product tensor, so the cost is linear in ``M``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from robustfusion.fusion.base import (
    FusionLayer,
    check_fusion_inputs,
    modality_dims,
    register_fusion,
)
from robustfusion.fusion.tensor import append_one
from robustfusion.masking import zero_absent

__all__ = ["LowRankFusion"]


@register_fusion("lmf")
class LowRankFusion(FusionLayer):
    """``{name: [B, D_m]}, [B, M] -> [B, out_dim]`` with rank-``r`` modality factors.

    Args:
        dim: ``D`` shared by every modality, or one ``D_m`` per modality.
        num_modalities: ``M`` (required when ``dim`` is an int).
        out_dim: fused size (default 32).
        rank: ``r`` (default 4, as in LMF's experiments on CMU-MOSI).

    Parameters: ``factors[m]`` ``[r, D_m + 1, out_dim]`` (Xavier-normal), ``rank_weights``
    ``[1, r]`` and ``bias`` ``[out_dim]`` (LMF's reference code adds these two).

    Missing-modality rule: zero-fill ``h_m`` of absent modalities, i.e. ``z_m = [0; 1]``, so an
    absent modality contributes only its factor's bias row -- exactly what TFN's outer product
    with a zero-filled modality reduces to. The output never depends on the values stored for
    absent modalities.
    """

    def __init__(self, dim: int | Sequence[int], num_modalities: int | None = None, out_dim: int = 32,
                 rank: int = 4, **_: object) -> None:
        super().__init__()
        dims = modality_dims(dim, num_modalities, "LowRankFusion")
        if rank < 1:
            raise ValueError(f"LowRankFusion: expected rank >= 1, found {rank}")
        self.dims, self.out_dim, self.rank = tuple(dims), int(out_dim), int(rank)
        self.factors = nn.ParameterList([nn.Parameter(torch.empty(rank, d + 1, out_dim)) for d in dims])
        self.rank_weights = nn.Parameter(torch.empty(1, rank))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        for f in self.factors:
            nn.init.xavier_normal_(f)
        nn.init.xavier_normal_(self.rank_weights)

    def forward(self, features: Mapping[str, Tensor], present: Tensor) -> Tensor:
        check_fusion_inputs(features, present)
        found = tuple(h.shape[-1] for h in features.values())
        if found != self.dims:
            raise ValueError(f"LowRankFusion: expected feature sizes {list(self.dims)}, found {list(found)}")
        prod: Tensor | None = None
        for i, (h, w) in enumerate(zip(features.values(), self.factors)):
            z = append_one(zero_absent(h, present[:, i]))
            f = torch.einsum("bd,rdo->rbo", z, w)  # [r, B, out]
            prod = f if prod is None else prod * f
        assert prod is not None
        return torch.einsum("xr,rbo->bo", self.rank_weights, prod) + self.bias
