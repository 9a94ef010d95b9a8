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
from robustfusion.masking import zero_fill_concat
from robustfusion.registry import Registry

__all__ = ["JOINT_ENCODERS", "ConcatJointEncoder", "ConcatMLP", "create_joint_encoder", "register_joint_encoder"]

JOINT_ENCODERS: Registry[nn.Module] = Registry("joint encoder")
register_joint_encoder = JOINT_ENCODERS.register


def create_joint_encoder(name: str, **kwargs) -> nn.Module:
    return JOINT_ENCODERS.create(name, **kwargs)


class ConcatMLP(nn.Module):
    """``MLP([present_1 * h_1; ...; present_M * h_M; present])``: ``{name: [B, dim]}, [B, M] ->
    [B, out_dim]``, Linear-GELU-Dropout-Linear of width ``2 * dim``.

    The same layer (and parameter names, ``net.0`` / ``net.3``) as the ``"concat"`` fusion layer
    :class:`robustfusion.fusion.ConcatFusion` with ``append_mask=True``; written here so that the
    encoders do not import the fusion package (they are the same layer). Absent modalities are
    zero-filled by selection (:func:`robustfusion.masking.zero_fill_concat`).
    """

    def __init__(self, dim: int, num_modalities: int, out_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Linear(dim * num_modalities + num_modalities, 2 * dim), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(2 * dim, out_dim))

    def forward(self, features: Mapping[str, Tensor], present: Tensor) -> Tensor:
        return self.net(zero_fill_concat(features, present, append_mask=True))


@register_joint_encoder("concat")
class ConcatJointEncoder(nn.Module):
    """Per-modality encoders of its own, then :class:`ConcatMLP` (zero-fill + MLP):
    ``joint(batch) -> [B, out_dim]``.

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
        self.fusion = ConcatMLP(hidden, len(modality_dims), out_dim=out_dim, dropout=dropout)

    def forward(self, batch: MultimodalBatch) -> Tensor:
        feats = {m: enc(batch.inputs[m], batch.frame_mask(m)) for m, enc in self.encoders.items()}
        present = batch.present[:, [batch.index(m) for m in self.encoders]]
        return self.fusion(feats, present)
