"""Inverted dropout drawn from 16-bit random integers: the same distribution as
:func:`torch.nn.functional.dropout` at a rate rounded to a multiple of ``2^-16``, about twice as
fast on CPU.

Dropout is most of the elementwise work of a small transformer on a CPU (GMC's affect model
draws about 20 million keep/drop decisions per training step), and its cost is the random
numbers: ``F.dropout`` draws one ``bernoulli_`` sample per element and ``torch.rand`` one float.
Here one 64-bit draw gives four 16-bit integers ``u`` uniform on ``{0, ..., 65535}``, and an
element is kept when ``u >= round(p * 65536)``: kept with probability exactly
``1 - p'``, ``p' = round(p * 65536) / 65536`` (``|p' - p| <= 2^-17``: 0.25 and 0.5 are exact,
0.1 becomes 0.1000061), and kept elements are scaled by ``1 / (1 - p')`` so the expectation is
unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["dropout", "effective_rate", "relu_dropout"]

_LEVELS = 1 << 16


def effective_rate(p: float) -> float:
    """The rate :func:`dropout` applies for a requested rate ``p``: ``round(p * 2^16) / 2^16``."""
    return round(p * _LEVELS) / _LEVELS


def _keep(x: Tensor, threshold: int) -> Tensor:
    """Boolean ``Bernoulli(1 - threshold / 2^16)`` draws of ``x``'s shape: four per 64-bit word."""
    n = x.numel()
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
    u = words.view(torch.int16)[:n].view(x.shape)  # uniform on [-32768, 32767]
    return u >= threshold - _LEVELS // 2


def _threshold(p: float) -> int:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1], found {p}")
    return round(p * _LEVELS)


def _drop(x: Tensor, p: float, training: bool, relu: bool) -> Tensor:
    threshold = _threshold(p)
    if not training or threshold == 0:
        return F.relu(x) if relu else x
    if threshold == _LEVELS:
        return x * 0.0
    keep = _keep(x, threshold)
    if relu:
        keep.logical_and_(x.detach() > 0)
    return x * keep.to(x.dtype).mul_(_LEVELS / (_LEVELS - threshold))


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``x * keep / (1 - p')`` with ``keep ~ Bernoulli(1 - p')`` per element (see the module)."""
    return _drop(x, p, training, relu=False)


def relu_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``dropout(relu(x))`` as one multiplication: ``x * ((x > 0) & keep) / (1 - p')``.

    The same values and gradients as the two steps (ReLU's gradient at 0 is 0 in both), one pass
    over ``x`` and its gradient instead of three.
    """
    return _drop(x, p, training, relu=True)
