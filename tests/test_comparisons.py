import numpy as np
import pytest
import torch

from robustfusion.comparisons import COMPARISON_FIELDS, EFFECTIVE_LEVEL, comparison_rows
from robustfusion.metrics import compute_metrics

LEVELS = [0.0, 0.5, 1.0]


def _mae(p, y):
    return compute_metrics("regression", torch.tensor(p), torch.tensor(y))["MAE"]


def _data(seed=0, n_groups=20, per=10):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per)
    y = rng.normal(size=len(groups))

    def noise(scale):  # each model's error has a part shared by the samples of a video
        return scale * (2 * rng.normal(size=n_groups)[groups] + rng.normal(size=len(y)))

    def model(scale, slope, seeds):
        return {s: {("subsets", None, "text"): (y + noise(scale))[:, None],
                    **{("sample_rate", lv, "all"): (y + noise(scale + slope * lv))[:, None] for lv in LEVELS}}
                for s in seeds}

    preds = {"ridge": model(0.5, 1.0, [0]), "late_fusion": model(0.5, 2.0, [0, 1, 2]), "gmc": model(0.4, 0.5, [0, 1, 2])}
    return preds, y, groups


def test_deltas_are_seed_means_of_the_metric_and_the_columns_are_the_documented_ones():
    preds, y, groups = _data()
    rows = comparison_rows(preds, y, groups, "ridge", ["MAE"], late_fusion="late_fusion", n_boot=200)
    assert all(tuple(r) == COMPARISON_FIELDS for r in rows)
    r = next(r for r in rows if r["model"] == "gmc" and r["subset"] == "text")
    want = np.mean([_mae(preds["gmc"][s][("subsets", None, "text")], y) for s in (0, 1, 2)]) - \
        _mae(preds["ridge"][0][("subsets", None, "text")], y)
    assert r["delta"] == pytest.approx(want)
    assert r["ci_low"] < r["delta"] < r["ci_high"]
    assert {r["model"] for r in rows} == {"gmc", "late_fusion"}


def test_area_and_effective_robustness_rows():
    preds, y, groups = _data(1)
    rows = comparison_rows(preds, y, groups, "ridge", ["MAE"], late_fusion="late_fusion", n_boot=200)

    def curve(model):
        return np.array([np.mean([_mae(preds[model][s][("sample_rate", lv, "all")], y) for s in preds[model]])
                         for lv in LEVELS])

    area = r = None
    for r in rows:
        if r["model"] == "gmc" and r["level"] == "auilc":
            area = r
        if r["model"] == "gmc" and r["level"] == EFFECTIVE_LEVEL:
            eff = r
    g, ridge, lf = curve("gmc"), curve("ridge"), curve("late_fusion")
    assert area["delta"] == pytest.approx(np.trapezoid(g - ridge, LEVELS))
    assert eff["reference"] == "late_fusion"
    assert eff["delta"] == pytest.approx(np.trapezoid((g - g[0]) - (lf - lf[0]), LEVELS))
    assert eff["ci_high"] < 0  # gmc's MAE grows far less than late fusion's: clearly
    assert not any(r["model"] == "late_fusion" and r["level"] == EFFECTIVE_LEVEL for r in rows)


def test_groups_widen_the_interval_over_a_per_sample_bootstrap():
    preds, y, groups = _data(2, n_groups=10, per=30)
    cond = ("subsets", None, "text")

    def width(g):
        r = next(r for r in comparison_rows(preds, y, g, "ridge", ["MAE"], n_boot=400) if r["model"] == "gmc"
                 and r["subset"] == "text")
        return r["ci_high"] - r["ci_low"]

    assert width(groups) > 1.3 * width(None)
    assert cond in preds["gmc"][0]


def test_unknown_reference_or_metric_is_refused():
    preds, y, groups = _data()
    with pytest.raises(ValueError, match="reference"):
        comparison_rows(preds, y, groups, "oracle", ["MAE"])
    with pytest.raises(ValueError, match="no resampled form"):
        comparison_rows(preds, y, groups, "ridge", ["PI_width"])
