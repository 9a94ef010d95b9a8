"""The optional TensorBoard extra: a ``SummaryWriter`` for ``train.tensorboard=true``, or a clear
error naming the extra to install."""

from __future__ import annotations

from pathlib import Path

__all__ = ["TENSORBOARD_HINT", "tensorboard_writer"]

TENSORBOARD_HINT = 'pip install "robustfusion[tensorboard]"'


def tensorboard_writer(log_dir: str | Path | None = None):
    """A ``torch.utils.tensorboard.SummaryWriter`` writing into ``log_dir``; ``log_dir=None`` only
    checks that the ``tensorboard`` package is installed. A missing package is a ``ValueError``
    naming the optional extra to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError(f"train.tensorboard=true needs the tensorboard package, which is not installed; "
                         f"{TENSORBOARD_HINT}") from None
    return None if log_dir is None else SummaryWriter(log_dir=str(log_dir))
