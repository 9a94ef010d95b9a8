"""Concatenation of zero-filled modality vectors followed by an MLP."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from robustfusion.fusion.base import FusionLayer, check_fusion_inputs, register_fusion
from robustfusion.masking import zero_fill_concat

__all__ = ["ConcatFusion"]


@register_fusion("concat")
class ConcatFusion(FusionLayer):
    """``MLP([present_1 * h_1; ...; present_M * h_M])``: absent modalities are zero-filled
    (:func:`robustfusion.masking.zero_fill_concat`). ``{name: [B, dim]}, [B, M] -> [B, out_dim]``.

    Args:
        dim: size ``H`` of each modality vector.
        num_modalities: ``M``.
        out_dim: fused size (default ``dim``).
        hidden_dim: MLP width (default ``2 * dim``); ``dropout`` after the hidden layer.
        append_mask: also feed the presence mask itself (default ``True``), so the MLP can tell
            "absent" from "present with a zero vector".
    """

    def __init__(self, dim: int, num_modalities: int, out_dim: int | None = None,
                 hidden_dim: int | None = None, dropout: float = 0.1, append_mask: bool = True) -> None:
        super().__init__()
        self.out_dim = out_dim or dim
        self.append_mask = append_mask
        d_in = dim * num_modalities + (num_modalities if append_mask else 0)
        hidden = hidden_dim or 2 * dim
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, self.out_dim))

    def forward(self, features: Mapping[str, Tensor], present: Tensor) -> Tensor:
        check_fusion_inputs(features, present)
        # zero-fill by selection, so whatever an absent modality holds (even NaN/inf) never leaks
        return self.net(zero_fill_concat(features, present, self.append_mask))
