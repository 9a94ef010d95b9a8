"""Model registry: ``@register_model("gmc")``, ``create_model(name, **cfg)``, ``list_models()``."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from robustfusion.registry import Registry

__all__ = ["MODELS", "UnknownKeywordError", "create_model", "list_models", "model_keywords", "register_model"]

MODELS: Registry[nn.Module] = Registry("model")
register_model = MODELS.register


class UnknownKeywordError(TypeError, ValueError):
    """A keyword that the model named in :func:`create_model` does not take (a ``TypeError``, as
    Python raises for an unexpected keyword, and a ``ValueError``, as every bad input here)."""


#: The arguments every model takes, filled by the runner from the data.
COMMON_KEYWORDS = ("modality_dims", "task", "num_outputs")


def _keywords(name: str) -> tuple[list[str], bool]:
    """``(keywords, open)``: ``open`` when the chain ends in ``**kwargs`` that go nowhere known."""
    builder = MODELS.get(name)
    if getattr(builder, "forwards_keywords", False):  # a wrapper: its **kwargs are another model's (checked there)
        return [p for p in inspect.signature(builder).parameters if p not in ("self", "member_params")], True
    inits = [c.__init__ for c in builder.__mro__ if "__init__" in vars(c) and c is not nn.Module] \
        if inspect.isclass(builder) else [builder]
    names: list[str] = []
    for init in inits:
        params = list(inspect.signature(init).parameters.values())
        names += [p.name for p in params if p.name not in names and p.name != "self"
                  and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names, False
    return names, True


def model_keywords(name: str) -> list[str]:
    """The keywords ``create_model(name, ...)`` accepts, in signature order: the builder's own
    and, where its ``__init__`` forwards ``**kwargs`` to a parent class (``gmc_pf`` -> ``GMC``),
    the parent's, up the class hierarchy until an ``__init__`` without ``**kwargs``."""
    return _keywords(name)[0]


def create_model(name: str, **cfg: Any) -> nn.Module:
    """Build the model registered as ``name`` (see :func:`list_models`).

    Args:
        name: a registered model name: ``gmc``, ``gmc_pf``, ``late_fusion``, ``early_fusion``,
            ``tfn``, ``lmf``, ``mult``, ``progressive`` (``robustfusion list`` prints them).
        **cfg: the model's constructor arguments. Every model takes
            ``modality_dims`` (``{name: D}``, required: the feature size of each modality),
            ``task`` (``"regression"``, default, ``"classification"`` or ``"multilabel"``) and
            ``num_outputs`` (``K``, default 1); the rest are the model's own (its class
            docstring, or :func:`model_keywords`).

    Returns:
        the model, with ``registry_name`` / ``init_config`` recording how it was built, so a run
        directory can rebuild it (weights then come from ``model.safetensors``).

    All-missing rule: a sample with no modality present gets the model's ``fallback`` buffer,
    zeros until set. The runner (``robustfusion train``, :func:`robustfusion.runner.train_run`)
    sets it to the training-set target mean (regression) or log class frequencies
    (classification); a model built here and trained by your own loop keeps zeros until you call
    ``model.set_fallback(robustfusion.models.base.target_fallback(task, train_targets, K))``.

    Raises:
        UnknownKeywordError: a keyword the model does not take; the message names the model and
            lists its valid keywords.
        ValueError: an unknown model name, or a size below 1.
    """
    keywords, open_ended = _keywords(name)
    unknown = [] if open_ended else sorted(k for k in cfg if k not in keywords)
    if unknown:
        raise UnknownKeywordError(f"create_model({name!r}): unexpected keyword argument(s) {unknown}; "
                                  f"valid keywords: {keywords}")
    check_sizes(cfg, name)
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


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return MODELS.names()
