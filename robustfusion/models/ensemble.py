"""A seed ensemble: ``K`` copies of one registered model that differ only in their random
initialisation, trained side by side and predicting together.

Deep ensembles (Lakshminarayanan et al., NeurIPS 2017, arXiv 1612.01474) are the simplest
reliable way to lower the variance a small dataset puts into one network's predictions and to
improve its probabilities. In a run, ``model.ensemble: K`` wraps the configured model
(``create_model("ensemble", member=name, members=K, ...)``): every member sees the same batches,
the training loss is the mean of the members' own losses (each member trains as if alone; none
sees another's prediction), epoch selection, calibration and evaluation see the ensemble's
prediction:

* regression: the mean of the members' predictions;
* classification: the logits of the mean of the members' class probabilities
  (``log mean softmax``), so a softmax of the output is the averaged distribution;
* multilabel: the logits of the mean of the members' label probabilities.

The ensemble keeps the member's contracts: ``encode`` / ``predict_from_latents`` (the members'
latents side by side on the last dimension), and ``partial_fusion`` (every member's, so
``train.calibrate_fusion`` fits them all). Latents are re-encoded for each modality subset
(``supports_latent_reuse`` is False), which is right for members whose latents depend on what is
present and only slower for the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.models.base import MultimodalModel
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import create_model, register_model

__all__ = ["SeedEnsemble", "combine_predictions"]


def combine_predictions(predictions: list[Tensor], task: str) -> Tensor:
    """One ``[B, K]`` prediction from the members' (module docstring)."""
    stacked = torch.stack(predictions)
    if task == "classification":
        return torch.logsumexp(torch.log_softmax(stacked, dim=-1), dim=0) - math.log(len(predictions))
    if task == "multilabel":
        p = torch.sigmoid(stacked).mean(dim=0).clamp(1e-7, 1 - 1e-7)
        return torch.log(p) - torch.log1p(-p)
    return stacked.mean(dim=0)


@register_model("ensemble")
class SeedEnsemble(MultimodalModel):
    """``members`` copies of the registered model ``member`` built with ``member_params``
    (module docstring). ``members`` = 1 is the member alone, wrapped."""

    #: the keywords beyond ``member`` / ``members`` are the member's (``create_model`` checks them there)
    forwards_keywords = True

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1,
                 member: str = "gmc_pf", members: int = 3, **member_params) -> None:
        super().__init__(modality_dims, task, num_outputs)
        if member == "ensemble":
            raise ValueError("ensemble: expected a member model other than 'ensemble', found 'ensemble'")
        if not isinstance(members, int) or isinstance(members, bool) or members < 1:
            raise ValueError(f"ensemble: expected members >= 1 (an int), found {members!r}")
        self.members = nn.ModuleList(create_model(member, modality_dims=modality_dims, task=task,
                                                  num_outputs=num_outputs, **member_params) for _ in range(members))
        first = self.members[0]
        self.couples_samples = bool(getattr(first, "couples_samples", False))
        self.regression_loss = getattr(first, "regression_loss", "l1")

    @property
    def partial_fusion(self) -> nn.Module | None:
        """Every member's ``partial_fusion`` (``None`` unless each has one); not a submodule of
        the ensemble, so each weight is saved once, under its member."""
        fusions = [getattr(m, "partial_fusion", None) for m in self.members]
        return None if any(f is None for f in fusions) else nn.ModuleList(fusions)

    def set_fallback(self, value: Tensor | float) -> None:
        super().set_fallback(value)
        for m in self.members:
            m.set_fallback(value)

    def _combine(self, predictions: list[Tensor], present: Tensor) -> Tensor:
        return self.apply_fallback(combine_predictions(predictions, self.task), present)

    def encode(self, batch: MultimodalBatch) -> tuple[dict[str, Tensor], Tensor]:
        """The members' ``(z, z_joint)`` concatenated on the last dimension, member by member."""
        encoded = [m.encode(batch) for m in self.members]
        z = {name: torch.cat([e[0][name] for e in encoded], dim=-1) for name in encoded[0][0]}
        return z, torch.cat([e[1] for e in encoded], dim=-1)

    def predict_from_latents(self, z: Mapping[str, Tensor], z_joint: Tensor, present: Tensor) -> Tensor:
        k = len(self.members)
        parts = {name: v.chunk(k, dim=-1) for name, v in z.items()}
        joints = z_joint.chunk(k, dim=-1)
        return self._combine([m.predict_from_latents({name: p[i] for name, p in parts.items()}, joints[i], present)
                              for i, m in enumerate(self.members)], present)

    def forward(self, batch: MultimodalBatch) -> ModelOutput:
        present = self.check_batch(batch)
        outs = [m(batch) for m in self.members]
        out = ModelOutput(prediction=self._combine([o.prediction for o in outs], present),
                          extras={"member_predictions": [o.prediction for o in outs]})
        if batch.targets is not None:
            out.loss = torch.stack([o.loss for o in outs]).mean()
            out.losses = {k: torch.stack([o.losses[k] for o in outs]).mean() for k in outs[0].losses}
        return out
