"""Modality base encoders ``forward(x, mask=None, context=None) -> [B, out_dim]`` and joint encoders."""

from robustfusion.encoders.base import (
    ENCODERS,
    ModalityEncoder,
    create_encoder,
    list_encoders,
    register_encoder,
)
from robustfusion.encoders.context import CONTEXT_MODES, ContextInjection
from robustfusion.encoders.gru import GRUEncoder
from robustfusion.encoders.joint import (
    JOINT_ENCODERS,
    ConcatJointEncoder,
    create_joint_encoder,
    register_joint_encoder,
)
from robustfusion.encoders.mlp import MLPEncoder
from robustfusion.encoders.stacked_transformer import StackedTransformer
from robustfusion.encoders.transformer import TransformerEncoder
from robustfusion.masking import masked_last, masked_mean

__all__ = [
    "CONTEXT_MODES",
    "ENCODERS",
    "JOINT_ENCODERS",
    "ConcatJointEncoder",
    "ContextInjection",
    "GRUEncoder",
    "MLPEncoder",
    "ModalityEncoder",
    "StackedTransformer",
    "TransformerEncoder",
    "create_encoder",
    "create_joint_encoder",
    "list_encoders",
    "masked_last",
    "masked_mean",
    "register_encoder",
    "register_joint_encoder",
]

# The built-ins this package registers, imported explicitly (a new module gets its line here)
from robustfusion.encoders import crossmodal, dropout, frames, joint_crossmodal, text  # noqa: F401
