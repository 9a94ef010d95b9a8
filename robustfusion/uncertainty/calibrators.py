"""Per-presence-pattern uncertainty calibrators, fitted on validation predictions.

Both follow Zaffran et al. (ICML 2023, arXiv 2306.02732): the validation set is evaluated once per
presence pattern (every modality outside the pattern masked), and each pattern gets its own
calibration from those predictions, so each pattern is covered at the nominal level, not only
the average over patterns.

* :class:`ConformalIntervals` (regression): ``[y_hat - q_P, y_hat + q_P]`` with ``q_P`` the
  split-conformal quantile of ``|y - y_hat|`` under pattern ``P``, per output column; with
  ``monotone`` (default) the quantiles are made non-increasing along the subset order
  (:func:`~robustfusion.uncertainty.conformal.monotone_quantiles`), so an interval never narrows
  when a modality is removed.
* :class:`TemperatureSets` (classification): one temperature per pattern (Guo et al., arXiv
  1706.04599), then LAC prediction sets with a per-pattern threshold; with ``monotone`` the
  probabilities of each sample are repaired so that the top-class probability never rises when
  a modality is removed (:func:`~robustfusion.uncertainty.monotone.monotone_probabilities`); the
  thresholds are fitted on the repaired probabilities.

A pattern is a tuple of modality names in the dataset's order; ``()`` is "nothing present" (the
model's fallback prediction). A pattern that was not fitted (e.g. ``()`` when the fit left it out)
gets the widest half-width / the highest temperature and threshold of the fitted ones (this
library's conservative choice). Both are plain data (:meth:`to_dict` / :meth:`from_dict`, JSON),
stored with a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from robustfusion.uncertainty.conformal import conformal_quantile, monotone_quantiles, prediction_sets, set_threshold
from robustfusion.uncertainty.monotone import monotone_probabilities
from robustfusion.uncertainty.temperature import fit_temperature

__all__ = ["ConformalIntervals", "TemperatureSets", "pattern_key", "patterns_of"]

Pattern = tuple[str, ...]


def pattern_key(pattern: Sequence[str]) -> str:
    """JSON key of a pattern: names joined by ``+``, ``""`` for nothing present."""
    return "+".join(pattern)


def patterns_of(present: Tensor, modalities: Sequence[str]) -> list[Pattern]:
    """The pattern of each row of a ``[N, M]`` presence mask."""
    p = torch.as_tensor(present).bool().cpu()
    if p.dim() != 2 or p.shape[1] != len(modalities):
        raise ValueError(f"present: expected [N, {len(modalities)}] for modalities {list(modalities)}, "
                         f"found shape {tuple(p.shape)}")
    return [tuple(m for m, on in zip(modalities, row) if on) for row in p.tolist()]


def _check_level(level: float) -> float:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: expected a coverage level in (0, 1), found {level}")
    return float(level)


@dataclass
class ConformalIntervals:
    """Split-conformal intervals per presence pattern (see the module docstring)."""

    modalities: tuple[str, ...]
    level: float
    half_width: dict[Pattern, list[float]]
    monotone: bool = True
    kind: str = field(default="conformal_intervals", init=False)

    @classmethod
    def fit(cls, preds: Mapping[Pattern, Tensor], targets: Tensor, modalities: Sequence[str], level: float = 0.9,
            monotone: bool = True) -> ConformalIntervals:
        """Fit from ``{pattern: [N, K] predictions}`` of the same ``N`` validation samples and
        their ``targets`` ``[N]`` / ``[N, K]``."""
        level = _check_level(level)
        if not preds:
            raise ValueError("preds: expected predictions under at least one pattern, found none")
        y = torch.as_tensor(targets, dtype=torch.float64)
        raw: dict[Pattern, list[float]] = {}
        for pat, p in preds.items():
            p = torch.as_tensor(p, dtype=torch.float64)
            p = p.unsqueeze(1) if p.dim() == 1 else p
            t = y.reshape(p.shape[0], -1) if y.numel() == p.numel() else None
            if t is None:
                raise ValueError(f"targets: expected {tuple(p.shape)} values as the predictions of pattern "
                                 f"{pattern_key(pat)!r}, found shape {tuple(y.shape)}")
            raw[tuple(pat)] = [conformal_quantile((t[:, k] - p[:, k]).abs(), level) for k in range(p.shape[1])]
        if monotone:
            cols = len(next(iter(raw.values())))
            per_col = [monotone_quantiles({pat: q[k] for pat, q in raw.items()}) for k in range(cols)]
            raw = {pat: [per_col[k][pat] for k in range(cols)] for pat in raw}
        return cls(tuple(modalities), level, raw, monotone)

    def widths(self, present: Tensor) -> Tensor:
        """``[N, K]`` half-widths for the samples of a ``[N, M]`` presence mask."""
        widest = [max(col) for col in zip(*self.half_width.values())]
        rows = [self.half_width.get(pat, widest) for pat in patterns_of(present, self.modalities)]
        return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), len(widest))

    def apply(self, preds: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """``(lo, hi)``, each ``[N, K]``, around the point predictions ``preds`` ``[N, K]``."""
        p = torch.as_tensor(preds, dtype=torch.float64)
        p = p.unsqueeze(1) if p.dim() == 1 else p
        w = self.widths(present)
        return p - w, p + w

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "modalities": list(self.modalities), "level": self.level, "monotone": self.monotone,
                "half_width": {pattern_key(p): q for p, q in self.half_width.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConformalIntervals:
        return cls(tuple(d["modalities"]), float(d["level"]),
                   {tuple(k.split("+")) if k else (): [float(x) for x in v] for k, v in d["half_width"].items()},
                   bool(d["monotone"]))


@dataclass
class TemperatureSets:
    """Per-pattern temperature scaling and LAC prediction sets (see the module docstring)."""

    modalities: tuple[str, ...]
    level: float
    temperature: dict[Pattern, float]
    threshold: dict[Pattern, float]
    monotone: bool = True
    kind: str = field(default="temperature_sets", init=False)

    @classmethod
    def fit(cls, logits: Mapping[Pattern, Tensor], labels: Tensor, modalities: Sequence[str], level: float = 0.9,
            monotone: bool = True) -> TemperatureSets:
        """Fit from ``{pattern: [N, C] logits}`` of the same ``N`` validation samples and ``labels`` ``[N]``."""
        level = _check_level(level)
        if not logits:
            raise ValueError("logits: expected logits under at least one pattern, found none")
        y = torch.as_tensor(labels).long().reshape(-1)
        temps = {tuple(p): fit_temperature(z, y) for p, z in logits.items()}
        probs = {tuple(p): torch.softmax(torch.as_tensor(z, dtype=torch.float64) / temps[tuple(p)], dim=1)
                 for p, z in logits.items()}
        if monotone:
            probs = monotone_probabilities(probs)
        thresholds = {p: set_threshold(q, y, level) for p, q in probs.items()}
        return cls(tuple(modalities), level, temps, thresholds, monotone)

    def _per_sample(self, table: dict[Pattern, float], present: Tensor) -> Tensor:
        top = max(table.values())
        return torch.tensor([table.get(p, top) for p in patterns_of(present, self.modalities)], dtype=torch.float64)

    def probabilities(self, logits: Tensor, present: Tensor) -> Tensor:
        """``[N, C]`` temperature-scaled probabilities (no monotone repair: that needs every
        sub-pattern of a sample, see :func:`~robustfusion.uncertainty.monotone.monotone_probabilities`)."""
        z = torch.as_tensor(logits, dtype=torch.float64)
        return torch.softmax(z / self._per_sample(self.temperature, present)[:, None], dim=1)

    def sets(self, probs: Tensor, present: Tensor) -> Tensor:
        """``[N, C]`` boolean prediction sets of (calibrated) ``probs`` under each sample's pattern."""
        q = self._per_sample(self.threshold, present)
        p = torch.as_tensor(probs, dtype=torch.float64)
        return prediction_sets(p, q)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "modalities": list(self.modalities), "level": self.level, "monotone": self.monotone,
                "temperature": {pattern_key(p): t for p, t in self.temperature.items()},
                "threshold": {pattern_key(p): t for p, t in self.threshold.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TemperatureSets:
        def table(x: Mapping[str, float]) -> dict[Pattern, float]:
            return {tuple(k.split("+")) if k else (): float(v) for k, v in x.items()}

        return cls(tuple(d["modalities"]), float(d["level"]), table(d["temperature"]), table(d["threshold"]),
                   bool(d["monotone"]))
