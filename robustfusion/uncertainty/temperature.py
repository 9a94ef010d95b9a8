"""Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017,
arXiv 1706.04599): "a single scalar parameter T > 0 for all classes ... T is optimized with respect
to NLL on the validation set". Dividing the logits by ``T`` never changes the argmax."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["fit_temperature"]


def fit_temperature(logits: Tensor, labels: Tensor, max_iter: int = 100) -> float:
    """The ``T > 0`` minimising ``NLL(softmax(logits / T), labels)`` on ``logits`` ``[n, C]``.

    Optimised over ``log T`` with L-BFGS in float64, starting from ``T = 1``. The result is
    clamped to ``[0.05, 100]``.

    Raises:
        ValueError: shapes that do not match, no sample, labels out of range.
    """
    z = torch.as_tensor(logits, dtype=torch.float64).detach()
    y = torch.as_tensor(labels).long().reshape(-1)
    if z.dim() != 2 or z.shape[0] != y.shape[0] or z.shape[0] == 0:
        raise ValueError(f"logits/labels: expected [n, C] and [n] with n >= 1, found {tuple(z.shape)} "
                         f"and {tuple(y.shape)}")
    if bool((y < 0).any()) or bool((y >= z.shape[1]).any()):
        raise ValueError(f"labels: expected classes in [0, {z.shape[1] - 1}], found [{int(y.min())}, {int(y.max())}]")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 100.0))
