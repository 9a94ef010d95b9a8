"""Registered models. ``create_model(name, **cfg)`` builds one; ``list_models()`` names them."""

from robustfusion.models.base import MultimodalModel
from robustfusion.models.gmc import GMC
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import MODELS, create_model, list_models, register_model

__all__ = ["GMC", "MODELS", "ModelOutput", "MultimodalModel", "create_model", "list_models", "register_model"]

# Import every module of the package so that its @register_* decorators run: a new file here
# is registered without editing this file.
import importlib as _importlib
import pkgutil as _pkgutil

for _m in _pkgutil.iter_modules(__path__):
    _importlib.import_module(f"{__name__}.{_m.name}")
