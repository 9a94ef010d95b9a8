"""Mask-aware fusion layers: ``fusion(features: {name: [B, H]}, present: [B, M]) -> [B, H']``."""

from robustfusion.fusion.base import (
    FUSIONS,
    FusionLayer,
    create_fusion,
    list_fusions,
    register_fusion,
)
from robustfusion.fusion.concat import ConcatFusion
from robustfusion.fusion.mean import MeanOfPresent, mean_of_present

__all__ = [
    "FUSIONS",
    "ConcatFusion",
    "FusionLayer",
    "MeanOfPresent",
    "create_fusion",
    "list_fusions",
    "mean_of_present",
    "register_fusion",
]

# The built-ins this package registers, imported explicitly (a new module gets its line here)
from robustfusion.fusion import low_rank, tensor, weighted_mean  # noqa: F401
