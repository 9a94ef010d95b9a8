"""One wrapper applies a run's calibrators to a model's predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.calibration.base import Calibrated, Calibrator
from robustfusion.dropping import all_subsets, keep_subset
from robustfusion.uncertainty import monotone_probabilities, repaired_rows

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

    @property
    def gives_uncertainty(self) -> bool:
        """Whether a calibrator adds intervals, probabilities or sets (leaving the prediction)."""
        return any(not c.changes_prediction for c in self.calibrators)

    @property
    def monotone_confidence(self) -> bool:
        """Whether a calibrator asks for the monotone repair of probabilities across sub-patterns."""
        return any(getattr(c, "monotone", False) and not c.changes_prediction and "classification" in c.tasks
                   for c in self.calibrators)

    def uncertainty(self, prediction: Tensor, present: Tensor) -> Calibrated:
        """The intervals / probabilities / sets of already calibrated point predictions ``[B, K]``
        (the calibrators that leave the prediction, in order), for ``[B, M]`` presence masks."""
        out = Calibrated(prediction)
        for cal in self.calibrators:
            if not cal.changes_prediction:
                out = cal.apply(out, present.to(prediction.device))
        return out

    @torch.no_grad()
    def calibrated(self, batch: MultimodalBatch, monotone: bool = False) -> Calibrated:
        """Every calibrated field of ``batch``'s predictions. With ``monotone`` (and a calibrator
        that asks for it) the probabilities are repaired so that no sample's top-class probability
        is below that of a subset of its modalities: the batch is also predicted under every
        sub-pattern (``2^M - 1`` passes; :func:`robustfusion.uncertainty.monotone_probabilities`)."""
        present = self.model.check_batch(batch)
        out = self._through(self.model.predict(batch), present)
        if not (monotone and self.monotone_confidence and out.probabilities is not None):
            return out
        probs = self._repaired(batch, present, out.probabilities)
        return out.with_fields(probabilities=probs, sets=self.sets(probs, present))

    def _repaired(self, batch: MultimodalBatch, present: Tensor, probs: Tensor) -> Tensor:
        """Each sample's probabilities repaired over the sub-patterns of its own pattern."""
        mods = self.modalities
        table = {}
        for subset in all_subsets(mods):
            b = keep_subset(batch, subset)
            table[subset] = self._through(self.model.predict(b), self.model.check_batch(b)).probabilities
        return repaired_rows(probs, monotone_probabilities(table), present, mods)

    def sets(self, probs: Tensor, present: Tensor) -> Tensor | None:
        """Prediction sets of (repaired) probabilities, from the last calibrator that makes sets."""
        makers = [c for c in self.calibrators if hasattr(c, "sets")]
        return makers[-1].sets(probs, present) if makers else None

    def predict(self, batch: MultimodalBatch) -> Tensor:
        """``[B, K]`` calibrated point predictions."""
        return self.calibrated(batch).prediction

    def encode(self, batch: MultimodalBatch):
        return self.model.encode(batch)

    def predict_from_latents(self, z: Mapping[str, Tensor], z_joint: Tensor, present: Tensor) -> Tensor:
        """The model's prediction from cached latents, calibrated for ``present``."""
        return self._through(self.model.predict_from_latents(z, z_joint, present), present).prediction
