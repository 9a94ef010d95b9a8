"""Model registry: ``@register_model("gmc")``, ``create_model(name, **cfg)``, ``list_models()``."""

from __future__ import annotations

from typing import Any

from torch import nn

from robustfusion.registry import Registry

__all__ = ["MODELS", "UnknownModelArgumentError", "check_arguments", "create_model", "list_models", "register_model"]

MODELS: Registry[nn.Module] = Registry("model")
register_model = MODELS.register


def create_model(name: str, **cfg: Any) -> nn.Module:
    """Build a registered model; ``model.registry_name`` / ``model.init_config`` record how,
    so a run directory can rebuild it (weights then come from ``model.safetensors``)."""
    check_sizes(cfg, name)
    check_arguments(name, cfg)
    model = MODELS.create(name, **cfg)
    model.registry_name = name
    model.init_config = dict(cfg)
    return model


#: Size arguments of the registered models; each must be >= 1 (``projection_hidden``: >= 0).
SIZE_ARGUMENTS = ("num_outputs", "hidden_dim", "latent_dim", "fusion_dim", "post_fusion_dim", "rank", "d_model",
                  "num_heads", "num_layers", "conv_kernel")


def check_sizes(cfg: dict[str, Any], name: str = "model") -> None:
    """Refuse zero or negative sizes (a zero-width layer trains silently into a constant)."""
    dims = cfg.get("modality_dims") or {}
    bad = {m: d for m, d in dict(dims).items() if not isinstance(d, bool) and isinstance(d, int) and d < 1}
    if bad:
        raise ValueError(f"{name}: modality_dims: expected feature sizes >= 1, found {bad}")
    for key, value in cfg.items():
        low = 0 if key == "projection_hidden" else 1
        if key not in SIZE_ARGUMENTS and key != "projection_hidden":
            continue
        values = value.values() if isinstance(value, dict) else [value]
        if any(isinstance(v, int) and not isinstance(v, bool) and v < low for v in values):
            raise ValueError(f"{name}: {key}: expected a size >= {low}, found {value!r}")


class UnknownModelArgumentError(ValueError, TypeError):
    """``create_model`` got an argument the model's constructor does not take (a ``ValueError``
    for the command line, a ``TypeError`` for callers that catch the constructor's own)."""


def check_arguments(name: str, cfg: dict[str, Any]) -> None:
    """Refuse arguments the registered model ``name`` does not take, listing the valid ones (and the
    closest names: ``hiden_dim`` -> ``hidden_dim``)."""
    import difflib
    import inspect

    builder = MODELS.get(name)
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):  # a builder without an inspectable signature
        return
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    valid = [p for p in params if p != "self"]
    unknown = [k for k in cfg if k not in valid]
    if unknown:
        close = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
        hint = "; ".join(f"{k!r}: did you mean {c[0]!r}?" for k, c in close.items() if c)
        raise UnknownModelArgumentError(f"model {name!r}: unknown argument(s) {unknown}; valid: {sorted(valid)}"
                                        f"{'; ' + hint if hint else ''}")


def list_models() -> list[str]:
    return MODELS.names()
