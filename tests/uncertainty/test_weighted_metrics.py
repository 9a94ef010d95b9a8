import numpy as np
import pytest
import torch

from robustfusion.metrics import compute_metrics
from robustfusion.uncertainty import WEIGHTED_METRICS, weighted_metric

REGRESSION = ["MAE", "Corr", "Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7"]
CLASSIFICATION = ["Acc", "F1_weighted", "F1_macro"]


def _regression(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.round(rng.uniform(-3, 3, n) * 3) / 3  # some labels exactly 0, as in MOSI
    return rng.normal(y, 1.0)[:, None], y


def _classification(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    return rng.normal(size=(n, 4)) + 1.5 * np.eye(4)[y], y


@pytest.mark.parametrize("name", REGRESSION + CLASSIFICATION)
def test_unit_weights_equal_the_metric_and_integer_weights_equal_repetition(name):
    task = "regression" if name in REGRESSION else "classification"
    p, y = _regression() if task == "regression" else _classification()
    fn = weighted_metric(name)
    assert fn(np.ones((1, len(y))), p, y)[0] == pytest.approx(compute_metrics(task, torch.tensor(p), torch.tensor(y))[name])
    counts = np.random.default_rng(1).integers(0, 3, size=(4, len(y))).astype(float)
    for row, got in zip(counts, fn(counts, p, y)):
        idx = np.repeat(np.arange(len(y)), row.astype(int))
        want = compute_metrics(task, torch.tensor(p[idx]), torch.tensor(y[idx]))[name]
        assert got == pytest.approx(want, abs=1e-9)


def test_every_name_is_known_and_an_unknown_one_is_refused():
    assert set(WEIGHTED_METRICS) == set(REGRESSION + CLASSIFICATION)
    with pytest.raises(ValueError, match="no resampled form"):
        weighted_metric("PI_width")
