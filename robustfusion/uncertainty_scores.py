"""The evaluator's uncertainty rows: how good a run's intervals, probabilities and sets are under
every dropping condition, and whether confidence ever rises when a modality is removed.

Given a calibrator from :mod:`robustfusion.uncertainty.calibrators` (stored with a run), the
evaluator (:func:`robustfusion.robustness.evaluate`) passes its per-condition predictions, the
presence mask each sample was predicted with, and the targets to :func:`uncertainty_metrics`:

* regression (:class:`~robustfusion.uncertainty.ConformalIntervals`): ``PI_coverage`` and
  ``PI_width`` (mean over output columns of ``hi - lo``);
* classification (:class:`~robustfusion.uncertainty.TemperatureSets`): ``ECE`` (15 equal-width
  bins), ``NLL`` and ``Brier`` of the calibrated probabilities (``NLL`` replaces the raw logits'
  NLL of :func:`~robustfusion.metrics.classification_metrics`: it is the number of the
  probabilities the run reports), ``Set_coverage`` and ``Set_size``.
* ``VRR`` (one row per model under ``subsets``, ``subset="all"``): the share of (sample, S, T),
  T a proper subset of S, where the confidence given T is above that given S (regression: minus
  the mean interval width; classification: the top-class probability), CML's criterion.

With a monotone :class:`~robustfusion.uncertainty.TemperatureSets`, each sample's probabilities are
repaired over its sub-patterns (:func:`~robustfusion.uncertainty.monotone_probabilities`) from the
``subsets`` predictions of the same samples: for the ``subsets`` conditions, and for a sweep
condition whose dropping changes only the presence mask (``presence_only``), where a sample's
prediction equals its ``subsets`` prediction for the same pattern. A frame-dropping condition is
scored without the repair (its predictions are not those of any subset).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from robustfusion.dropping import all_subsets
from robustfusion.uncertainty import (
    ConformalIntervals,
    TemperatureSets,
    interval_scores,
    monotone_probabilities,
    patterns_of,
    probability_scores,
    set_scores,
    violation_rate,
)

__all__ = ["load_calibrator", "uncertainty_metrics"]

Condition = tuple[str, Any, str]
Pattern = tuple[str, ...]
CALIBRATORS = {"conformal_intervals": ConformalIntervals, "temperature_sets": TemperatureSets}


def load_calibrator(state: Mapping[str, Any]) -> ConformalIntervals | TemperatureSets:
    """A calibrator back from its :meth:`to_dict` state (``kind`` names its class)."""
    kind = state.get("kind")
    if kind not in CALIBRATORS:
        raise ValueError(f"calibrator: expected kind in {sorted(CALIBRATORS)}, found {kind!r}")
    return CALIBRATORS[kind].from_dict(state)


def _subset_table(conditions: Iterable[Condition], modalities: Sequence[str]) -> dict[Pattern, Condition]:
    subsets = {"+".join(s): s for s in all_subsets(modalities)}
    return {subsets[c[2]]: c for c in conditions if c[0] == "subsets" and c[2] in subsets}


def _repaired(cal: TemperatureSets, preds: Mapping[Condition, Tensor], present: Mapping[Condition, Tensor],
              table: dict[Pattern, Condition]) -> dict[Pattern, Tensor]:
    probs = {pat: cal.probabilities(preds[c], present[c]) for pat, c in table.items()}
    return monotone_probabilities(probs) if cal.monotone else probs


def _probs(cal: TemperatureSets, cond: Condition, preds: Tensor, present: Tensor,
           repaired: dict[Pattern, Tensor], presence_only: bool) -> Tensor:
    probs = cal.probabilities(preds, present)
    if not (cal.monotone and repaired and (presence_only or cond[0] == "subsets")):
        return probs
    for i, pat in enumerate(patterns_of(present, cal.modalities)):
        if pat in repaired:
            probs[i] = repaired[pat][i]
    return probs


def uncertainty_metrics(calibrator: ConformalIntervals | TemperatureSets, preds: Mapping[Condition, Tensor],
                        present: Mapping[Condition, Tensor], targets: Tensor,
                        presence_only: Iterable[Condition] = ()) -> tuple[dict[Condition, dict[str, float]], float | None]:
    """``({condition: {metric: value}}, VRR)`` for the evaluator (see the module docstring).

    Args:
        calibrator: the run's calibrator.
        preds: ``{(protocol, level, subset): [N, K]}`` predictions (logits for classification).
        present: the ``[N, M]`` presence mask each condition's samples were predicted with.
        targets: ``[N]`` / ``[N, K]``.
        presence_only: conditions whose dropping changed only the presence mask.

    ``VRR`` is ``None`` when the ``subsets`` conditions are not all there.
    """
    table = _subset_table(preds, calibrator.modalities)
    full = len(table) == len(all_subsets(calibrator.modalities))
    only = set(presence_only)
    out: dict[Condition, dict[str, float]] = {}
    confidence: dict[Pattern, Tensor] = {}
    if isinstance(calibrator, ConformalIntervals):
        y = torch.as_tensor(targets, dtype=torch.float64)
        for cond, p in preds.items():
            lo, hi = calibrator.apply(p, present[cond])
            out[cond] = interval_scores(lo.reshape(-1), hi.reshape(-1), y.reshape(-1))
        confidence = {pat: -calibrator.widths(present[c]).mean(dim=1) for pat, c in table.items()}
    elif isinstance(calibrator, TemperatureSets):
        repaired = _repaired(calibrator, preds, present, table) if full else {}
        for cond, p in preds.items():
            probs = _probs(calibrator, cond, p, present[cond], repaired, cond in only)
            out[cond] = {**probability_scores(probs, targets), **set_scores(calibrator.sets(probs, present[cond]), targets)}
            if cond[0] == "subsets" and cond[2] in {"+".join(s) for s in table}:
                confidence[tuple(cond[2].split("+"))] = probs.max(dim=1).values
    else:
        raise ValueError(f"calibrator: expected ConformalIntervals or TemperatureSets, found {type(calibrator).__name__}")
    return out, (violation_rate(confidence)["VRR"] if full else None)
