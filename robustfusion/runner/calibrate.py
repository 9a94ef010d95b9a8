"""A post-hoc fit of a model's partial-fusion weights on the validation split
(:func:`calibrate_partial_fusion`; the calibrators that wrap a model's predictions, such as the
presence read-out, are in :mod:`robustfusion.calibration`).

A network trained once on a small dataset learns, from its training data, how much to trust each
modality, and a weak modality looks more useful there than it is on new speakers (it can
memorise who is talking). Ridge regression per subset picks its penalty on validation data;
this is the one-model analogue: with every other weight frozen, the few parameters of the
model's ``partial_fusion`` layer (one logit per modality for ``weighted_mean``) are fitted on the
validation split to the model's own supervised loss, averaged over every modality subset with at
least two modalities (single modalities do not depend on them). Deterministic: full-batch Adam
from the trained values on latents encoded once (once per subset for models whose latents
depend on which modalities are present).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import all_subsets, keep_subset
from robustfusion.losses.supervised import supervised_loss

__all__ = ["calibrate_partial_fusion", "check_calibratable"]


def check_calibratable(model: nn.Module) -> nn.Module:
    """``model.partial_fusion`` if it can be calibrated, else a ``ValueError`` saying why."""
    fusion = getattr(model, "partial_fusion", None)
    params = [] if fusion is None else list(fusion.parameters())
    if not params or not all(hasattr(model, f) for f in ("encode", "predict_from_latents")):
        raise ValueError(
            "train.calibrate_fusion: expected a model with a learnable partial_fusion layer and "
            "encode/predict_from_latents (gmc or gmc_pf with model.params.partial_fusion=weighted_mean), "
            f"found {type(model).__name__} with partial_fusion={type(fusion).__name__ if fusion is not None else None}")
    return fusion


def _subset_latents(model: nn.Module, dataset: MultimodalDataset, subset: tuple[str, ...], batch_size: int,
                    device: torch.device) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    zs, joints, presents = [], [], []
    for batch in dataset.batches(batch_size):
        b = keep_subset(batch.replace(targets=None), subset).to(device)
        z, z_joint = model.encode(b)
        zs.append(z)
        joints.append(z_joint)
        presents.append(model.check_batch(b))
    return ({m: torch.cat([z[m] for z in zs]) for m in zs[0]}, torch.cat(joints), torch.cat(presents))


def calibrate_partial_fusion(model: nn.Module, dataset: MultimodalDataset, *, steps: int = 300, lr: float = 0.05,
                             batch_size: int = 256, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Fit ``model.partial_fusion``'s parameters on ``dataset`` (see the module docstring).

    Returns ``{"loss_before", "loss_after", "parameters"}`` (the mean validation loss over the
    subsets before and after, and the fitted values). The model is left in eval mode with
    ``requires_grad`` restored.

    Raises:
        ValueError: the model has no learnable ``partial_fusion`` layer, or ``dataset`` has
            fewer than two modalities.
    """
    fusion = check_calibratable(model)
    subsets = [s for s in all_subsets(dataset.modalities) if len(s) > 1]
    if not subsets:
        raise ValueError(f"train.calibrate_fusion: expected at least two modalities, found {list(dataset.modalities)}")
    device = torch.device(device)
    model.to(device).eval()
    targets = dataset.targets.to(device)
    with torch.no_grad():
        if getattr(type(model), "supports_latent_reuse", False):  # z_m independent of the others: encode once
            z, z_joint, present = _subset_latents(model, dataset, tuple(dataset.modalities), batch_size, device)
            cached = [(z, z_joint, present & torch.tensor([m in s for m in model.modalities], device=device))
                      for s in subsets]
        else:  # gmc_pf: the latents depend on which modalities are present
            cached = [_subset_latents(model, dataset, s, batch_size, device) for s in subsets]
    regression_loss = getattr(model, "regression_loss", "l1")

    def loss() -> torch.Tensor:
        return torch.stack([supervised_loss(model.predict_from_latents(z, zj, present), targets, model.task,
                                            regression_loss) for z, zj, present in cached]).mean()

    was = {n: p.requires_grad for n, p in model.named_parameters()}
    params = list(fusion.parameters())
    own = {id(p) for p in params}
    try:
        for p in model.parameters():
            p.requires_grad_(id(p) in own)
        opt = torch.optim.Adam(params, lr=lr)
        with torch.no_grad():
            before = float(loss())
        for _ in range(steps):
            opt.zero_grad()
            value = loss()
            value.backward()
            opt.step()
        with torch.no_grad():
            after = float(loss())
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(was[n])
            p.grad = None
    return {"loss_before": before, "loss_after": after,
            "parameters": {n: p.detach().cpu().tolist() for n, p in fusion.named_parameters()}}
