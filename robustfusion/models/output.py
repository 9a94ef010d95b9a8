"""The output object every model's ``forward`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

__all__ = ["ModelOutput"]


@dataclass
class ModelOutput:
    """What ``model(batch)`` returns.

    Attributes:
        prediction: ``[B, K]`` (``K = 1`` for sentiment regression; logits for classification).
        loss: total training loss (``None`` when the batch has no targets).
        losses: named scalar sub-terms (e.g. ``"supervised"``, ``"contrastive"``,
            ``"contrastive/text"``), detached-free so callers can log them.
        z: ``{name: [B, D]}`` latent vector of each modality (models with a latent space).
        z_joint: ``[B, D]`` joint latent vector (GMC-style models).
        extras: anything model-specific (e.g. per-step predictions of progressive fusion).
    """

    prediction: Tensor
    loss: Tensor | None = None
    losses: dict[str, Tensor] = field(default_factory=dict)
    z: dict[str, Tensor] | None = None
    z_joint: Tensor | None = None
    extras: dict[str, object] = field(default_factory=dict)
