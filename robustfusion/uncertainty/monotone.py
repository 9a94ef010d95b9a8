"""CML's principle: confidence must not rise when a modality is removed.

Ma et al., "Calibrating Multimodal Learning" (ICML 2023, arXiv 2306.01265): "the confidence of a
multimodal model should not increase when one modality is removed". :func:`violation_rate` is the
share of (sample, S, T) with ``T`` a proper subset of ``S`` where the confidence given ``T`` is above
the confidence given ``S`` (the issue's ``VRR``). For regression the confidence is the negative
interval width; for classification the top-class probability.

:func:`monotone_probabilities` repairs a classifier per sample, this library's choice: patterns are
visited smallest first, and where the top-class probability given ``S`` is below that of one of its
proper subsets (already repaired), ``S``'s probabilities are sharpened (``softmax(beta * log p)``,
``beta >= 1``) until they match. Sharpening never changes the predicted class, and a pattern's
repaired probabilities only need its own modalities (every subset of a present pattern can be
computed by dropping more), so the repair is usable at prediction time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["monotone_probabilities", "repaired_rows", "violation_rate"]

Pattern = tuple[str, ...]


def _proper_pairs(patterns) -> list[tuple[Pattern, Pattern]]:
    """Every ``(S, T)`` with ``T`` a proper subset of ``S``."""
    return [(s, t) for s in patterns for t in patterns if set(t) < set(s)]


def violation_rate(confidence: Mapping[Pattern, Tensor], tol: float = 1e-9) -> dict[str, float]:
    """Share of (sample, S, T), ``T ⊊ S``, with ``confidence[T] > confidence[S] + tol``.

    Args:
        confidence: ``{pattern: [N]}`` per-sample confidence under each pattern (same samples).
        tol: differences at or below it are ties (floating-point noise is no violation).

    Returns:
        ``{"VRR": share, "violations": count, "pairs": count of (sample, S, T)}``; ``VRR`` is NaN
        when there is no nested pair.
    """
    conf = {p: torch.as_tensor(c, dtype=torch.float64).reshape(-1) for p, c in confidence.items()}
    sizes = {c.shape[0] for c in conf.values()}
    if len(sizes) > 1:
        raise ValueError(f"confidence: expected the same samples under every pattern, found lengths {sorted(sizes)}")
    n = sizes.pop() if sizes else 0
    pairs = _proper_pairs(conf)
    bad = sum(int((conf[t] > conf[s] + tol).sum()) for s, t in pairs)
    total = len(pairs) * n
    return {"VRR": bad / total if total else float("nan"), "violations": float(bad), "pairs": float(total)}


def _sharpen_to(p: Tensor, target: Tensor, iters: int = 60) -> Tensor:
    """Rows of ``p`` ``[n, C]`` sharpened (``softmax(beta * log p)``) until the top equals ``target`` ``[n]``."""
    logp = p.clamp_min(1e-300).log()

    def top(beta: Tensor) -> Tensor:
        return torch.softmax(beta[:, None] * logp, dim=1).max(dim=1).values

    lo = torch.ones(p.shape[0], dtype=p.dtype)
    hi = torch.full_like(lo, 2.0)
    for _ in range(40):  # grow the bracket (a tie for the top can cap it below the target)
        short = top(hi) < target
        if not bool(short.any()):
            break
        hi = torch.where(short, hi * 2, hi)
    for _ in range(iters):
        mid = (lo + hi) / 2
        below = top(mid) < target
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return torch.softmax(hi[:, None] * logp, dim=1)


def monotone_probabilities(probs: Mapping[Pattern, Tensor]) -> dict[Pattern, Tensor]:
    """Probabilities ``{pattern: [N, C]}`` repaired so that no sample's top-class probability rises
    from a pattern to one of its proper subsets (see the module docstring); argmax unchanged."""
    out: dict[Pattern, Tensor] = {}
    for s in sorted(probs, key=len):
        p = torch.as_tensor(probs[s], dtype=torch.float64)
        subs = [out[t] for t in out if set(t) < set(s)]
        if subs:
            need = torch.stack([q.max(dim=1).values for q in subs]).max(dim=0).values
            low = p.max(dim=1).values < need
            if bool(low.any()):
                p = p.clone()
                p[low] = _sharpen_to(p[low], need[low])
        out[s] = p
    return out


def repaired_rows(probs: Tensor, repaired: Mapping[Pattern, Tensor], present: Tensor,
                  modalities: Sequence[str]) -> Tensor:
    """``probs`` ``[N, C]`` with each row ``i`` replaced by ``repaired[P][i]``, ``P`` the modalities
    present in row ``i`` of ``present`` ``[N, M]`` (rows whose pattern ``repaired`` lacks are kept)."""
    out = probs.clone()
    for i, row in enumerate(present.bool().cpu().tolist()):
        pattern = tuple(m for m, on in zip(modalities, row) if on)
        if pattern in repaired:
            out[i] = repaired[pattern][i]
    return out
