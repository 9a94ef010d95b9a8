"""The evaluator's uncertainty rows: how good a run's intervals, probabilities and sets are under
every dropping condition, and whether confidence ever rises when a modality is removed.

For a predictor whose calibrators add intervals, probabilities or sets
(:class:`robustfusion.calibration.CalibratedModel` with ``conformal_intervals`` or
``temperature_sets``), the evaluator (:func:`robustfusion.robustness.evaluate`) passes its
per-condition predictions, the presence mask each sample was predicted with and the targets to
:func:`uncertainty_metrics`:

* regression: ``PI_coverage`` and ``PI_width`` (mean of ``upper - lower`` over samples and outputs);
* classification: ``ECE`` (15 equal-width bins), ``NLL`` and ``Brier`` of the calibrated
  probabilities (``NLL`` replaces the raw logits' NLL of
  :func:`~robustfusion.metrics.classification_metrics`: it is the number of the probabilities the
  run reports), ``Set_coverage`` and ``Set_size``;
* ``VRR`` (one row per model under ``subsets``, ``subset="all"``): the share of (sample, S, T),
  T a proper subset of S, where the confidence given T is above that given S (regression: minus
  the mean interval width; classification: the top-class probability), CML's criterion
  (arXiv 2306.01265).

With monotone confidence asked for, each sample's probabilities are repaired over its sub-patterns
(:func:`~robustfusion.uncertainty.monotone_probabilities`) from the ``subsets`` predictions of the
same samples: for the ``subsets`` conditions, and for a sweep condition whose protocol changes only
the presence mask (``presence_only``), where a sample's prediction equals its ``subsets``
prediction for the same pattern. A frame-dropping condition is scored without the repair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor

from robustfusion.dropping import all_subsets, subset_name
from robustfusion.protocols import SUBSETS
from robustfusion.uncertainty import (
    interval_scores,
    monotone_probabilities,
    probability_scores,
    repaired_rows,
    set_scores,
    violation_rate,
)

__all__ = ["uncertainty_metrics"]

Condition = tuple[str, Any, str]


def uncertainty_metrics(predictor, preds: Mapping[Condition, Tensor], present: Mapping[Condition, Tensor],
                        targets: Tensor, presence_only: Iterable[Condition] = ()
                        ) -> tuple[dict[Condition, dict[str, float]], float | None]:
    """``({condition: {metric: value}}, VRR)`` (module docstring).

    Args:
        predictor: has ``modalities``, ``uncertainty(prediction, present) -> Calibrated``,
            ``monotone_confidence`` and ``sets(probs, present)``.
        preds: ``{(protocol, level, subset): [N, K]}`` the predictor's (calibrated) predictions.
        present: the ``[N, M]`` presence mask each condition's samples were predicted with.
        targets: ``[N]`` / ``[N, K]``.
        presence_only: conditions whose dropping changed only the presence mask.

    ``VRR`` is ``None`` unless every ``subsets`` condition is there.
    """
    mods = tuple(predictor.modalities)
    names = {subset_name(s): s for s in all_subsets(mods)}
    table = {names[c[2]]: c for c in preds if c[0] == SUBSETS and c[2] in names}
    full = len(table) == len(names)
    outs = {c: predictor.uncertainty(p, present[c]) for c, p in preds.items()}
    if next(iter(outs.values())).lower is not None:
        y = torch.as_tensor(targets, dtype=torch.float64).reshape(-1)
        scores = {c: interval_scores(o.lower.reshape(-1), o.upper.reshape(-1), y) for c, o in outs.items()}
        confidence = {s: -(outs[c].upper - outs[c].lower).double().mean(dim=1) for s, c in table.items()}
        return scores, violation_rate(confidence)["VRR"] if full else None
    if next(iter(outs.values())).probabilities is None:
        return {}, None
    probs = {c: o.probabilities for c, o in outs.items()}
    if predictor.monotone_confidence and full:
        repaired = monotone_probabilities({s: probs[c] for s, c in table.items()})
        only = set(presence_only) | set(table.values())
        for c in only & set(probs):
            probs[c] = repaired_rows(probs[c], repaired, present[c], mods)
    scores = {}
    for c, p in probs.items():
        sets = predictor.sets(p, present[c])
        scores[c] = {**probability_scores(p, targets), **({} if sets is None else set_scores(sets, targets))}
    confidence = {s: probs[c].max(dim=1).values for s, c in table.items()}
    return scores, violation_rate(confidence)["VRR"] if full else None
