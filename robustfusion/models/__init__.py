"""Registered models. ``create_model(name, **cfg)`` builds one; ``list_models()`` names them."""

from robustfusion.models.back_connection import BackConnection, unroll_progressive
from robustfusion.models.base import MultimodalModel
from robustfusion.models.builders import build_fusion, build_modality_encoders
from robustfusion.models.early_fusion import EarlyFusion
from robustfusion.models.ensemble import SeedEnsemble
from robustfusion.models.gmc import GMC
from robustfusion.models.gmc_pf import GMCProgressive
from robustfusion.models.late_fusion import LateFusion
from robustfusion.models.lmf import LMF
from robustfusion.models.mult import MulT
from robustfusion.models.output import ModelOutput
from robustfusion.models.progressive import ProgressiveFusion
from robustfusion.models.registry import MODELS, create_model, list_models, register_model
from robustfusion.models.tfn import TFN

__all__ = ["GMC", "LMF", "MODELS", "TFN", "BackConnection", "EarlyFusion", "GMCProgressive", "LateFusion",
           "ModelOutput", "MulT", "MultimodalModel", "ProgressiveFusion", "SeedEnsemble", "build_fusion", "build_modality_encoders",
           "create_model", "list_models", "register_model", "unroll_progressive"]
