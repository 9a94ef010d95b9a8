"""One wrapper applies a run's calibrators to a model's predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.calibration.base import Calibrated, Calibrator

__all__ = ["CalibratedModel"]


class CalibratedModel(nn.Module):
    """A trained model whose predictions pass through ``calibrators``, in order.

    It is a predictor as the evaluator knows it: ``predict(batch) -> [B, K]``, and, when the
    model supports latent reuse, ``encode`` / ``predict_from_latents``; :meth:`calibrated` returns
    the full :class:`~robustfusion.calibration.Calibrated` output (intervals, probabilities, sets
    where a calibrator gives them). Each calibrator sees the presence mask of the model's
    :meth:`check_batch` (a modality whose frames are all unobserved counts as absent).

    Args:
        model: a :class:`robustfusion.models.MultimodalModel` (anything with ``predict`` and
            ``check_batch``).
        calibrators: fitted calibrators.
    """

    def __init__(self, model: nn.Module, calibrators: Sequence[Calibrator]) -> None:
        super().__init__()
        self.model = model
        self.calibrators = nn.ModuleList(calibrators)

    @property
    def supports_latent_reuse(self) -> bool:
        """The wrapped model's flag (calibrators read predictions only)."""
        return bool(getattr(self.model, "supports_latent_reuse", False))

    @property
    def registry_name(self) -> str:
        return getattr(self.model, "registry_name", type(self.model).__name__)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.model.modalities)

    @property
    def task(self) -> str:
        return self.model.task

    def check_batch(self, batch: MultimodalBatch) -> Tensor:
        return self.model.check_batch(batch)

    def _through(self, prediction: Tensor, present: Tensor) -> Calibrated:
        out = Calibrated(prediction)
        for cal in self.calibrators:
            out = cal.apply(out, present)
        return out

    @torch.no_grad()
    def calibrated(self, batch: MultimodalBatch) -> Calibrated:
        """Every calibrated field of ``batch``'s predictions."""
        return self._through(self.model.predict(batch), self.model.check_batch(batch))

    def predict(self, batch: MultimodalBatch) -> Tensor:
        """``[B, K]`` calibrated point predictions."""
        return self.calibrated(batch).prediction

    def encode(self, batch: MultimodalBatch):
        return self.model.encode(batch)

    def predict_from_latents(self, z: Mapping[str, Tensor], z_joint: Tensor, present: Tensor) -> Tensor:
        """The model's prediction from cached latents, calibrated for ``present``."""
        return self._through(self.model.predict_from_latents(z, z_joint, present), present).prediction
