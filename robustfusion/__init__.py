"""robustfusion: multimodal fusion layers that keep working when modalities go missing.

Layers: ``robustfusion.encoders``, ``robustfusion.fusion``, ``robustfusion.heads``,
``robustfusion.losses``; models: ``create_model(name, **cfg)`` over ``list_models()``;
data: ``load_dataset`` over ``list_datasets()``; evaluation: ``robustfusion.robustness`` (the
evaluator), ``robustfusion.results`` (rows, CSV, aggregation), ``robustfusion.baselines``
(per-subset specialists), ``robustfusion.metrics``, ``robustfusion.reporting``; runs:
``robustfusion.runner`` and the ``robustfusion`` command. Import layers: CONTRIBUTING.md.
"""

from robustfusion.batch import MultimodalBatch, replace_nonfinite
from robustfusion.data import MultimodalDataset, list_datasets, load_dataset
from robustfusion.losses import GMCContrastiveLoss, GMCLossOutput, gmc_contrastive_loss
from robustfusion.models import (
    GMC,
    GMCProgressive,
    LateFusion,
    ModelOutput,
    MultimodalModel,
    ProgressiveFusion,
    create_model,
    list_models,
    register_model,
)

try:  # one source of truth: pyproject.toml, through the installed package's metadata
    from importlib.metadata import PackageNotFoundError as _NotInstalled
    from importlib.metadata import version as _version

    __version__ = _version("robustfusion")
except _NotInstalled:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["GMC", "GMCContrastiveLoss", "GMCLossOutput", "GMCProgressive", "LateFusion", "ModelOutput",
           "MultimodalBatch", "MultimodalDataset", "MultimodalModel", "ProgressiveFusion", "__version__",
           "create_model", "gmc_contrastive_loss", "list_datasets", "list_models", "load_dataset",
           "register_model", "replace_nonfinite"]
