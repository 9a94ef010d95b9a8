"""Per-pattern class biases (``class_bias``): the class priors of new speakers or sessions.

A classifier trained on some sessions carries their class frequencies in its logits; a new
session has others (IEMOCAP's sessions differ in how much anger or sadness they hold), and which
modalities are present changes how strongly the logits express those priors. ``class_bias``
adds, for each presence pattern ``s``, a vector ``b_s`` (``[K]``) to the logits of a sample with
pattern ``s``. It is fitted on the validation split with the temperature (bias-corrected
temperature scaling, as in Alexandari et al., ICML 2020, arXiv 1901.06852): ``(T_s, c_s)``
minimise ``NLL(softmax(z / T_s + c_s))`` per pattern, and ``b_s = T_s c_s``, so that a later
``temperature_sets`` on ``z + b_s`` finds ``T_s`` again. Unlike a temperature it moves the
argmax, so accuracy and F1 change with it; ``l2`` (on ``c_s``) keeps a pattern with few
validation samples near the model's own priors. Classification only; the identity until fitted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from robustfusion.calibration.base import (
    Calibrated,
    Calibrator,
    presence_codes,
    register_calibrator,
)
from robustfusion.calibration.patterns import by_code
from robustfusion.uncertainty import fit_bias_and_temperature

__all__ = ["ClassBias"]


@register_calibrator("class_bias")
class ClassBias(Calibrator):
    """``logits + b_s`` per presence pattern ``s`` (module docstring). Buffer ``bias`` ``[2^M, K]``.

    Args:
        num_modalities, num_outputs: ``M``, ``K`` (classes).
        l2: the penalty on the bias (in units of the tempered logits) while fitting.
    """

    tasks = ("classification",)

    def __init__(self, num_modalities: int, num_outputs: int, l2: float = 0.01) -> None:
        super().__init__(num_modalities, num_outputs)
        if float(l2) < 0:
            raise ValueError(f"class_bias: l2 expected >= 0, found {l2}")
        self.l2 = float(l2)
        self.register_buffer("bias", torch.zeros(2 ** num_modalities, num_outputs))

    def params(self) -> dict[str, Any]:
        return {**super().params(), "l2": self.l2}

    def apply(self, output: Calibrated, present: Tensor) -> Calibrated:
        p = output.prediction
        return output.with_fields(prediction=p + self.bias[presence_codes(present)].to(p.dtype))

    @torch.no_grad()
    def fit(self, predictions: Tensor, targets: Tensor, present: Tensor, *, task: str = "classification",
            latents: Tensor | None = None) -> dict[int, dict[str, Any]]:
        """A bias per pattern in ``present`` (not the empty one) on its rows; every other pattern
        keeps none. Returns ``{code: {"n", "bias", "temperature"}}``."""
        self.check_task(task)
        y = targets.reshape(-1).long()
        self.bias.zero_()
        out: dict[int, dict[str, Any]] = {}
        for code, rows in by_code(presence_codes(present.cpu())).items():
            if code == 0:
                continue
            c, t = fit_bias_and_temperature(predictions[rows], y[rows], self.l2)
            self.bias[code] = (t * c).to(self.bias)
            out[code] = {"n": len(rows), "bias": self.bias[code].tolist(), "temperature": t}
        return out
