"""Builders every model uses for its per-modality encoders and its fusion layer.

One place decides how a model turns ``encoder="gru", hidden_dim=64, encoder_kwargs={...}`` (or
user-built modules) into one encoder per modality, and ``fusion="mean"`` (or a built module)
into a fusion layer, so every registered model accepts the same arguments the same way::

    encoders = build_modality_encoders({"text": 300, "audio": 74}, "gru", 64)
    fusion = build_fusion("mean", 64, num_modalities=2)
    h = {m: enc(batch.inputs[m], batch.frame_mask(m)) for m, enc in encoders.items()}
    fused = fusion(h, present)                                   # [B, fusion.out_dim]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from robustfusion.encoders.base import create_encoder
from robustfusion.fusion.base import create_fusion
from robustfusion.models.base import check_modality_names

__all__ = ["build_fusion", "build_modality_encoders", "per_modality"]


def per_modality(value: int | Mapping[str, int], modalities: Sequence[str], what: str) -> dict[str, int]:
    """``{name: int}`` for every modality from one int (the same for all) or a mapping.

    Raises:
        ValueError: the mapping lacks a size for some modality, or a size is < 1 (``what`` names
            the argument).
    """
    if isinstance(value, Mapping):
        missing = [m for m in modalities if m not in value]
        if missing:
            raise ValueError(f"{what}: expected a size for every modality {list(modalities)}, missing {missing}")
        sizes = {m: int(value[m]) for m in modalities}
    else:
        sizes = {m: int(value) for m in modalities}
    bad = {m: v for m, v in sizes.items() if v < 1}
    if bad:
        raise ValueError(f"{what}: expected sizes >= 1, found {bad if isinstance(value, Mapping) else value}")
    return sizes


def build_modality_encoders(modality_dims: Mapping[str, int], encoder: str, out_dim: int | Mapping[str, int],
                            encoder_kwargs: Mapping[str, object] | None = None,
                            encoders: Mapping[str, nn.Module] | None = None,
                            context_dim: int = 0, context_mode: str = "add") -> nn.ModuleDict:
    """One encoder per modality, in the order of ``modality_dims``: the given ``encoders``
    modules, or registry-built ones.

    Registry-built encoders are ``create_encoder(encoder, in_dim=D_m, out_dim=out_dim_m,
    context_dim=context_dim, context_mode=context_mode, **encoder_kwargs)`` (the context
    arguments are only passed when ``context_dim > 0``); ``out_dim`` is one int or
    ``{name: int}``. Given modules must cover exactly the modalities and, when
    ``context_dim > 0``, expose ``context_dim`` equal to it.

    Returns:
        ``nn.ModuleDict`` ``{name: encoder}``, each ``forward(x, mask=None, context=None) ->
        [B, out_dim_m]``.

    Raises:
        ValueError: modules for the wrong modality names, or with the wrong ``context_dim``.
    """
    check_modality_names(modality_dims)
    names = list(modality_dims)
    if encoders is not None:
        built = dict(encoders)
        if set(built) != set(names):
            raise ValueError(f"encoders: expected one module per modality {names}, found {list(built)}")
        built = {m: built[m] for m in names}
        if context_dim:
            wrong = {m: getattr(e, "context_dim", None) for m, e in built.items()
                     if getattr(e, "context_dim", None) != context_dim}
            if wrong:
                raise ValueError(f"encoders: expected context_dim={context_dim} (the fused size fed back), "
                                 f"found {wrong}; build them with create_encoder(..., context_dim={context_dim})")
        return nn.ModuleDict(built)
    sizes = per_modality(out_dim, names, "hidden_dim")
    kw = dict(encoder_kwargs or {})
    if context_dim:
        kw.update(context_dim=context_dim, context_mode=context_mode)
    return nn.ModuleDict({m: create_encoder(encoder, in_dim=d, out_dim=sizes[m], **kw)
                          for m, d in modality_dims.items()})


def build_fusion(fusion: str | nn.Module, dim: int | Sequence[int], num_modalities: int,
                 fusion_kwargs: Mapping[str, object] | None = None, what: str = "fusion") -> nn.Module:
    """A fusion module ``fusion(features {name: [B, H_m]}, present [B, M]) -> [B, out_dim]``.

    ``fusion`` itself when it is a module, else the registered fusion
    ``create_fusion(fusion, dim=dim, num_modalities=M, **fusion_kwargs)`` (``dim`` is the size
    ``H`` of every modality vector, or one ``H_m`` per modality for ``"tfn"`` / ``"lmf"``). The
    result must have an integer ``out_dim`` (the fused size). ``what`` names the argument in
    error messages.

    Raises:
        TypeError: ``fusion`` is neither a name nor a module, or the module has no ``out_dim``.
    """
    if isinstance(fusion, nn.Module):
        module = fusion
    elif isinstance(fusion, str):
        kw = {"num_modalities": num_modalities, **dict(fusion_kwargs or {})}
        module = create_fusion(fusion, dim=dim, **kw)
    else:
        raise TypeError(f"{what}: expected a registered fusion name or an nn.Module, found {type(fusion).__name__}")
    if not isinstance(getattr(module, "out_dim", None), int):
        raise TypeError(f"{what}: expected a module with an integer `out_dim`, found {type(module).__name__}")
    return module
