"""Crossmodal (MulT-style) joint encoder, registered as ``"crossmodal"``.

GMC (Poklukar et al., arXiv 2202.03390) uses, in its CMU-MOSI/MOSEI experiments, a joint
encoder built from MulT's crossmodal transformers (Tsai et al., arXiv 1906.00295) so that
``h_joint`` models cross-modal interactions. Use it with
``create_model("gmc", ..., joint_encoder="crossmodal", joint_kwargs={...})``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.encoders.crossmodal import MulTEncoder
from robustfusion.encoders.joint import register_joint_encoder

__all__ = ["CrossmodalJointEncoder"]


@register_joint_encoder("crossmodal")
class CrossmodalJointEncoder(nn.Module):
    """``joint(batch) -> [B, out_dim]``: :class:`~robustfusion.encoders.crossmodal.MulTEncoder`,
    optionally a residual block, then a Linear to ``out_dim``.

    Args:
        modality_dims: ``{name: D}`` (order = modality order).
        out_dim: size of ``h_joint``.
        encoder: accepted for interface compatibility with ``"concat"`` (GMC passes its base
            encoder name) and ignored: this joint encoder has its own Conv1d projections.
        d_model, num_heads, num_layers, dropout, attn_dropout, memory_attn_dropout,
            embed_dropout, input_dropout, causal, pooling, conv_kernel: see ``MulTEncoder``
            (defaults 32, 4, 1, 0.1, 0.0, None, 0.0, None, False, ``"last"``, 1).
        residual_projection: GMC's ``AffectJointProcessor``: ``h + W2 relu(W1 h)`` (two Linears
            of the MulT width) before the Linear to ``out_dim``. Default False.

    GMC's joint encoder for CMU-MOSI/MOSEI (``gmc_networks.py::AffectJointProcessor``) is
    ``d_model=30, num_heads=5, num_layers=5, dropout=0.1, attn_dropout={"text": 0.1},
    memory_attn_dropout=0.1, embed_dropout=0.25, input_dropout={"text": 0.25}, causal=True,
    residual_projection=True`` with ``out_dim=60`` (the ``mosi_mult``/``mosei_mult`` presets).

    Missing modalities: zero-filled (MulTEncoder's rule); the output never depends on values
    stored in absent modalities and is finite for every presence pattern.
    """

    def __init__(self, modality_dims: Mapping[str, int], out_dim: int, encoder: str | None = None,
                 d_model: int = 32, num_heads: int = 4, num_layers: int = 1, dropout: float = 0.1,
                 attn_dropout: float | Mapping[str, float] = 0.0, memory_attn_dropout: float | None = None,
                 embed_dropout: float = 0.0, input_dropout: Mapping[str, float] | None = None,
                 causal: bool = False, pooling: str = "last", conv_kernel: int = 1,
                 residual_projection: bool = False) -> None:
        super().__init__()
        del encoder
        self.out_dim = out_dim
        self.crossmodal = MulTEncoder(modality_dims, d_model=d_model, num_heads=num_heads, num_layers=num_layers,
                                      dropout=dropout, attn_dropout=attn_dropout,
                                      memory_attn_dropout=memory_attn_dropout, embed_dropout=embed_dropout,
                                      input_dropout=input_dropout, causal=causal, pooling=pooling,
                                      conv_kernel=conv_kernel)
        width = self.crossmodal.out_dim
        self.residual = nn.ModuleList([nn.Linear(width, width), nn.Linear(width, width)]) if residual_projection else None
        self.proj = nn.Linear(width, out_dim)

    def forward(self, batch: MultimodalBatch) -> Tensor:
        mods = self.crossmodal.modalities
        present = batch.present[:, [batch.index(m) for m in mods]]
        h = self.crossmodal(batch.inputs, present, {m: batch.frame_mask(m) for m in mods})
        if self.residual is not None:
            h = h + self.residual[1](F.relu(self.residual[0](h)))
        return self.proj(h)
