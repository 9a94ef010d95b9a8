"""Per-pattern temperature scaling and conformal prediction sets (``temperature_sets``).

Temperature scaling (Guo et al., ICML 2017, arXiv 1706.04599): "a single scalar parameter T > 0
for all classes ... optimized with respect to NLL on the validation set", here one per presence
pattern, each on the validation set predicted with that pattern's modalities (as Zaffran et al.,
arXiv 2306.02732, calibrate per pattern). Then LAC prediction sets (Sadinle et al., JASA 2019,
arXiv 1609.00451), ``{c : 1 - p_c <= q}``, ``q`` the split-conformal quantile of ``1 - p_y`` per
pattern, so each pattern's sets cover at the nominal level.

With ``monotone`` (default) the thresholds are fitted on probabilities repaired so that no
sample's top-class probability rises when a modality is removed
(:func:`~robustfusion.uncertainty.monotone_probabilities`; CML, arXiv 2306.01265). The repair of a
sample needs its predictions under every sub-pattern: :meth:`CalibratedModel.calibrated` with
``monotone=True`` computes them; the evaluator repairs from its subsets table. ``apply`` alone
gives the temperature-scaled probabilities and their sets. A pattern that was not fitted gets
temperature 1 and the largest fitted threshold.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from robustfusion.calibration.base import (
    Calibrated,
    CoverageCalibrator,
    presence_codes,
    register_calibrator,
)
from robustfusion.calibration.patterns import by_code
from robustfusion.uncertainty import (
    fit_temperature,
    monotone_probabilities,
    prediction_sets,
    set_threshold,
)

__all__ = ["TemperatureSets"]


@register_calibrator("temperature_sets")
class TemperatureSets(CoverageCalibrator):
    """Per-pattern temperatures and set thresholds (module docstring). Buffers ``temperature``
    and ``threshold``, ``[2^M]`` each.

    Args:
        num_modalities, num_outputs: ``M``, ``K`` (classes).
        level: nominal coverage of the sets, in (0, 1).
        monotone: fit the thresholds on monotone-repaired probabilities, and ask for the repair.
    """

    tasks = ("classification",)
    def __init__(self, num_modalities: int, num_outputs: int, level: float = 0.9, monotone: bool = True) -> None:
        super().__init__(num_modalities, num_outputs, level, monotone)
        self.register_buffer("temperature", torch.ones(2 ** num_modalities))
        self.register_buffer("threshold", torch.full((2 ** num_modalities,), float("inf")))

    def probabilities(self, logits: Tensor, present: Tensor) -> Tensor:
        """``[B, K]`` temperature-scaled probabilities (float64)."""
        t = self.temperature[presence_codes(present)].to(torch.float64)
        return torch.softmax(logits.to(torch.float64) / t[:, None], dim=1)

    def sets(self, probs: Tensor, present: Tensor) -> Tensor:
        """``[B, K]`` boolean LAC sets of ``probs`` under each sample's pattern (never empty)."""
        return prediction_sets(probs, self.threshold[presence_codes(present)].to(torch.float64))

    def apply(self, output: Calibrated, present: Tensor) -> Calibrated:
        probs = self.probabilities(output.prediction, present)
        return output.with_fields(probabilities=probs, sets=self.sets(probs, present))

    @torch.no_grad()
    def fit(self, predictions: Tensor, targets: Tensor, present: Tensor, *, task: str = "classification",
            latents: Tensor | None = None) -> dict[int, dict[str, Any]]:
        """A temperature per pattern (NLL on its rows), then the set threshold on its rows'
        (repaired) probabilities. With ``monotone``, the repair pairs the rows of the patterns by
        position, as :func:`~robustfusion.calibration.fit_on_subsets` stacks them (every pattern
        predicts the same samples in the same order). Returns ``{code: {"n", "temperature",
        "threshold"}}``."""
        self.check_task(task)
        y = targets.reshape(-1).long()
        groups = {c: rows for c, rows in by_code(presence_codes(present.cpu())).items() if c != 0}
        if not groups:
            raise ValueError("temperature_sets: expected predictions under at least one non-empty pattern, found none")
        self.temperature.fill_(1.0)
        for code, rows in groups.items():
            self.temperature[code] = fit_temperature(predictions[rows], y[rows])
        probs = {code: self.probabilities(predictions[rows], present[rows]) for code, rows in groups.items()}
        if self.monotone and len({len(r) for r in groups.values()}) == 1:
            pattern = {code: tuple(i for i in range(self.num_modalities) if code >> i & 1) for code in groups}
            repaired = monotone_probabilities({pattern[c]: p for c, p in probs.items()})
            probs = {c: repaired[pattern[c]] for c in probs}
        thresholds = {code: set_threshold(probs[code], y[rows], self.level) for code, rows in groups.items()}
        self.threshold.fill_(max(thresholds.values()))
        for code, q in thresholds.items():
            self.threshold[code] = q
        return {c: {"n": len(rows), "temperature": float(self.temperature[c]), "threshold": thresholds[c]}
                for c, rows in groups.items()}
