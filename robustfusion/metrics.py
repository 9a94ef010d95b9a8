"""Field-standard metrics for multimodal affect, computed with torchmetrics.

Sentiment regression (CMU-MOSI / CMU-MOSEI) follows MMSA ``utils/metricsTop.py``
(``__eval_mosei_regression``) and MulT ``src/eval_metrics.py`` (``eval_mosei_senti``, Tsai et al.,
ACL 2019, arXiv 1906.00295) definition by definition, and returns MMSA's key names, *unrounded*
(MMSA rounds to 4 digits; round when you print):

==================  ==========================================================================
``Has0_acc_2``      accuracy of ``pred >= 0`` vs ``label >= 0`` over all samples
``Has0_F1_score``   weighted F1 (scikit-learn ``average="weighted"``) of the same two classes
``Non0_acc_2``      samples whose label is exactly 0 removed; ``pred > 0`` vs ``label > 0``
``Non0_F1_score``   weighted F1 of the same
``Mult_acc_5``      clip pred and label to [-2, 2], round half to even, compare
``Mult_acc_7``      clip pred and label to [-3, 3], round half to even, compare
``MAE``             mean absolute error on unclipped values
``Corr``            Pearson correlation on unclipped values
==================  ==========================================================================

Where the two references disagree, this module follows MMSA (whose key names it returns):
MulT's ``eval_mosei_senti`` passes ``f1_score(preds, truth)`` with the arguments swapped (its F1
is weighted by the *predicted* class counts), and with ``exclude_zero=False`` it splits at
``> 0`` rather than MMSA's ``>= 0``. Numbers copied from MulT-derived tables can therefore
differ from ``Has0_*`` / ``Non0_F1_score`` by these conventions, not by model quality.

Documented edge cases (the references return NaN or crash there):

* ``Corr`` is **0.0** when the predictions or the labels are constant (zero variance; NumPy's
  ``corrcoef`` gives NaN). A constant predictor carries no linear information, so 0 is the
  value that keeps seed averages and AUILC areas finite.
* ``Non0_acc_2`` / ``Non0_F1_score`` are **NaN** when every label is exactly 0 (no sample is
  left; MMSA crashes there). NaN stays NaN through :func:`robustfusion.results.aggregate`.

Emotion recognition (IEMOCAP four binary emotions, MulT ``eval_iemocap``): per emotion, binary
accuracy and weighted F1; ``Avg_acc`` / ``Avg_F1`` are their unweighted means over emotions.
Single-label multi-class (the synthetic 6-class emotion task): ``Acc``, ``F1_macro``,
``F1_weighted``, per-class ``<name>_F1`` (one-vs-rest F1 of each class, scikit-learn's
``f1_score(average=None)``) and, from ``[N, C]`` scores, ``NLL``: the mean cross-entropy of
``log_softmax(scores)`` (for log-probabilities, as the synthetic oracle emits, that is the mean
negative log-probability of the true class; scikit-learn's ``log_loss`` of the softmax).
The MulT-style binary per-emotion figures of a single-label task are ``<name>_bin_acc`` and
``<name>_bin_F1``: the binary decision "predicted class is ``name``" (``argmax == c``) against
"label is ``name``", scored as ``eval_iemocap`` scores one IEMOCAP emotion (accuracy and
scikit-learn's weighted F1 over the two classes). They carry ``bin`` in the name because
``<name>_F1`` is already the class's own F1 there; in the multilabel task every per-emotion
decision is binary already, so MulT's figures keep MulT's names ``<name>_acc`` / ``<name>_F1``.

:func:`compute_metrics` dispatches on the task; :data:`METRIC_DIRECTION` / :func:`higher_is_better`
say which way is better (for early stopping and for marking the best value in tables) and
:func:`primary_metric` names the metric used to pick the best checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from robustfusion.tasks import TASKS

# torchmetrics is imported inside the functions: importing it pulls scipy, sympy and matplotlib
# (seconds), which `import robustfusion.metrics` (CLI start-up, reporting) should not pay.

__all__ = [
    "IEMOCAP_EMOTIONS",
    "METRIC_DIRECTION",
    "PRIMARY_METRIC",
    "REPORT_METRICS",
    "SENTIMENT_METRICS",
    "accuracy",
    "classification_metrics",
    "compute_metrics",
    "emotion_metrics",
    "higher_is_better",
    "metric_direction",
    "multiclass_acc",
    "pearson_corr",
    "primary_metric",
    "score_metrics",
    "sentiment_metrics",
    "weighted_f1",
]

SENTIMENT_METRICS = ("Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score",
                     "Mult_acc_5", "Mult_acc_7", "MAE", "Corr")
IEMOCAP_EMOTIONS = ("Neutral", "Happy", "Sad", "Angry")

#: ``"max"`` (higher is better) or ``"min"`` for every metric name this module produces.
#: Names ending in ``_acc`` / ``_F1`` (per-emotion metrics) are ``"max"`` as well; see
#: :func:`metric_direction`.
METRIC_DIRECTION: dict[str, str] = {
    **{k: "max" for k in SENTIMENT_METRICS}, "MAE": "min",
    "Acc": "max", "F1_macro": "max", "F1_weighted": "max", "Avg_acc": "max", "Avg_F1": "max", "NLL": "min",
}

#: Metric used for early stopping and "best checkpoint" per task.
PRIMARY_METRIC: dict[str, str] = {"regression": "MAE", "classification": "Acc", "multilabel": "Avg_F1"}

#: Metrics drawn by default in reports (tables and plots), per task.
REPORT_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("Non0_acc_2", "Non0_F1_score", "MAE", "Corr", "Mult_acc_7"),
    "classification": ("Acc", "F1_weighted"),
    "multilabel": ("Avg_acc", "Avg_F1"),
}


# ---------------------------------------------------------------------------- helpers
def _to_tensor(x, what: str) -> Tensor:
    if isinstance(x, Tensor):
        t = x.detach().cpu()
    else:
        t = torch.as_tensor(np.asarray(x))
    if t.numel() == 0:
        raise ValueError(f"{what}: expected at least one sample, found an empty array")
    return t


def _regression_pair(preds, labels) -> tuple[Tensor, Tensor]:
    p = _to_tensor(preds, "preds").to(torch.float64)
    y = _to_tensor(labels, "labels").to(torch.float64)
    if p.dim() == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.dim() != 1:
        raise ValueError(f"preds: expected [N] or [N, 1] sentiment scores, found shape {tuple(p.shape)}")
    y = y.reshape(-1) if (y.dim() == 2 and y.shape[1] == 1) else y
    if y.dim() != 1 or y.shape[0] != p.shape[0]:
        raise ValueError(f"labels: expected shape ({p.shape[0]},) to match preds, found {tuple(y.shape)}")
    if not bool(torch.isfinite(p).all()):
        raise ValueError("preds: expected finite values, found NaN or inf")
    if not bool(torch.isfinite(y).all()):
        raise ValueError("labels: expected finite values, found NaN or inf")
    return p, y


def _per_class_f1(preds: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Per-class F1 ``[C]`` (float64; 0 where precision or recall is undefined, scikit-learn's
    ``zero_division=0``) and support ``[C]``, from torchmetrics' integer stat scores."""
    from torchmetrics.functional.classification import multiclass_stat_scores

    st = multiclass_stat_scores(preds.long(), labels.long(), num_classes=num_classes, average="none")
    tp, fp, fn, sup = (st[:, i].to(torch.float64) for i in (0, 1, 3, 4))
    denom = 2 * tp + fp + fn
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.zeros_like(denom))
    return f1, sup


def weighted_f1(preds: Tensor, labels: Tensor, num_classes: int = 2) -> float:
    """scikit-learn's ``f1_score(labels, preds, average="weighted")`` for integer classes
    ``[N]``: per-class F1 weighted by label support (classes without support weigh 0; an
    undefined precision or recall counts 0), computed in float64."""
    f1, sup = _per_class_f1(preds, labels, num_classes)
    return float((f1 * sup).sum() / sup.sum())


def accuracy(preds: Tensor, labels: Tensor) -> float:
    """Fraction of equal entries of two ``[N]`` tensors (float64, exact)."""
    return float((preds == labels).to(torch.float64).mean())


def pearson_corr(preds: Tensor, labels: Tensor) -> float:
    """Pearson correlation of two ``[N]`` float tensors; **0.0** when either is constant or
    ``N < 2`` (documented convention; NumPy returns NaN there)."""
    from torchmetrics.functional import pearson_corrcoef

    p, y = preds.to(torch.float64), labels.to(torch.float64)
    if p.numel() < 2 or bool((p == p[0]).all()) or bool((y == y[0]).all()):
        return 0.0
    r = float(pearson_corrcoef(p, y))
    return 0.0 if not np.isfinite(r) else r


def multiclass_acc(preds: Tensor, labels: Tensor, bound: float) -> float:
    """MMSA/MulT ``multiclass_acc`` after clipping to ``[-bound, bound]``: fraction of samples
    whose rounded (half to even, like ``np.round``) prediction equals the rounded label."""
    rp = torch.round(preds.clamp(-bound, bound))
    ry = torch.round(labels.clamp(-bound, bound))
    return float((rp == ry).to(torch.float64).mean())


# ---------------------------------------------------------------------------- sentiment
def sentiment_metrics(preds, labels) -> dict[str, float]:
    """MOSI/MOSEI sentiment metrics under MMSA's key names (see the module docstring).

    Args:
        preds: ``[N]`` or ``[N, 1]`` predicted sentiment scores (tensor or array).
        labels: ``[N]`` or ``[N, 1]`` gold scores in [-3, 3].

    Returns:
        ``{"Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5",
        "Mult_acc_7", "MAE", "Corr"}`` as Python floats, unrounded.

    Raises:
        ValueError: empty input, mismatched lengths, more than one output column, NaN/inf.
    """
    p, y = _regression_pair(preds, labels)
    out: dict[str, float] = {}
    has0_p, has0_y = (p >= 0).long(), (y >= 0).long()
    out["Has0_acc_2"] = accuracy(has0_p, has0_y)
    out["Has0_F1_score"] = weighted_f1(has0_p, has0_y)
    nz = y != 0
    if bool(nz.any()):
        non0_p, non0_y = (p[nz] > 0).long(), (y[nz] > 0).long()
        out["Non0_acc_2"] = accuracy(non0_p, non0_y)
        out["Non0_F1_score"] = weighted_f1(non0_p, non0_y)
    else:
        out["Non0_acc_2"] = out["Non0_F1_score"] = float("nan")
    out["Mult_acc_5"] = multiclass_acc(p, y, 2.0)
    out["Mult_acc_7"] = multiclass_acc(p, y, 3.0)
    from torchmetrics.functional import mean_absolute_error

    out["MAE"] = float(mean_absolute_error(p, y))
    out["Corr"] = pearson_corr(p, y)
    return out


def score_metrics(preds, labels) -> dict[str, float]:
    """Metrics of a regression target that is not a sentiment score (no sign, no 7-point
    scale): ``{"MAE", "Corr"}`` as :func:`sentiment_metrics` computes them, without its binary
    and multi-class accuracies (which threshold at 0 and round to [-3, 3]).

    Args:
        preds: ``[N]`` or ``[N, 1]`` predictions; labels: the same shape of gold values.
    """
    p, y = _regression_pair(preds, labels)
    from torchmetrics.functional import mean_absolute_error

    return {"MAE": float(mean_absolute_error(p, y)), "Corr": pearson_corr(p, y)}


# ---------------------------------------------------------------------------- emotions
def _emotion_decisions(scores: Tensor, k: int, threshold: float | None) -> Tensor:
    """``[N, K]`` 0/1 decisions from ``[N, K]`` logits/probabilities or MulT's ``[N, 2K]`` /
    ``[N, K, 2]`` paired logits (argmax of each pair, class 1 = emotion present)."""
    n = scores.shape[0]
    if scores.dim() == 2 and scores.shape[1] == k:
        pass
    elif scores.dim() == 3 and scores.shape[1:] == (k, 2) or scores.dim() == 2 and scores.shape[1] == 2 * k:
        return scores.reshape(n, k, 2).argmax(dim=-1)
    else:
        raise ValueError(f"emotion scores: expected [N, {k}] (or MulT's [N, {k}, 2] / [N, {2 * k}]) to "
                         f"match the labels, found {tuple(scores.shape)}")
    return (scores > (0.0 if threshold is None else threshold)).long()


def emotion_metrics(logits_or_probs, labels, names: Sequence[str] | None = None,
                    threshold: float | None = None) -> dict[str, float]:
    """Per-emotion binary accuracy and weighted F1 (MulT ``eval_iemocap``) plus their means.

    Args:
        logits_or_probs: ``[N, K]`` scores, one per emotion, decided present when
            ``score > threshold`` (default 0.0: logits, as the models output; use 0.5 for
            probabilities); or MulT's ``[N, K, 2]`` / ``[N, 2K]`` paired logits (argmax per pair).
        labels: ``[N, K]`` 0/1 multilabel targets.
        names: ``K`` emotion names (default: IEMOCAP's Neutral, Happy, Sad, Angry when K = 4,
            else ``label0``...).
        threshold: decision threshold for ``[N, K]`` scores.

    Returns:
        ``{"<name>_acc", "<name>_F1" for each emotion, "Avg_acc", "Avg_F1"}``.
    """
    y = _to_tensor(labels, "labels")
    if y.dim() == 1:
        y = y.unsqueeze(1)
    if y.dim() != 2:
        raise ValueError(f"labels: expected [N, K] multilabel 0/1 targets, found shape {tuple(y.shape)}")
    uniq = torch.unique(y)
    if not bool(((uniq == 0) | (uniq == 1)).all()):
        raise ValueError(f"labels: expected 0/1 multilabel targets, found values {uniq[:8].tolist()}")
    n, k = y.shape
    s = _to_tensor(logits_or_probs, "logits_or_probs").to(torch.float64)
    if s.shape[0] != n:
        raise ValueError(f"logits_or_probs: expected {n} samples to match the labels, found {tuple(s.shape)}")
    if not bool(torch.isfinite(s).all()):
        raise ValueError("logits_or_probs: expected finite values, found NaN or inf")
    names = list(names) if names is not None else (list(IEMOCAP_EMOTIONS) if k == 4 else [f"label{i}" for i in range(k)])
    if len(names) != k:
        raise ValueError(f"names: expected {k} emotion names, found {len(names)}")
    d = _emotion_decisions(s, k, threshold)
    y = y.long()
    out: dict[str, float] = {}
    accs, f1s = [], []
    for i, name in enumerate(names):
        acc = accuracy(d[:, i], y[:, i])
        f1 = weighted_f1(d[:, i], y[:, i])
        out[f"{name}_acc"], out[f"{name}_F1"] = acc, f1
        accs.append(acc)
        f1s.append(f1)
    out["Avg_acc"], out["Avg_F1"] = float(np.mean(accs)), float(np.mean(f1s))
    return out


# ---------------------------------------------------------------------------- multi-class
def classification_metrics(logits, labels, num_classes: int | None = None,
                           names: Sequence[str] | None = None) -> dict[str, float]:
    """Single-label multi-class metrics.

    Args:
        logits: ``[N, C]`` scores (argmax decides; logits or log-probabilities) or ``[N]``
            integer predicted classes.
        labels: ``[N]`` integer classes in ``[0, C)``.
        num_classes: ``C`` (default: ``logits.shape[1]``, or ``max + 1`` for class vectors).
        names: ``C`` class names for the per-class keys (default ``class0`` ... ``class{C-1}``).

    Returns:
        ``{"Acc", "F1_macro", "F1_weighted", "<name>_F1" per class}`` (scikit-learn's
        ``accuracy_score``, ``f1_score(average="macro" / "weighted" / None)``; the macro average
        runs over the classes that occur in the labels or the predictions, as scikit-learn's
        does; a class absent from both has F1 0); per class ``"<name>_bin_acc"`` and
        ``"<name>_bin_F1"``: accuracy and weighted F1 (scikit-learn's ``average="weighted"``) of
        the one-vs-rest decision ``pred == c`` against ``label == c`` (MulT ``eval_iemocap``'s
        per-emotion figures for a single-label target); plus ``"NLL"`` for ``[N, C]`` scores: the mean
        of ``-log_softmax(scores)[i, y_i]`` (cross-entropy of logits; for log-probabilities
        that sum to 1 it is their mean negative log-likelihood).
    """
    s = _to_tensor(logits, "logits")
    y = _to_tensor(labels, "labels")
    if y.dtype.is_floating_point and not bool((y == y.round()).all()):
        raise ValueError("labels: expected integer class indices, found non-integer values")
    y = y.reshape(-1).long()
    if s.dim() == 2:
        if num_classes is None:
            num_classes = s.shape[1]
        pred = s.argmax(dim=1)
    elif s.dim() == 1:
        pred = s.long()
        if num_classes is None:
            num_classes = int(max(pred.max(), y.max())) + 1
    else:
        raise ValueError(f"logits: expected [N, C] scores or [N] classes, found shape {tuple(s.shape)}")
    if pred.shape[0] != y.shape[0]:
        raise ValueError(f"labels: expected {pred.shape[0]} samples to match the predictions, found {y.shape[0]}")
    if bool((y < 0).any()) or bool((y >= num_classes).any()):
        raise ValueError(f"labels: expected classes in [0, {num_classes - 1}], found range "
                         f"[{int(y.min())}, {int(y.max())}]")
    acc = accuracy(pred, y)
    f1, sup = _per_class_f1(pred, y, num_classes)
    f1_w = float((f1 * sup).sum() / sup.sum())
    # macro over the classes seen in labels or predictions (scikit-learn's label set)
    seen = torch.zeros(num_classes, dtype=torch.bool)
    seen[torch.unique(torch.cat([pred, y]))] = True
    f1_m = float(f1[seen].mean())
    names = list(names) if names is not None else [f"class{i}" for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"names: expected {num_classes} class names, found {len(names)}")
    out = {"Acc": acc, "F1_macro": f1_m, "F1_weighted": f1_w}
    out.update({f"{name}_F1": float(v) for name, v in zip(names, f1, strict=True)})
    for c, name in enumerate(names):  # one-vs-rest binary decisions, scored as MulT's eval_iemocap
        d, t = (pred == c).long(), (y == c).long()
        out[f"{name}_bin_acc"] = accuracy(d, t)
        out[f"{name}_bin_F1"] = weighted_f1(d, t)
    if s.dim() == 2:
        logp = torch.log_softmax(s.to(torch.float64), dim=1)
        out["NLL"] = float(-logp.gather(1, y.unsqueeze(1)).mean())
    return out


# ---------------------------------------------------------------------------- dispatch
def compute_metrics(task: str, preds, targets, **kwargs) -> dict[str, float]:
    """All metrics of ``task``: ``"regression"`` -> :func:`sentiment_metrics` (with
    ``sentiment=False``: :func:`score_metrics`, for a target that is not a sentiment score),
    ``"classification"`` -> :func:`classification_metrics`, ``"multilabel"`` ->
    :func:`emotion_metrics` (``kwargs`` go to that function)."""
    if task == "regression":
        fn = sentiment_metrics if kwargs.pop("sentiment", True) else score_metrics
        return fn(preds, targets, **kwargs)
    if task == "classification":
        return classification_metrics(preds, targets, **kwargs)
    if task == "multilabel":
        return emotion_metrics(preds, targets, **kwargs)
    raise ValueError(f"task: expected one of {TASKS}, found {task!r}")


def primary_metric(task: str) -> str:
    """The metric used for early stopping / best checkpoint of ``task`` (see
    :data:`PRIMARY_METRIC`); its direction is :func:`metric_direction`."""
    try:
        return PRIMARY_METRIC[task]
    except KeyError:
        raise ValueError(f"task: expected one of {TASKS}, found {task!r}") from None


def metric_direction(metric: str) -> str:
    """``"max"`` or ``"min"``. Understands derived names: ``gap/<m>`` (model minus oracle, same
    direction as ``m``) and per-emotion ``<name>_acc`` / ``<name>_F1``."""
    base = metric.split("/", 1)[1] if metric.startswith("gap/") else metric
    if base in METRIC_DIRECTION:
        return METRIC_DIRECTION[base]
    if base.endswith(("_acc", "_F1")) or base.lower().startswith(("acc", "f1")):
        return "max"
    if base.upper() in ("MAE", "MSE", "RMSE", "LOSS") or base.lower().endswith("loss"):
        return "min"
    raise ValueError(f"metric {metric!r}: direction unknown; expected one of {sorted(METRIC_DIRECTION)} "
                     "or a name ending in _acc/_F1")


def higher_is_better(metric: str) -> bool:
    """``True`` when larger values of ``metric`` are better."""
    return metric_direction(metric) == "max"
