"""Modality base encoders ``forward(x, mask=None, context=None) -> [B, out_dim]`` and joint encoders."""

from robustfusion.encoders.base import ENCODERS, ModalityEncoder, create_encoder, list_encoders, register_encoder
from robustfusion.encoders.context import CONTEXT_MODES, ContextInjection
from robustfusion.encoders.gru import GRUEncoder
from robustfusion.encoders.joint import JOINT_ENCODERS, ConcatJointEncoder, create_joint_encoder, register_joint_encoder
from robustfusion.encoders.mlp import MLPEncoder
from robustfusion.encoders.pooling import masked_last, masked_mean
from robustfusion.encoders.transformer import TransformerEncoder

__all__ = [
    "ENCODERS", "ModalityEncoder", "create_encoder", "list_encoders", "register_encoder",
    "CONTEXT_MODES", "ContextInjection", "GRUEncoder", "MLPEncoder", "TransformerEncoder",
    "JOINT_ENCODERS", "ConcatJointEncoder", "create_joint_encoder", "register_joint_encoder",
    "masked_last", "masked_mean",
]

# Import every module of the package so that its @register_* decorators run: a new file here
# is registered without editing this file.
import importlib as _importlib
import pkgutil as _pkgutil

for _m in _pkgutil.iter_modules(__path__):
    _importlib.import_module(f"{__name__}.{_m.name}")
