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

# Import every module of the package so that its @register_* decorators run: a new file here
# is registered without editing this file.
import importlib as _importlib
import pkgutil as _pkgutil

for _m in _pkgutil.iter_modules(__path__):
    _importlib.import_module(f"{__name__}.{_m.name}")
