"""Raw-frame encoder: a timm image backbone applied to every observed frame, then masked
temporal pooling. Registered as ``"timm_frames"``.

Never downloads: the backbone is always built with ``pretrained=False`` (random weights) and
weights come only from a local ``checkpoint_path`` (``.safetensors`` via safetensors, anything
else via ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
from torch import Tensor, nn

from robustfusion.encoders.base import ModalityEncoder, register_encoder
from robustfusion.encoders.context import ContextInjection
from robustfusion.masking import masked_last, masked_mean

__all__ = ["TimmFrameEncoder", "create_timm_backbone", "load_backbone_checkpoint"]

_WRAPPER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")


def create_timm_backbone(model_name: str, in_chans: int = 3, num_classes: int = 0, **timm_kwargs) -> nn.Module:
    """``timm.create_model(model_name, pretrained=False, num_classes=..., in_chans=...)``.

    Raises:
        ValueError: ``model_name`` is not a timm model (with the closest names), or the
            arguments ask for pretrained weights (which would need a download).
    """
    try:
        import timm
    except ImportError:
        raise ValueError("the timm_frames encoder needs timm, a dependency of robustfusion that does not import "
                         "here: pip install timm, with the torchvision of your torch installed first") from None

    if timm_kwargs.pop("pretrained", False):
        raise ValueError(f"timm backbone {model_name!r}: pretrained=True would need a download and robustfusion "
                         "never downloads; pass checkpoint_path=<local .safetensors/.pth file> instead")
    for key in ("pretrained_cfg_overlay", "checkpoint_path"):
        if timm_kwargs.get(key):
            raise ValueError(f"timm backbone: {key!r} is not supported here; pass checkpoint_path to the encoder")
    base = model_name.split(".")[0]
    if not timm.is_model(base):
        close = difflib.get_close_matches(base, timm.list_models(), n=5)
        hint = f"; closest timm names: {close}" if close else ""
        raise ValueError(f"unknown timm model {model_name!r}: expected a name from timm.list_models(){hint}")
    return timm.create_model(model_name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **timm_kwargs)


def load_backbone_checkpoint(model: nn.Module, checkpoint_path: str | Path) -> list[str]:
    """Load a local checkpoint into ``model``; returns the checkpoint keys that were dropped
    because they belong to the classifier that ``num_classes=0`` removed.

    Accepts a plain state dict or one wrapped under ``state_dict`` / ``model`` /
    ``state_dict_ema`` / ``model_ema``; a ``module.`` prefix (DataParallel) is stripped.

    Raises:
        FileNotFoundError: no file at ``checkpoint_path``.
        ValueError: the file cannot be read as a state dict, or its keys / shapes do not match
            the backbone (the message lists the first missing and unexpected keys).
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint_path: expected a checkpoint file, found nothing at {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or not a checkpoint
        raise ValueError(f"checkpoint {path}: could not be read as a safetensors file or a torch state dict "
                         f"({type(e).__name__}: {e})") from e
    if isinstance(state, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {path}: expected a state dict of tensors, found {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    cfg = getattr(model, "pretrained_cfg", None) or {}
    classifier = cfg.get("classifier") or ()
    prefixes = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    dropped = [k for k in state if k not in own and prefixes and k.startswith(prefixes)]
    for k in dropped:
        del state[k]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(f"checkpoint {path} does not match the backbone: {len(missing)} missing keys "
                         f"{missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path} does not match the backbone: {e}") from e
    return dropped


@register_encoder("timm_frames")
class TimmFrameEncoder(ModalityEncoder):
    """``[B, T, C, H, W] -> [B, out_dim]``: a timm backbone per observed frame, masked pooling.

    Args:
        in_dim: image channels ``C`` (default 3; passed to timm as ``in_chans``).
        out_dim: size of the output; ``None`` = the backbone's feature size (no projection),
            otherwise a Linear from the feature size to ``out_dim``.
        context_dim, context_mode: optional context port (progressive fusion). The context is
            injected into the pooled frame feature, i.e. after the backbone: injecting it into
            a pretrained CNN's first layers is left out (this library's choice).
        model_name: any ``timm.list_models()`` name (default ``"resnet18"``).
        checkpoint_path: optional local weights (see :func:`load_backbone_checkpoint`);
            otherwise random weights. Never a download.
        num_classes: ``0`` (default) = pooled pre-logits features (``model.num_features``);
            ``> 0`` = the backbone's logits are the frame features.
        features_only: use the backbone's last feature map (``forward_intermediates``),
            globally average-pooled over space, instead of its own head pooling. Checkpoints
            keep their original key names (timm's ``FeatureListNet`` wrapper is not used).
        pooling: temporal pooling over observed frames, ``"mean"`` (default) or ``"last"``.
        freeze: no gradients into the backbone and keep it in eval mode (BatchNorm statistics
            frozen) even when the encoder is in training mode.
        chunk_size: run the backbone on at most this many frames at a time (memory).
        timm_kwargs: extra ``timm.create_model`` arguments (e.g. ``img_size``, ``drop_rate``).

    Frame masks: only observed frames go through the backbone, so the output never depends on
    what unobserved frames contain; a sequence with no observed frame pools to zeros. A
    ``[B, C, H, W]`` input is one frame per sample. In training mode BatchNorm backbones need
    more than one observed frame per batch.

    Raises:
        ValueError: unknown model name, ``pretrained=True``, an input that is not
            ``[B, T, C, H, W]`` / ``[B, C, H, W]`` with ``C = in_dim``, a mask of the wrong shape.
    """

    def __init__(self, in_dim: int = 3, out_dim: int | None = None, context_dim: int = 0,
                 model_name: str = "resnet18", checkpoint_path: str | Path | None = None, num_classes: int = 0,
                 features_only: bool = False, pooling: str = "mean", freeze: bool = False,
                 chunk_size: int | None = None, context_mode: str = "add", **timm_kwargs) -> None:
        if pooling not in ("mean", "last"):
            raise ValueError(f"TimmFrameEncoder pooling: expected 'mean' or 'last', found {pooling!r}")
        if timm_kwargs.get("features_only"):
            timm_kwargs.pop("features_only")
            features_only = True
        backbone = create_timm_backbone(model_name, in_chans=in_dim, num_classes=num_classes, **timm_kwargs)
        if checkpoint_path is not None:
            load_backbone_checkpoint(backbone, checkpoint_path)
        if features_only:
            if not hasattr(backbone, "forward_intermediates"):
                raise ValueError(f"timm model {model_name!r} has no forward_intermediates; features_only is not supported")
            info = getattr(backbone, "feature_info", None)
            feat_dim = int(info[-1]["num_chs"]) if info else int(backbone.num_features)
        else:
            feat_dim = int(num_classes) if num_classes else int(backbone.num_features)
        super().__init__(in_dim, out_dim or feat_dim, context_dim)
        self.model_name, self.features_only, self.pooling = model_name, features_only, pooling
        self.freeze, self.chunk_size, self.feature_dim = freeze, chunk_size, feat_dim
        self.backbone = backbone
        if freeze:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        self.inject = ContextInjection(feat_dim, context_dim, context_mode)
        self.proj = nn.Linear(self.inject.out_dim, out_dim) if out_dim else nn.Identity()

    def train(self, mode: bool = True) -> TimmFrameEncoder:
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def encode_frames(self, frames: Tensor) -> Tensor:
        """``[N, C, H, W] -> [N, feature_dim]`` (in chunks of ``chunk_size``)."""
        step = self.chunk_size or max(frames.shape[0], 1)
        outs = []
        for i in range(0, frames.shape[0], step):
            f = frames[i : i + step]
            if self.features_only:
                fmap = self.backbone.forward_intermediates(f, indices=1, intermediates_only=True)[-1]
                outs.append(fmap.mean(dim=(-2, -1)))
            else:
                outs.append(self.backbone(f))
        return torch.cat(outs) if outs else frames.new_zeros(0, self.feature_dim)

    def forward(self, x: Tensor, mask: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        if x.dim() == 4:
            x = x.unsqueeze(1)
        if x.dim() != 5 or x.shape[2] != self.in_dim:
            raise ValueError(f"TimmFrameEncoder: expected frames [B, T, {self.in_dim}, H, W] or "
                             f"[B, {self.in_dim}, H, W], found {tuple(x.shape)}")
        b, t = x.shape[:2]
        if mask is None:
            mask = torch.ones(b, t, dtype=torch.bool, device=x.device)
        elif mask.shape != (b, t):
            raise ValueError(f"TimmFrameEncoder: expected a frame mask of shape {(b, t)}, found {tuple(mask.shape)}")
        flat_mask = mask.reshape(-1).bool()
        idx = flat_mask.nonzero().squeeze(1)
        observed = self.encode_frames(x.reshape(b * t, *x.shape[2:])[idx])
        feats = observed.new_zeros(b * t, observed.shape[-1]).index_copy(0, idx, observed).view(b, t, -1)
        pooled = masked_mean(feats, mask) if self.pooling == "mean" else masked_last(feats, mask)
        return self.proj(self.inject(pooled, context))
