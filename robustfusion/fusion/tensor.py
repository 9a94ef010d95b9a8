"""Tensor fusion: the outer product of ``[h_m; 1]`` over modalities (TFN).

Zadeh et al., "Tensor Fusion Network for Multimodal Sentiment Analysis", EMNLP 2017,
arXiv 1707.07250: "z^m = [z^l; 1] (x) [z^v; 1] (x) [z^a; 1]" -- the appended 1 keeps the
unimodal and bimodal interactions inside the trimodal tensor. Written here for any number
``M >= 1`` of modalities by folding the outer product one modality at a time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from einops import rearrange
from torch import Tensor

from robustfusion.fusion.base import (
    FusionLayer,
    check_fusion_inputs,
    modality_dims,
    register_fusion,
)
from robustfusion.masking import zero_absent

__all__ = ["TensorFusion", "append_one", "tensor_fusion"]


def append_one(h: Tensor) -> Tensor:
    """``[B, D] -> [B, D + 1]``: ``[h; 1]``."""
    return torch.cat([h, h.new_ones(h.shape[0], 1)], dim=-1)


def tensor_fusion(features: Mapping[str, Tensor], present: Tensor) -> Tensor:
    """``vec([h_1; 1] (x) ... (x) [h_M; 1])`` with absent modalities' ``h_m`` zero-filled.

    Args:
        features: ``{name: [B, D_m]}`` in modality order.
        present: ``[B, M]`` bool.

    Returns:
        ``[B, prod_m (D_m + 1)]``. For a sample whose modality ``m`` is absent, ``[0; 1]``
        reduces the tensor to the interactions among the present modalities (every other entry
        is 0), so the output never depends on the values stored for absent modalities.
    """
    check_fusion_inputs(features, present)
    z: Tensor | None = None
    for i, h in enumerate(features.values()):
        h = append_one(zero_absent(h, present[:, i]))
        z = h if z is None else rearrange(torch.einsum("bi,bj->bij", z, h), "b i j -> b (i j)")
    assert z is not None
    return z


@register_fusion("tfn")
class TensorFusion(FusionLayer):
    """Parameter-free TFN fusion layer ``{name: [B, D_m]}, [B, M] -> [B, prod_m (D_m + 1)]``.

    Args:
        dim: ``D`` shared by every modality, or one ``D_m`` per modality (a sequence).
        num_modalities: ``M`` (required when ``dim`` is an int).
        max_size: refuse to build a tensor larger than this many entries per sample
            (the size grows exponentially with ``M``; default ``2**20``).

    Missing-modality rule: zero-fill ``h_m`` (see :func:`tensor_fusion`).
    """

    def __init__(self, dim: int | Sequence[int], num_modalities: int | None = None,
                 max_size: int = 2**20, **_: object) -> None:
        super().__init__()
        dims = modality_dims(dim, num_modalities, "TensorFusion")
        self.dims = tuple(dims)
        self.out_dim = math.prod(d + 1 for d in dims)
        if self.out_dim > max_size:
            raise ValueError(f"TensorFusion: the fused tensor would have {self.out_dim} entries per sample "
                             f"(dims {list(dims)}), above max_size={max_size}; use smaller modality "
                             "vectors or low-rank fusion ('lmf')")

    def forward(self, features: Mapping[str, Tensor], present: Tensor) -> Tensor:
        found = tuple(h.shape[-1] for h in features.values())
        if found != self.dims:
            raise ValueError(f"TensorFusion: expected feature sizes {list(self.dims)}, found {list(found)}")
        return tensor_fusion(features, present)
