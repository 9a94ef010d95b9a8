"""The optimizer, the learning-rate schedule and the selection comparison of the training loop."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from robustfusion.runner.config import TrainConfig

__all__ = ["build_optimizer", "build_scheduler", "is_better"]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``train.optimizer`` over the parameters that require gradients."""
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """``train.scheduler`` (``plateau`` is stepped on the validation loss; ``none``: a constant lr)."""
    if cfg.scheduler == "plateau":  # stepped on the validation loss (GMC's schedule)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", patience=cfg.plateau_patience,
                                                          factor=cfg.plateau_factor)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def is_better(value: float, best: float | None, higher: bool) -> bool:
    """``value`` improves on ``best`` (NaN never does)."""
    if math.isnan(value):
        return False
    return best is None or (value > best if higher else value < best)
