"""robustfusion: multimodal fusion layers that keep working when modalities go missing."""

from robustfusion.batch import MultimodalBatch, replace_nonfinite
from robustfusion.models import GMC, ModelOutput, create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = ["GMC", "ModelOutput", "MultimodalBatch", "create_model", "list_models", "register_model",
           "replace_nonfinite", "__version__"]
