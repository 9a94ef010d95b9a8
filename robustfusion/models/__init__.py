"""Registered models. ``create_model(name, **cfg)`` builds one; ``list_models()`` names them."""

from robustfusion.models.base import MultimodalModel
from robustfusion.models.gmc import GMC
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import MODELS, create_model, list_models, register_model

__all__ = ["GMC", "MODELS", "ModelOutput", "MultimodalModel", "create_model", "list_models", "register_model"]
