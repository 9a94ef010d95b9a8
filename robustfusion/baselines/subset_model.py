"""`ModelSpecialist`: a trained model on one subset's modalities (built and trained by the
runner: :func:`robustfusion.runner.baselines.train_subset_model`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from robustfusion.batch import MultimodalBatch
from robustfusion.models.base import MultimodalModel

__all__ = ["ModelSpecialist"]


@dataclass
class ModelSpecialist:
    """A trained model on ``modalities`` only; ``predict(batch)`` reads only those.

    Attributes:
        best_epoch, best_score: the selected epoch (0-based) and its validation primary metric;
        history: that metric after every epoch.
    """

    modalities: tuple[str, ...]
    model: MultimodalModel
    best_epoch: int
    best_score: float
    history: list[float] = field(default_factory=list)

    def predict(self, batch: MultimodalBatch) -> Tensor:
        own = batch.select_modalities(self.model.modalities)  # models refuse modalities they do not know
        return self.model.predict(own.to(self.model.fallback.device)).cpu()
