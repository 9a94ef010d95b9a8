"""The calibrator interface: post-hoc maps of a trained model's predictions, one per presence
pattern, fitted on validation and applied by :class:`~robustfusion.calibration.CalibratedModel`.

A calibrator sees what a model predicted (``[N, K]``; optionally its latents), the targets and
the ``[N, M]`` presence mask of each sample, and learns a map per presence pattern (the patterns
are keyed by :func:`presence_codes`). It returns a :class:`Calibrated` output, so calibrators that
give intervals (conformal regression), probabilities (temperature scaling) or prediction sets fit
the same interface as the affine read-out that gives point predictions. Calibrators are
``nn.Module``\\s: their fitted state is buffers, saved with the run (``calibration.json`` +
``calibration.safetensors``, :mod:`robustfusion.calibration.store`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from robustfusion.registry import Registry

__all__ = [
    "CALIBRATORS",
    "Calibrated",
    "Calibrator",
    "CoverageCalibrator",
    "create_calibrator",
    "list_calibrators",
    "presence_codes",
    "register_calibrator",
]

#: Largest number of modalities a per-pattern table is built for (``2^M`` rows).
MAX_MODALITIES = 12


def presence_codes(present: Tensor) -> Tensor:
    """``[B]`` integer code of each row of a ``[B, M]`` presence mask: ``sum_i present_i * 2^i``."""
    weights = 2 ** torch.arange(present.shape[1], device=present.device)
    return (present.long() * weights).sum(dim=1)


@dataclass
class Calibrated:
    """What a calibrated model outputs for a batch of ``B`` samples.

    Attributes:
        prediction: ``[B, K]`` point prediction (regression value, class logits, label logits).
        lower, upper: ``[B, K]`` interval bounds (regression calibrators that give intervals).
        probabilities: ``[B, K]`` calibrated class / label probabilities.
        sets: ``[B, K]`` bool prediction sets (classification).
    """

    prediction: Tensor
    lower: Tensor | None = None
    upper: Tensor | None = None
    probabilities: Tensor | None = None
    sets: Tensor | None = None

    def with_fields(self, **fields: Tensor | None) -> Calibrated:
        """A copy with ``fields`` replaced."""
        return replace(self, **fields)


class Calibrator(nn.Module):
    """Base class: a per-presence-pattern map fitted on validation predictions.

    Subclasses set ``tasks`` (the tasks they can be fitted for), keep their fitted state in
    buffers, return their constructor arguments from :meth:`params` (stored with the run) and
    implement :meth:`fit` and :meth:`apply`.

    Args:
        num_modalities: ``M`` (at most :data:`MAX_MODALITIES`).
        num_outputs: ``K``.
    """

    #: tasks the calibrator can be fitted for
    tasks: ClassVar[tuple[str, ...]] = ("regression", "classification", "multilabel")
    #: registry name (set by :func:`register_calibrator`)
    registry_name: ClassVar[str] = ""
    #: whether :meth:`apply` changes ``prediction`` (false for calibrators that only add intervals,
    #: probabilities or sets; the evaluator applies those to the predictions it scores)
    changes_prediction: ClassVar[bool] = True

    def __init__(self, num_modalities: int, num_outputs: int) -> None:
        super().__init__()
        if not 1 <= num_modalities <= MAX_MODALITIES:
            raise ValueError(f"{type(self).__name__}: expected 1 to {MAX_MODALITIES} modalities, found {num_modalities}")
        if num_outputs < 1:
            raise ValueError(f"{type(self).__name__}: expected num_outputs >= 1, found {num_outputs}")
        self.num_modalities, self.num_outputs = int(num_modalities), int(num_outputs)

    def params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable), enough to rebuild it before loading buffers."""
        return {"num_modalities": self.num_modalities, "num_outputs": self.num_outputs}

    def check_task(self, task: str) -> None:
        """``ValueError`` unless the calibrator can be fitted for ``task``."""
        if task not in self.tasks:
            raise ValueError(f"calibrator {self.registry_name!r}: expected a task in {self.tasks}, found task={task!r}")

    def fit(self, predictions: Tensor, targets: Tensor, present: Tensor, *, task: str,
            latents: Tensor | None = None) -> dict[int, dict[str, Any]]:
        """Fit on ``[N, K]`` predictions, their targets and ``[N, M]`` presence masks (``latents``:
        ``[N, H]`` where a calibrator needs them). Returns ``{pattern code: report}``."""
        raise NotImplementedError

    def apply(self, output: Calibrated, present: Tensor) -> Calibrated:
        """``output`` of a ``[B, M]``-present batch after this calibrator (the identity until fitted)."""
        raise NotImplementedError


class CoverageCalibrator(Calibrator):
    """Base of the calibrators that add uncertainty at a nominal coverage ``level`` and leave the
    prediction (``changes_prediction = False``); ``monotone`` asks that confidence never rise when
    a modality is removed."""

    changes_prediction = False

    def __init__(self, num_modalities: int, num_outputs: int, level: float = 0.9, monotone: bool = True) -> None:
        super().__init__(num_modalities, num_outputs)
        if not 0.0 < float(level) < 1.0:
            raise ValueError(f"{self.registry_name or type(self).__name__}: level expected in (0, 1), found {level}")
        self.level, self.monotone = float(level), bool(monotone)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "level": self.level, "monotone": self.monotone}


CALIBRATORS: Registry[Calibrator] = Registry("calibrator")


def register_calibrator(name: str) -> Callable[[type[Calibrator]], type[Calibrator]]:
    """Class decorator: ``@register_calibrator("name")`` (sets the class's ``registry_name``)."""

    def deco(cls: type[Calibrator]) -> type[Calibrator]:
        cls.registry_name = name
        return CALIBRATORS.register(name)(cls)

    return deco


def create_calibrator(name: str, **params: Any) -> Calibrator:
    """The calibrator ``name`` built with ``params`` (``ValueError`` for an unknown name or parameter)."""
    return CALIBRATORS.build(name, **params)


def list_calibrators() -> list[str]:
    """Registered calibrator names, sorted."""
    return CALIBRATORS.names()
