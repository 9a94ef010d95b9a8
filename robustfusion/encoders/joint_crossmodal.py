"""Crossmodal (MulT-style) joint encoder, registered as ``"crossmodal"``.

GMC (Poklukar et al., arXiv 2202.03390) uses, in its CMU-MOSI/MOSEI experiments, a joint
encoder built from MulT's crossmodal transformers (Tsai et al., arXiv 1906.00295) so that
``h_joint`` models cross-modal interactions. Use it with
``create_model("gmc", ..., joint_encoder="crossmodal", joint_kwargs={...})``.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.encoders.crossmodal import MulTEncoder
from robustfusion.encoders.joint import register_joint_encoder

__all__ = ["CrossmodalJointEncoder"]


@register_joint_encoder("crossmodal")
class CrossmodalJointEncoder(nn.Module):
    """``joint(batch) -> [B, out_dim]``: :class:`~robustfusion.encoders.crossmodal.MulTEncoder`
    followed by a Linear to ``out_dim``.

    Args:
        modality_dims: ``{name: D}`` (order = modality order).
        out_dim: size of ``h_joint``.
        encoder: accepted for interface compatibility with ``"concat"`` (GMC passes its base
            encoder name) and ignored: this joint encoder has its own Conv1d projections.
        d_model, num_heads, num_layers, dropout, attn_dropout, embed_dropout, pooling,
            conv_kernel: see ``MulTEncoder`` (defaults 32, 4, 1, 0.1, 0.0, 0.0, ``"last"``, 1).

    Missing modalities: zero-filled (MulTEncoder's rule); the output never depends on values
    stored in absent modalities and is finite for every presence pattern.
    """

    def __init__(self, modality_dims: Mapping[str, int], out_dim: int, encoder: str | None = None,
                 d_model: int = 32, num_heads: int = 4, num_layers: int = 1, dropout: float = 0.1,
                 attn_dropout: float = 0.0, embed_dropout: float = 0.0, pooling: str = "last",
                 conv_kernel: int = 1) -> None:
        super().__init__()
        del encoder
        self.out_dim = out_dim
        self.crossmodal = MulTEncoder(modality_dims, d_model=d_model, num_heads=num_heads, num_layers=num_layers,
                                      dropout=dropout, attn_dropout=attn_dropout, embed_dropout=embed_dropout,
                                      pooling=pooling, conv_kernel=conv_kernel)
        self.proj = nn.Linear(self.crossmodal.out_dim, out_dim)

    def forward(self, batch: MultimodalBatch) -> Tensor:
        mods = self.crossmodal.modalities
        present = batch.present[:, [batch.index(m) for m in mods]]
        h = self.crossmodal(batch.inputs, present, {m: batch.frame_mask(m) for m in mods})
        return self.proj(h)
