"""The three task kinds of affect datasets, shared by datasets, losses, models and metrics.

* ``"regression"``: sentiment scores, predictions ``[B, 1]`` (or ``[B, K]``), targets ``[B]`` / ``[B, K]``;
* ``"classification"``: one class per sample, logits ``[B, K]``, integer targets ``[B]``;
* ``"multilabel"``: several labels per sample, logits ``[B, K]``, 0/1 targets ``[B, K]``.
"""

from __future__ import annotations

__all__ = ["TASKS"]

TASKS = ("regression", "classification", "multilabel")
