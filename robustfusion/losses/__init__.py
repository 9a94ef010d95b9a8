"""Losses: each a pure function plus a thin ``nn.Module`` returning a dataclass of sub-terms."""

from robustfusion.losses.gmc_contrastive import (
    GMCContrastiveLoss,
    GMCLossOutput,
    gmc_contrastive_loss,
)
from robustfusion.losses.supervised import TASKS, check_targets, supervised_loss

__all__ = [
    "TASKS",
    "GMCContrastiveLoss",
    "GMCLossOutput",
    "check_targets",
    "gmc_contrastive_loss",
    "supervised_loss",
]
