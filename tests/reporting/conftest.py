"""Hand-made long-format rows with known means, stds and winners."""

from __future__ import annotations

import pytest

from robustfusion.robustness import summary_rows

SUBSETS = ["text", "audio", "text+audio"]
LEVELS = [0.0, 0.5, 1.0]


def make_rows() -> list[dict]:
    """Models a (better on text) and b (better on audio), seeds 0 and 1, plus an oracle that
    beats both everywhere. Acc values: a = base + seed/100, b = other base + seed/100."""
    rows = []
    base = {"a": {"text": 0.80, "audio": 0.60, "text+audio": 0.85},
            "b": {"text": 0.70, "audio": 0.65, "text+audio": 0.85},
            "oracle": {"text": 0.95, "audio": 0.90, "text+audio": 0.99}}
    curve = {"a": [0.85, 0.70, 0.50], "b": [0.84, 0.72, 0.50], "oracle": [0.99, 0.90, 0.50]}
    for model in ("a", "b", "oracle"):
        for seed in (0, 1):
            d = seed / 100 if model != "oracle" else 0.0
            common = {"dataset": "toy", "model": model, "seed": seed, "split": "test"}
            for s in SUBSETS:
                for metric, v in (("Has0_acc_2", base[model][s] + d), ("MAE", 1.0 - base[model][s] + d)):
                    rows.append({**common, "protocol": "subsets", "level": None, "subset": s, "metric": metric,
                                 "value": v})
            for p in ("sample_rate", "frame_rate"):
                for lv, v in zip(LEVELS, curve[model]):
                    for metric, val in (("Has0_acc_2", v + d), ("MAE", 1.0 - v + d)):
                        rows.append({**common, "protocol": p, "level": lv, "subset": "all", "metric": metric,
                                     "value": val})
    return rows + summary_rows(rows)


@pytest.fixture
def rows() -> list[dict]:
    return make_rows()
