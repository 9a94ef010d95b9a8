"""Every metric against an independent NumPy / scikit-learn implementation (MMSA metricsTop.py
and MulT eval_metrics.py definitions), on random and edge-case inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robustfusion.metrics import (
    METRIC_DIRECTION,
    SENTIMENT_METRICS,
    classification_metrics,
    compute_metrics,
    emotion_metrics,
    higher_is_better,
    metric_direction,
    primary_metric,
    sentiment_metrics,
)

sk = pytest.importorskip("sklearn.metrics")


# ---------------------------------------------------------------------------- references
def ref_sentiment(preds: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Straight from the published definitions, in NumPy + scikit-learn."""
    preds, truth = preds.astype(np.float64).ravel(), truth.astype(np.float64).ravel()

    def mult(bound):
        return float(np.mean(np.round(np.clip(preds, -bound, bound)) == np.round(np.clip(truth, -bound, bound))))

    out = {
        "Has0_acc_2": sk.accuracy_score(truth >= 0, preds >= 0),
        "Has0_F1_score": sk.f1_score(truth >= 0, preds >= 0, average="weighted", zero_division=0),
        "Mult_acc_5": mult(2.0),
        "Mult_acc_7": mult(3.0),
        "MAE": float(np.mean(np.abs(preds - truth))),
    }
    nz = truth != 0
    if nz.any():
        out["Non0_acc_2"] = sk.accuracy_score(truth[nz] > 0, preds[nz] > 0)
        out["Non0_F1_score"] = sk.f1_score(truth[nz] > 0, preds[nz] > 0, average="weighted", zero_division=0)
    else:
        out["Non0_acc_2"] = out["Non0_F1_score"] = float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(preds, truth)[0, 1]
    out["Corr"] = 0.0 if not np.isfinite(c) else float(c)
    return out


def assert_same(got: dict, ref: dict, keys=None) -> None:
    for k in keys or ref:
        g, r = got[k], ref[k]
        if math.isnan(r):
            assert math.isnan(g), k
        else:
            assert g == pytest.approx(r, abs=1e-9), (k, g, r)


# ---------------------------------------------------------------------------- sentiment
@pytest.mark.parametrize("seed", range(6))
def test_sentiment_random_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    truth = np.round(rng.uniform(-3, 3, n) * 3) / 3  # MOSI-like thirds, includes exact 0s
    truth[rng.random(n) < 0.1] = 0.0
    preds = rng.normal(0, 2, n).astype(np.float32)
    got = sentiment_metrics(torch.from_numpy(preds).unsqueeze(1), torch.from_numpy(truth).float())
    assert set(got) == set(SENTIMENT_METRICS)
    assert all(isinstance(v, float) for v in got.values())
    assert_same(got, ref_sentiment(preds, truth.astype(np.float32)))


def test_sentiment_half_values_round_half_to_even():
    # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0 (np.round); clipped 3.7 -> 3
    preds = np.array([0.5, 1.5, 2.5, -0.5, 3.7, -2.5])
    truth = np.array([0.0, 2.0, 2.0, 0.0, 3.0, -2.0])
    got = sentiment_metrics(preds, truth)
    assert got["Mult_acc_7"] == 1.0
    assert_same(got, ref_sentiment(preds, truth))
    # Acc-5 clips to [-2, 2]: 3.7 -> 2 == clip(3) = 2
    assert got["Mult_acc_5"] == 1.0


def test_sentiment_all_labels_zero():
    preds = np.array([0.3, -0.2, 0.0, 1.0])
    truth = np.zeros(4)
    got = sentiment_metrics(preds, truth)
    assert math.isnan(got["Non0_acc_2"]) and math.isnan(got["Non0_F1_score"])
    assert got["Corr"] == 0.0  # constant labels: documented convention
    assert got["Has0_acc_2"] == 0.75  # label 0 counts as non-negative
    assert_same(got, ref_sentiment(preds, truth))


def test_sentiment_constant_predictions():
    rng = np.random.default_rng(1)
    truth = rng.uniform(-3, 3, 50)
    for c in (0.0, 1.2, -0.7):
        preds = np.full(50, c)
        got = sentiment_metrics(preds, truth)
        assert got["Corr"] == 0.0
        assert_same(got, ref_sentiment(preds, truth))


def test_sentiment_perfect_and_single_class():
    truth = np.array([1.0, 2.0, 0.5])
    got = sentiment_metrics(truth, truth)
    assert got["Has0_acc_2"] == got["Has0_F1_score"] == got["Non0_acc_2"] == 1.0
    assert got["MAE"] == 0.0 and got["Corr"] == pytest.approx(1.0)


def test_sentiment_bad_input():
    with pytest.raises(ValueError, match="empty"):
        sentiment_metrics([], [])
    with pytest.raises(ValueError, match="to match preds"):
        sentiment_metrics(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match=r"\[N\] or \[N, 1\]"):
        sentiment_metrics(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        sentiment_metrics(np.array([0.0, np.nan]), np.zeros(2))


# ---------------------------------------------------------------------------- emotions
def ref_emotion(decisions: np.ndarray, truth: np.ndarray, names) -> dict[str, float]:
    out = {}
    for i, n in enumerate(names):
        out[f"{n}_acc"] = sk.accuracy_score(truth[:, i], decisions[:, i])
        out[f"{n}_F1"] = sk.f1_score(truth[:, i], decisions[:, i], average="weighted", zero_division=0)
    out["Avg_acc"] = float(np.mean([out[f"{n}_acc"] for n in names]))
    out["Avg_F1"] = float(np.mean([out[f"{n}_F1"] for n in names]))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_emotion_logits_match_reference(seed):
    rng = np.random.default_rng(seed)
    n = 80
    truth = (rng.random((n, 4)) < 0.3).astype(np.float32)
    logits = rng.normal(size=(n, 4))
    got = emotion_metrics(torch.tensor(logits), torch.tensor(truth))
    assert_same(got, ref_emotion((logits > 0).astype(int), truth.astype(int), ("Neutral", "Happy", "Sad", "Angry")))
    # probabilities with threshold 0.5 give the same decisions
    probs = 1 / (1 + np.exp(-logits))
    assert emotion_metrics(probs, truth, threshold=0.5) == got


def test_emotion_mult_paired_logits_and_edge_cases():
    rng = np.random.default_rng(3)
    truth = (rng.random((40, 4)) < 0.5).astype(int)
    truth[:, 2] = 0  # an emotion that never occurs
    pairs = rng.normal(size=(40, 4, 2))
    ref = ref_emotion(pairs.argmax(-1), truth, ("Neutral", "Happy", "Sad", "Angry"))
    assert_same(emotion_metrics(pairs.reshape(40, 8), truth), ref)  # MulT's [N, 8] layout
    assert_same(emotion_metrics(pairs, truth), ref)
    # six MOSEI emotions with names
    names = ["happy", "sad", "anger", "surprise", "disgust", "fear"]
    t6 = (rng.random((30, 6)) < 0.2).astype(int)
    s6 = rng.normal(size=(30, 6))
    assert_same(emotion_metrics(s6, t6, names=names), ref_emotion((s6 > 0).astype(int), t6, names))
    with pytest.raises(ValueError, match="0/1"):
        emotion_metrics(s6, t6 * 2)
    with pytest.raises(ValueError, match=r"expected \[N, 6\]"):
        emotion_metrics(s6[:, :5], t6)


# ---------------------------------------------------------------------------- multi-class
@pytest.mark.parametrize("seed", range(4))
def test_classification_matches_reference(seed):
    rng = np.random.default_rng(seed)
    n, c = 60, 6
    y = rng.integers(0, c - 1, n)  # class 5 never in the labels
    logits = rng.normal(size=(n, c))
    got = classification_metrics(torch.tensor(logits), torch.tensor(y))
    p = logits.argmax(1)
    assert got["Acc"] == pytest.approx(sk.accuracy_score(y, p))
    assert got["F1_macro"] == pytest.approx(sk.f1_score(y, p, average="macro", zero_division=0))
    assert got["F1_weighted"] == pytest.approx(sk.f1_score(y, p, average="weighted", zero_division=0))


@pytest.mark.parametrize("seed", range(4))
def test_classification_per_class_f1_and_nll_match_reference(seed):
    rng = np.random.default_rng(seed)
    n, c = 80, 6
    y = rng.integers(0, c, n)
    logits = rng.normal(scale=2.0, size=(n, c))
    names = ("happy", "sad", "angry", "fear", "disgust", "surprise")
    got = classification_metrics(torch.tensor(logits), torch.tensor(y), names=names)
    p = logits.argmax(1)
    per_class = sk.f1_score(y, p, average=None, labels=list(range(c)), zero_division=0)
    for i, name in enumerate(names):
        assert got[f"{name}_F1"] == pytest.approx(per_class[i])
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert got["NLL"] == pytest.approx(sk.log_loss(y, probs, labels=list(range(c))))
    # log-probabilities (the synthetic oracle's output): NLL is their mean negative log-likelihood
    got_lp = classification_metrics(torch.tensor(np.log(probs)), torch.tensor(y))
    assert got_lp["NLL"] == pytest.approx(sk.log_loss(y, probs, labels=list(range(c))))
    assert got_lp["NLL"] == pytest.approx(-np.log(probs[np.arange(n), y]).mean())
    # default names are class indices; class vectors have no NLL
    assert "class5_F1" in got_lp
    assert "NLL" not in classification_metrics(p, y, num_classes=c)
    with pytest.raises(ValueError, match="6 class names"):
        classification_metrics(logits, y, names=names[:5])


@pytest.mark.parametrize("seed", range(4))
def test_classification_one_vs_rest_binary_matches_mult_eval_iemocap(seed):
    """``<name>_bin_acc`` / ``<name>_bin_F1``: MulT's per-emotion binary accuracy and weighted F1
    (``eval_iemocap``: ``accuracy_score(truth, pred)``, ``f1_score(truth, pred, average="weighted")``)
    of the decision "argmax is this class" against "label is this class"."""
    rng = np.random.default_rng(seed)
    n, c = 70, 6
    y = rng.integers(0, c - 1, n)  # class 5 never in the labels
    logits = rng.normal(size=(n, c))
    logits[:, 3] -= 10.0  # class 3 never predicted
    names = ("happy", "sad", "angry", "fear", "disgust", "surprise")
    got = classification_metrics(torch.tensor(logits), torch.tensor(y), names=names)
    p = logits.argmax(1)
    for i, name in enumerate(names):
        truth_i, pred_i = (y == i).astype(int), (p == i).astype(int)
        assert got[f"{name}_bin_acc"] == pytest.approx(sk.accuracy_score(truth_i, pred_i))
        assert got[f"{name}_bin_F1"] == pytest.approx(sk.f1_score(truth_i, pred_i, average="weighted",
                                                                  zero_division=0))
    # the same numbers as the multilabel (IEMOCAP) metrics on the one-hot decisions and labels
    onehot_pred, onehot_truth = np.eye(c)[p], np.eye(c, dtype=int)[y]
    multi = emotion_metrics(onehot_pred, onehot_truth, names=names, threshold=0.5)
    for name in names:
        assert got[f"{name}_bin_acc"] == pytest.approx(multi[f"{name}_acc"])
        assert got[f"{name}_bin_F1"] == pytest.approx(multi[f"{name}_F1"])
    # class vectors give them too
    assert classification_metrics(p, y, num_classes=c)["class3_bin_acc"] == pytest.approx(np.mean(y != 3))


def test_emotion_mult_paired_logit_ties_decide_absent_like_argmax():
    """MulT takes ``np.argmax`` of each (absent, present) pair: a tie means absent."""
    truth = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]])
    pairs = np.zeros((3, 4, 2))
    pairs[0, 0] = (0.0, 1.0)
    got = emotion_metrics(pairs, truth)
    assert_same(got, ref_emotion(pairs.argmax(-1), truth, ("Neutral", "Happy", "Sad", "Angry")))
    assert got["Neutral_acc"] == pytest.approx(2 / 3)


def test_classification_nll_direction_and_names_keep_working():
    assert metric_direction("NLL") == "min" and higher_is_better("happy_F1")
    got = classification_metrics(np.eye(3), np.array([0, 1, 2]))
    assert got["Acc"] == got["F1_macro"] == got["F1_weighted"] == 1.0


def test_classification_constant_prediction_and_errors():
    y = np.array([0, 1, 2, 2, 1])
    logits = np.zeros((5, 3))
    logits[:, 2] = 1.0
    got = classification_metrics(logits, y)
    p = np.full(5, 2)
    assert got["Acc"] == pytest.approx(0.4)
    assert got["F1_macro"] == pytest.approx(sk.f1_score(y, p, average="macro", zero_division=0))
    assert got["F1_weighted"] == pytest.approx(sk.f1_score(y, p, average="weighted", zero_division=0))
    with pytest.raises(ValueError, match=r"classes in \[0, 2\]"):
        classification_metrics(logits, np.array([0, 1, 3, 0, 0]))


# ---------------------------------------------------------------------------- dispatch
def test_compute_metrics_dispatch_and_directions():
    rng = np.random.default_rng(0)
    assert set(compute_metrics("regression", rng.normal(size=(9, 1)), rng.normal(size=9))) == set(SENTIMENT_METRICS)
    assert set(compute_metrics("classification", rng.normal(size=(9, 3)), rng.integers(0, 3, 9))) == {
        "Acc", "F1_macro", "F1_weighted", "NLL", *(f"class{i}_{m}" for i in range(3) for m in ("F1", "bin_acc", "bin_F1"))}
    assert "Avg_F1" in compute_metrics("multilabel", rng.normal(size=(9, 4)), rng.integers(0, 2, (9, 4)))
    with pytest.raises(ValueError, match="task"):
        compute_metrics("ranking", [1.0], [1.0])
    for task in ("regression", "classification", "multilabel"):
        assert primary_metric(task) in METRIC_DIRECTION
    assert not higher_is_better("MAE") and higher_is_better("Has0_acc_2") and higher_is_better("Happy_F1")
    assert higher_is_better("happy_bin_acc") and higher_is_better("happy_bin_F1")
    assert metric_direction("gap/MAE") == "min"
    with pytest.raises(ValueError, match="direction unknown"):
        metric_direction("weird")


# ---------------------------------------------------------------------------- a non-sentiment score
def test_score_metrics_are_mae_and_corr_only_and_equal_numpy():
    from robustfusion.metrics import compute_metrics, score_metrics

    g = np.random.default_rng(3)
    p, y = g.normal(size=50) * 10 + 40, g.normal(size=50) * 10 + 40  # e.g. an age: no sign, no 7-point scale
    res = score_metrics(torch.tensor(p), torch.tensor(y))
    assert set(res) == {"MAE", "Corr"}
    assert res["MAE"] == pytest.approx(np.abs(p - y).mean(), rel=1e-6)
    assert res["Corr"] == pytest.approx(np.corrcoef(p, y)[0, 1], rel=1e-5)
    assert compute_metrics("regression", p, y, sentiment=False) == res
    assert "Mult_acc_7" in compute_metrics("regression", p, y)  # the sentiment metrics stay the default


def test_metric_options_follow_the_dataset_flag():
    from robustfusion.data import MultimodalDataset
    from robustfusion.robustness import metric_options

    def dataset(meta):
        return MultimodalDataset({"a": torch.zeros(3, 2)}, torch.zeros(3), meta=meta)

    assert metric_options(dataset({"sentiment": False})) == {"sentiment": False}
    assert metric_options(dataset({})) == {}
    assert metric_options(dataset({"sentiment": True})) == {}
