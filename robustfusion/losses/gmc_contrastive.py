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

One function, :func:`gmc_contrastive_loss`, returns a :class:`GMCLossOutput` (``total`` and the
per-modality ``terms``); :class:`GMCContrastiveLoss` is the ``nn.Module`` that forwards to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GMCContrastiveLoss", "GMCLossOutput", "gmc_contrastive_loss"]


@dataclass(frozen=True)
class GMCLossOutput:
    """What :func:`gmc_contrastive_loss` returns.

    Attributes:
        total: scalar ``sum_m mean_i l_{i,m}``, the loss to back-propagate (= sum of ``terms``).
        terms: ``{modality name: scalar mean_i l_{i,m}}``, in the order of ``z_modalities``
            (for logging).
    """

    total: Tensor
    terms: dict[str, Tensor]


def _check_inputs(z_joint: Tensor, z_modalities, temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, found {temperature}")
    if not isinstance(z_modalities, Mapping):
        raise ValueError(  # noqa: TRY004 - bad input is a ValueError here (CONTRIBUTING)
            f"z_modalities: expected a dict {{modality name: [B, D] tensor}}, "
            f"found {type(z_modalities).__name__}")
    if not z_modalities:
        raise ValueError("z_modalities: expected at least one modality, found none")
    if z_joint.dim() != 2:
        raise ValueError(f"z_joint: expected [B, D], found shape {tuple(z_joint.shape)}")
    for name, z in z_modalities.items():
        if z.shape != z_joint.shape:
            raise ValueError(f"z of modality {name!r}: expected shape {tuple(z_joint.shape)} (as z_joint), found {tuple(z.shape)}")


def _check_present(present, names: list[str], b: int) -> None:
    expected = f"a [B, M] = ({b}, {len(names)}) bool tensor, columns in the order of z_modalities {names}"
    if not isinstance(present, Tensor):
        raise ValueError(f"present: expected {expected}, found {type(present).__name__}")  # noqa: TRY004
    if present.dtype != torch.bool:
        raise ValueError(f"present: expected {expected}, found dtype {present.dtype}")
    if present.shape != (b, len(names)):
        raise ValueError(f"present: expected {expected}, found shape {tuple(present.shape)}")


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


def gmc_contrastive_loss(z_joint: Tensor, z_modalities: Mapping[str, Tensor], temperature: float = 0.3,
                         present: Tensor | None = None) -> GMCLossOutput:
    """GMC multimodal contrastive loss, with its per-modality terms.

    Args:
        z_joint: ``[B, D]`` joint representations (L2-normalised inside).
        z_modalities: ``{name: [B, D]}`` modality representations (L2-normalised inside).
        temperature: ``tau`` (GMC uses 0.3 on MOSI/MOSEI).
        present: optional ``[B, M]`` bool tensor, column ``j`` = the ``j``-th modality of
            ``z_modalities``; ``None`` = every modality present. A sample that lacks modality
            ``m`` takes no part in the term for ``m``: it is neither an anchor nor a negative.
            The term of ``m`` is then averaged over the ``2 n_m`` remaining anchors.

    Returns:
        :class:`GMCLossOutput`: ``terms[m] = mean_i l_{i,m}`` and ``total = sum_m terms[m]``.
        With fewer than two samples left for ``m`` the term is exactly ``0`` (with one sample
        the only other vector is its positive, ``-log 1 = 0``; with none there is nothing to
        contrast) and it passes no gradient.

    Raises:
        ValueError: ``temperature <= 0``; ``z_modalities`` not a non-empty dict; a shape other
            than ``z_joint``'s ``[B, D]``; ``present`` not a ``[B, M]`` bool tensor.

    Cost: one ``[2B, 2B]`` similarity matrix per modality, so O(B^2) memory per modality.
    """
    _check_inputs(z_joint, z_modalities, temperature)
    names = list(z_modalities)
    if present is not None:
        _check_present(present, names, z_joint.shape[0])
        present = present.to(z_joint.device)
    zj = F.normalize(z_joint, dim=-1)
    terms = {}
    for col, name in enumerate(names):
        zm = F.normalize(z_modalities[name], dim=-1)
        if present is not None:
            keep = present[:, col]
            zj_m, zm = zj[keep], zm[keep]
        else:
            zj_m = zj
        terms[name] = _nt_xent_joint(zj_m, zm, temperature)
    return GMCLossOutput(total=torch.stack(list(terms.values())).sum(), terms=terms)


class GMCContrastiveLoss(nn.Module):
    """``nn.Module`` form of :func:`gmc_contrastive_loss` holding the temperature; ``forward``
    takes ``(z_joint [B, D], {name: [B, D]}, present [B, M] bool or None)`` and returns its
    :class:`GMCLossOutput`."""

    def __init__(self, temperature: float = 0.3) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature: expected > 0, found {temperature}")
        self.temperature = temperature

    def forward(self, z_joint: Tensor, z_modalities: Mapping[str, Tensor],
                present: Tensor | None = None) -> GMCLossOutput:
        return gmc_contrastive_loss(z_joint, z_modalities, self.temperature, present)
