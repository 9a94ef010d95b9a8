"""``predictions.npz``: one evaluation's per-condition predictions, kept so that ``report`` can
compare models with intervals (:mod:`robustfusion.comparisons`) long after the runs finished.

``robustfusion evaluate`` writes it beside ``robustness.csv``. It holds, for one model and one
seed on one split: ``pred_<i>`` (``[N, K]`` float32, the predictions under condition ``i``),
``conditions`` (JSON: ``[[protocol, level, subset], ...]`` in the order of ``i``), ``targets``,
``groups`` (the dataset's group of each sample as text, for the group bootstrap) and ``meta``
(JSON: dataset, task, model, seed, split). The arrays are plain numbers and text: read with
``allow_pickle=False``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustfusion.io import atomic_write

__all__ = ["PREDICTIONS_FILE", "EvalPredictions", "read_predictions", "write_predictions"]

PREDICTIONS_FILE = "predictions.npz"


@dataclass(frozen=True)
class EvalPredictions:
    """One ``predictions.npz``: ``{(protocol, level, subset): [N, K]}`` with its targets and groups."""

    dataset: str
    task: str
    model: str
    seed: int
    split: str
    predictions: dict[tuple, np.ndarray]
    targets: np.ndarray
    groups: list[str]


def write_predictions(path: str | Path, predictions: Mapping[tuple, object], targets, groups: Sequence | None, *,
                      dataset: str, task: str, model: str, seed: int, split: str) -> Path:
    """Write ``path`` atomically (a kill leaves the old file or the new one)."""
    conditions = list(predictions)
    targets = np.asarray(targets)
    n = targets.shape[0]
    groups = [str(g) for g in groups] if groups is not None else [str(i) for i in range(n)]
    arrays = {f"pred_{i}": np.asarray(predictions[c], dtype=np.float32) for i, c in enumerate(conditions)}
    arrays.update(conditions=np.array(json.dumps([list(c) for c in conditions])), targets=targets,
                  groups=np.array(groups, dtype=str),
                  meta=np.array(json.dumps({"dataset": dataset, "task": task, "model": model, "seed": int(seed), "split": split})))

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: savez would append .npz to a name
            np.savez_compressed(f, **arrays)

    return atomic_write(path, write)


def read_predictions(path: str | Path) -> EvalPredictions:
    """Read a file written by :func:`write_predictions`; anything else is a ``ValueError`` naming
    what was expected and what was found."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        missing = {"conditions", "targets", "groups", "meta"} - set(z.files)
        if missing:
            raise ValueError(f"{path}: expected a robustfusion predictions file with conditions, targets, groups "
                             f"and meta; found the arrays {sorted(z.files)} (missing {sorted(missing)})")
        conditions = [tuple(c) for c in json.loads(str(z["conditions"]))]
        meta = json.loads(str(z["meta"]))
        preds = {c: z[f"pred_{i}"] for i, c in enumerate(conditions)}
        return EvalPredictions(dataset=meta["dataset"], task=meta["task"], model=meta["model"], seed=int(meta["seed"]),
                               split=meta["split"], predictions=preds, targets=z["targets"],
                               groups=[str(g) for g in z["groups"]])
