"""One signature for every mask-aware fusion layer, and the fusion registry.

``fusion(features, present) -> [B, out_dim]`` where ``features`` is ``{name: [B, H]}`` (one
vector per modality, insertion order = modality order) and ``present`` is the ``[B, M]`` bool
presence mask in that order. A fusion layer must give the same output for a sample whatever is
stored in the features of its absent modalities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from robustfusion.registry import Registry

__all__ = ["FUSIONS", "FusionLayer", "check_fusion_inputs", "create_fusion", "list_fusions", "modality_dims",
           "register_fusion"]

FUSIONS: Registry[nn.Module] = Registry("fusion layer")
register_fusion = FUSIONS.register


def create_fusion(name: str, **kwargs) -> nn.Module:
    return FUSIONS.create(name, **kwargs)


def list_fusions() -> list[str]:
    return FUSIONS.names()


def modality_dims(dim: int | Sequence[int], num_modalities: int | None, layer: str) -> tuple[int, ...]:
    """One width per modality: ``dim`` repeated ``num_modalities`` times, or the sequence ``dim``
    itself (``layer`` names the fusion layer in the error)."""
    if isinstance(dim, int):
        if not num_modalities:
            raise ValueError(f"{layer}: expected num_modalities when dim is an int, found None")
        return (dim,) * num_modalities
    return tuple(int(d) for d in dim)


def check_fusion_inputs(features: Mapping[str, Tensor], present: Tensor) -> None:
    if present.dim() != 2 or present.shape[1] != len(features):
        raise ValueError(
            f"fusion: expected present of shape [B, {len(features)}] for modalities {list(features)}, "
            f"found {tuple(present.shape)}"
        )
    for name, h in features.items():
        if h.dim() < 2 or h.shape[0] != present.shape[0]:
            raise ValueError(f"fusion: expected features of {name!r} of shape [B={present.shape[0]}, H], "
                             f"found {tuple(h.shape)}")


class FusionLayer(nn.Module):
    """Base class of mask-aware fusion layers (``out_dim`` is the fused size)."""

    out_dim: int

    def forward(self, features: Mapping[str, Tensor], present: Tensor) -> Tensor:
        raise NotImplementedError
