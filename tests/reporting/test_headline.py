"""``headline_lines``: the all-modalities value and the worst subset of the task's primary metric,
mean over seeds, checked against values computed by hand."""

from __future__ import annotations

from robustfusion.reporting.headline import headline_lines, headline_text


def _row(model, seed, subset, metric, value, protocol="subsets", level=None):
    return {"dataset": "d", "model": model, "seed": seed, "protocol": protocol, "level": level, "subset": subset,
            "split": "test", "metric": metric, "value": value}


def test_regression_worst_is_the_largest_mae_and_values_are_seed_means():
    rows = [_row("m", s, sub, "MAE", v) for s, vals in [(0, (0.5, 1.0, 2.0)), (1, (0.7, 1.4, 1.0))]
            for sub, v in zip(("a", "b", "a+b"), vals)]
    rows += [_row("m", 0, "a", "Corr", 0.9), _row("m", 0, None, "MAE", 9.0, protocol="sample_rate", level=0.5)]
    assert headline_lines(rows) == [
        "m on d (test, 2 seeds), MAE (lower is better): all of a+b 1.500; worst subset a+b 1.500"]
    rows = [r for r in rows if not (r["subset"] == "a+b" and r["seed"] == 0)] + [_row("m", 0, "a+b", "MAE", 0.2)]
    # a+b: (0.2 + 1.0) / 2 = 0.6; worst: b (1.0 + 1.4) / 2 = 1.2
    assert headline_lines(rows) == ["m on d (test, 2 seeds), MAE (lower is better): all of a+b 0.600; worst subset b 1.200"]


def test_classification_worst_is_the_smallest_accuracy_and_each_model_gets_a_line():
    rows = [_row(m, 0, sub, "Acc", v) for m, vals in [("x", (0.9, 0.3, 0.8)), ("oracle", (0.95, 0.5, 0.97))]
            for sub, v in zip(("text", "audio", "text+audio"), vals)]
    text = headline_text(rows, "OUT/table.md")
    assert text.splitlines() == [
        "x on d (test, 1 seed), Acc (higher is better): all of text+audio 0.800; worst subset audio 0.300",
        "oracle on d (test, 1 seed), Acc (higher is better): all of text+audio 0.970; worst subset audio 0.500",
        "full tables (every subset and metric, both sweeps, AUILC): OUT/table.md"]
    assert headline_lines([_row("x", 0, None, "Acc", 0.5, protocol="sample_rate", level=0.0)]) == []
