"""Joint encoders: all present modalities together -> the joint intermediate vector ``h_joint``.

Signature: ``joint(batch: MultimodalBatch) -> [B, out_dim]``. GMC's ``f_joint`` sees every
modality at once; its output is only used where all modalities are present (GMC's prediction
rule), but it must still not produce NaN elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.encoders.base import create_encoder
from robustfusion.fusion.concat import ConcatFusion
from robustfusion.registry import Registry

__all__ = ["JOINT_ENCODERS", "ConcatJointEncoder", "create_joint_encoder", "register_joint_encoder"]

JOINT_ENCODERS: Registry[nn.Module] = Registry("joint encoder")
register_joint_encoder = JOINT_ENCODERS.register


def create_joint_encoder(name: str, **kwargs) -> nn.Module:
    return JOINT_ENCODERS.create(name, **kwargs)


@register_joint_encoder("concat")
class ConcatJointEncoder(nn.Module):
    """Per-modality encoders of its own, then :class:`ConcatFusion` (zero-fill + MLP).

    Args:
        modality_dims: ``{name: D}`` feature size of each modality (order = modality order).
        out_dim: size of ``h_joint``.
        encoder: registered encoder name for the per-modality pooling (default ``"gru"``).
        hidden_dim: size of each per-modality feature (default ``out_dim``).
        encoder_kwargs: extra arguments for the per-modality encoders.
    """

    def __init__(self, modality_dims: Mapping[str, int], out_dim: int, encoder: str = "gru",
                 hidden_dim: int | None = None, dropout: float = 0.1,
                 encoder_kwargs: Mapping[str, object] | None = None) -> None:
        super().__init__()
        hidden = hidden_dim or out_dim
        self.out_dim = out_dim
        self.encoders = nn.ModuleDict({
            m: create_encoder(encoder, in_dim=d, out_dim=hidden, **dict(encoder_kwargs or {}))
            for m, d in modality_dims.items()
        })
        self.fusion = ConcatFusion(hidden, len(modality_dims), out_dim=out_dim, dropout=dropout)

    def forward(self, batch: MultimodalBatch) -> Tensor:
        feats = {m: enc(batch.inputs[m], batch.frame_mask(m)) for m, enc in self.encoders.items()}
        present = batch.present[:, [batch.index(m) for m in self.encoders]]
        return self.fusion(feats, present)
