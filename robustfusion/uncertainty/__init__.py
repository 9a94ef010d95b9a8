"""Uncertainty under missing modalities: the math, with no model or dataset knowledge (core layer).

* :mod:`~robustfusion.uncertainty.conformal`: split-conformal quantiles and prediction sets, the
  per-presence-pattern recipe of Zaffran et al. (ICML 2023, arXiv 2306.02732);
* :mod:`~robustfusion.uncertainty.temperature`: temperature scaling (Guo et al., ICML 2017,
  arXiv 1706.04599);
* :mod:`~robustfusion.uncertainty.scores`: how good an uncertainty is (interval coverage and width,
  ECE, NLL, Brier, set coverage and size);
* :mod:`~robustfusion.uncertainty.monotone`: CML's principle that confidence must not rise when a
  modality is removed (Ma et al., "Calibrating Multimodal Learning", ICML 2023, arXiv 2306.01265):
  its violation rate and a per-sample repair;
* :mod:`~robustfusion.uncertainty.bootstrap`: confidence intervals that resample whole groups
  (videos, dialogues) and seeds, with the count-weighted metrics of
  :mod:`~robustfusion.uncertainty.weighted_metrics`.
"""

from robustfusion.uncertainty.bootstrap import (
    group_bootstrap_counts,
    paired_delta_ci,
    percentile_interval,
)
from robustfusion.uncertainty.conformal import (
    conformal_quantile,
    monotone_quantiles,
    prediction_sets,
    set_threshold,
)
from robustfusion.uncertainty.monotone import monotone_probabilities, repaired_rows, violation_rate
from robustfusion.uncertainty.scores import interval_scores, probability_scores, set_scores
from robustfusion.uncertainty.temperature import fit_bias_and_temperature, fit_temperature
from robustfusion.uncertainty.weighted_metrics import WEIGHTED_METRICS, weighted_metric

__all__ = [
    "WEIGHTED_METRICS",
    "conformal_quantile",
    "fit_bias_and_temperature",
    "fit_temperature",
    "group_bootstrap_counts",
    "interval_scores",
    "monotone_probabilities",
    "monotone_quantiles",
    "paired_delta_ci",
    "percentile_interval",
    "prediction_sets",
    "probability_scores",
    "repaired_rows",
    "set_scores",
    "set_threshold",
    "violation_rate",
    "weighted_metric",
]
