"""GMC's multimodal contrastive loss (Poklukar et al., ICML 2022, arXiv 2202.03390).

For each modality ``m`` GMC contrasts the joint representation with the modality's one:
"the positive pairs are (z_joint^i, z_m^i) ... and all the other 2(B - 1) representations in
the batch are negatives" (NT-Xent over the ``2B`` vectors ``[z_joint; z_m]``). With cosine
similarity ``s`` and temperature ``tau``, for anchor ``i`` of those ``2B`` vectors::

    l_{i,m} = -log( exp(s(z_joint^i, z_m^i)/tau) / sum_{k != i} exp(s(v_i, v_k)/tau) )

(the denominator runs over all other ``2B - 1`` vectors of the anchor's row, the positive
included), and the loss is ``sum_m mean_i l_{i,m}``: terms summed over modalities and
averaged over the ``2B`` anchors, exactly the contrastive part of
``SuperGMC.super_gmc_loss`` in the reference code ``miguelsvasco/gmc``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GMCContrastiveLoss", "GMCLossOutput", "gmc_contrastive_loss", "gmc_contrastive_terms"]


def _as_named(z_modalities: Mapping[str, Tensor] | Sequence[Tensor]) -> dict[str, Tensor]:
    if isinstance(z_modalities, Mapping):
        return dict(z_modalities)
    return {str(i): z for i, z in enumerate(z_modalities)}


def _present_columns(present, names: list[str], b: int, device) -> list[Tensor | None]:
    if present is None:
        return [None] * len(names)
    if isinstance(present, Mapping):
        unknown = sorted(set(present) - set(names))
        if unknown:
            raise ValueError(f"present names unknown modalities {unknown}; expected some of {names}")
        cols: list[Tensor | None] = []
        for n in names:
            if n not in present:
                cols.append(None)
                continue
            col = torch.as_tensor(present[n], device=device).bool()
            if col.shape != (b,):
                raise ValueError(f"present of {n!r}: expected shape ({b},), found {tuple(col.shape)}")
            cols.append(col)
        return cols
    present = torch.as_tensor(present, device=device).bool()
    if present.shape != (b, len(names)):
        raise ValueError(f"present: expected shape ({b}, {len(names)}), found {tuple(present.shape)}")
    return [present[:, i] for i in range(len(names))]


def _nt_xent_joint(zj: Tensor, zm: Tensor, temperature: float) -> Tensor:
    """Mean over the ``2n`` anchors of NT-Xent between ``zj`` and ``zm`` (``[n, D]`` each, unit norm)."""
    n = zj.shape[0]
    if n < 2:
        return zj.sum() * 0.0 + zm.sum() * 0.0
    v = torch.cat([zj, zm], dim=0)  # [2n, D]
    sim = v @ v.t() / temperature  # [2n, 2n]
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=v.device), float("-inf"))
    pos = (zj * zm).sum(dim=-1) / temperature  # [n]
    return (torch.logsumexp(sim, dim=1) - torch.cat([pos, pos])).mean()


def gmc_contrastive_terms(z_joint: Tensor, z_modalities: Mapping[str, Tensor] | Sequence[Tensor],
                          temperature: float = 0.3,
                          present: Tensor | Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
    """The per-modality terms ``mean_i l_{i,m}`` of :func:`gmc_contrastive_loss`, by name
    (positional inputs are named ``"0"``, ``"1"``, ...)."""
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, found {temperature}")
    named = _as_named(z_modalities)
    if not named:
        raise ValueError("z_modalities: expected at least one modality, found none")
    if z_joint.dim() != 2:
        raise ValueError(f"z_joint: expected [B, D], found shape {tuple(z_joint.shape)}")
    for name, z in named.items():
        if z.shape != z_joint.shape:
            raise ValueError(f"z of modality {name!r}: expected shape {tuple(z_joint.shape)} (as z_joint), found {tuple(z.shape)}")
    zj = F.normalize(z_joint, dim=-1)
    cols = _present_columns(present, list(named), z_joint.shape[0], z_joint.device)
    terms = {}
    for (name, z), keep in zip(named.items(), cols):
        zm = F.normalize(z, dim=-1)
        if keep is not None:
            zj_m, zm = zj[keep], zm[keep]
        else:
            zj_m = zj
        terms[name] = _nt_xent_joint(zj_m, zm, temperature)
    return terms


def gmc_contrastive_loss(z_joint: Tensor, z_modalities: Mapping[str, Tensor] | Sequence[Tensor],
                         temperature: float = 0.3,
                         present: Tensor | Mapping[str, Tensor] | None = None) -> Tensor:
    """GMC multimodal contrastive loss (scalar).

    Args:
        z_joint: ``[B, D]`` joint representations (L2-normalised inside).
        z_modalities: ``{name: [B, D]}`` (or a sequence) of modality representations.
        temperature: ``tau`` (GMC uses 0.3 on MOSI/MOSEI).
        present: optional ``[B, M]`` bool (order of ``z_modalities``) or ``{name: [B]}``. A
            sample that lacks modality ``m`` takes no part in the term for ``m``: it is
            neither an anchor nor a negative. The term of ``m`` is then averaged over the
            ``2 n_m`` remaining anchors.

    Returns:
        ``sum_m mean_i l_{i,m}``. With fewer than two samples left for ``m`` the term is
        exactly ``0`` (with one sample the only other vector is its positive, ``-log 1 = 0``;
        with none there is nothing to contrast) and it passes no gradient.

    Cost: one ``[2B, 2B]`` similarity matrix per modality, so O(B^2) memory per modality.
    """
    terms = gmc_contrastive_terms(z_joint, z_modalities, temperature, present)
    return torch.stack(list(terms.values())).sum()


@dataclass
class GMCLossOutput:
    """``total`` = sum of ``terms`` (one scalar per modality)."""

    total: Tensor
    terms: dict[str, Tensor]


class GMCContrastiveLoss(nn.Module):
    """Module form of :func:`gmc_contrastive_loss` that also returns the per-modality terms."""

    def __init__(self, temperature: float = 0.3) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature: expected > 0, found {temperature}")
        self.temperature = temperature

    def forward(self, z_joint: Tensor, z_modalities: Mapping[str, Tensor] | Sequence[Tensor],
                present: Tensor | Mapping[str, Tensor] | None = None) -> GMCLossOutput:
        terms = gmc_contrastive_terms(z_joint, z_modalities, self.temperature, present)
        return GMCLossOutput(total=torch.stack(list(terms.values())).sum(), terms=terms)
