"""Mask-aware fusion layers: ``fusion(features: {name: [B, H]}, present: [B, M]) -> [B, H']``."""

from robustfusion.fusion.base import FUSIONS, FusionLayer, create_fusion, list_fusions, register_fusion
from robustfusion.fusion.concat import ConcatFusion
from robustfusion.fusion.mean import MeanOfPresent, mean_of_present

__all__ = ["FUSIONS", "FusionLayer", "create_fusion", "list_fusions", "register_fusion",
           "ConcatFusion", "MeanOfPresent", "mean_of_present"]
