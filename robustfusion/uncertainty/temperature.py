"""Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017,
arXiv 1706.04599): "a single scalar parameter T > 0 for all classes ... T is optimized with respect
to NLL on the validation set". Dividing the logits by ``T`` never changes the argmax.

:func:`fit_bias_and_temperature` adds a class bias fitted with the temperature (bias-corrected
temperature scaling, Alexandari et al., ICML 2020, arXiv 1901.06852), which does move the argmax."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fit_bias_and_temperature", "fit_temperature"]


def _logits_and_labels(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """``([n, C] float64 logits, [n] labels)``, or a ``ValueError`` naming what was found."""
    z = torch.as_tensor(logits, dtype=torch.float64).detach()
    y = torch.as_tensor(labels).long().reshape(-1)
    if z.dim() != 2 or z.shape[0] != y.shape[0] or z.shape[0] == 0:
        raise ValueError(f"logits/labels: expected [n, C] and [n] with n >= 1, found {tuple(z.shape)} "
                         f"and {tuple(y.shape)}")
    if bool((y < 0).any()) or bool((y >= z.shape[1]).any()):
        raise ValueError(f"labels: expected classes in [0, {z.shape[1] - 1}], found [{int(y.min())}, {int(y.max())}]")
    return z, y


def _fit(z: Tensor, y: Tensor, bias: Tensor | None, l2: float, max_iter: int) -> float:
    """Minimise ``NLL(softmax(z / T [+ bias]), y) [+ l2 |bias|^2]`` over ``log T`` (and ``bias``,
    updated in place) with L-BFGS from ``T = 1``; returns ``T`` clamped to ``[0.05, 100]``."""
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    params = [log_t] if bias is None else [log_t, bias]
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        scaled = z / log_t.exp()
        if bias is None:
            loss = torch.nn.functional.cross_entropy(scaled, y)
        else:
            loss = torch.nn.functional.cross_entropy(scaled + bias, y) + l2 * (bias ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)  # LBFGS runs the closure with gradients on, inside no_grad too
    return float(log_t.detach().exp().clamp(0.05, 100.0))


def fit_temperature(logits: Tensor, labels: Tensor, max_iter: int = 100) -> float:
    """The ``T > 0`` minimising ``NLL(softmax(logits / T), labels)`` on ``logits`` ``[n, C]``.

    Optimised over ``log T`` with L-BFGS in float64, starting from ``T = 1``. The result is
    clamped to ``[0.05, 100]``.

    Raises:
        ValueError: shapes that do not match, no sample, labels out of range.
    """
    z, y = _logits_and_labels(logits, labels)
    return _fit(z, y, None, 0.0, max_iter)


def fit_bias_and_temperature(logits: Tensor, labels: Tensor, l2: float = 0.0, max_iter: int = 200
                             ) -> tuple[Tensor, float]:
    """``(c, T)`` minimising ``NLL(softmax(logits / T + c), labels) + l2 * |c|^2`` (float64,
    L-BFGS from ``T = 1``, ``c = 0``; ``c`` centred, ``T`` clamped to ``[0.05, 100]``)."""
    z, y = _logits_and_labels(logits, labels)
    c = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    t = _fit(z, y, c, l2, max_iter)
    bias = c.detach()
    return bias - bias.mean(), t
