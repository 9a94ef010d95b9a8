"""Model registry: ``@register_model("gmc")``, ``create_model(name, **cfg)``, ``list_models()``."""

from __future__ import annotations

from typing import Any

from torch import nn

from robustfusion.registry import Registry

__all__ = ["MODELS", "create_model", "list_models", "register_model"]

MODELS: Registry[nn.Module] = Registry("model")
register_model = MODELS.register


def create_model(name: str, **cfg: Any) -> nn.Module:
    """Build a registered model; ``model.registry_name`` / ``model.init_config`` record how,
    so a run directory can rebuild it (weights then come from ``model.safetensors``)."""
    model = MODELS.create(name, **cfg)
    model.registry_name = name
    model.init_config = dict(cfg)
    return model


def list_models() -> list[str]:
    return MODELS.names()
