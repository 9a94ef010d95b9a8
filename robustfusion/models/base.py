"""`MultimodalModel`: what every registered model shares (modality names, task, the
all-missing rule, batch checks)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.losses.supervised import supervised_loss
from robustfusion.models.output import ModelOutput
from robustfusion.tasks import TASKS

__all__ = ["MultimodalModel", "check_modality_names", "target_fallback"]


def target_fallback(task: str, targets: Tensor, num_outputs: int) -> Tensor:
    """``[K]`` prediction for a sample with no modality, from the training targets: their mean
    (regression), log class frequencies with add-one smoothing (classification), or the logit of
    each label's frequency (multilabel)."""
    if task == "regression":
        return targets.float().reshape(len(targets), -1).mean(0)
    if task == "classification":
        freq = torch.bincount(targets.long(), minlength=num_outputs).float() + 1.0
        return (freq / freq.sum()).log()
    p = targets.float().mean(0).clamp(1e-3, 1 - 1e-3)
    return (p / (1 - p)).log()


def check_modality_names(names) -> None:
    """Modality names key ``nn.ModuleDict``s: non-empty, no ``.``, not a ModuleDict attribute."""
    clash = sorted(str(k) for k in names if hasattr(nn.ModuleDict, str(k)) or "." in str(k) or not str(k))
    if clash:
        raise ValueError(f"modality names {clash} cannot be used: expected non-empty names without '.' that are "
                         "not nn.ModuleDict attributes (e.g. 'values', 'keys', 'items'); rename them")


def _cast_features_hook(model: nn.Module, args: tuple):
    """Forward pre-hook: floating features of another dtype (float16, float64, ...) are cast to
    the model's parameter dtype, so a float64 batch gives a prediction, not a dtype error."""
    if not args or not isinstance(args[0], MultimodalBatch):
        return None
    param = next(model.parameters(), None)
    if param is None:
        return None
    batch = args[0]
    wrong = {k: v for k, v in batch.inputs.items() if v.dtype.is_floating_point and v.dtype != param.dtype}
    if not wrong:
        return None
    inputs = {k: v.to(param.dtype) if k in wrong else v for k, v in batch.inputs.items()}
    return (batch.replace(inputs=inputs), *args[1:])


class MultimodalModel(nn.Module):
    """Base class of robustfusion models.

    Args:
        modality_dims: ``{name: D}`` feature size per modality (the channel count ``C`` for raw
            ``[B, T, C, H, W]`` frames); any number (>= 1) of names.
        task: ``"regression"``, ``"classification"`` or ``"multilabel"``.
        num_outputs: ``K``, the prediction size.

    Input checks (:meth:`check_batch`, at every forward): the batch must hold exactly the
    model's modalities, with its feature sizes, and at least one sample; floating features of
    another dtype are cast to the model's dtype. A modality whose frame mask has no observed
    frame counts as absent (see :class:`robustfusion.batch.MultimodalBatch`).

    All-missing rule: a sample with no modality present is predicted as the buffer
    ``fallback`` (``[K]``; zeros by default). The runner sets it to the training-set target mean
    (regression) or the training-set log class frequencies (classification) with
    :meth:`set_fallback`. Never NaN, never a crash.

    Post-hoc calibration (per presence pattern, fitted on validation) is not part of the model:
    :class:`robustfusion.calibration.CalibratedModel` wraps a trained model's predictions.

    Class attribute ``supports_latent_reuse``: ``True`` when the latent of each modality does
    not depend on which other modalities are present, so an evaluator may encode once and
    predict every modality subset from the cached latents (``encode`` /
    ``predict_from_latents``).
    """

    supports_latent_reuse: bool = False

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1) -> None:
        super().__init__()
        if not modality_dims:
            raise ValueError("modality_dims: expected at least one modality, found none")
        if task not in TASKS:
            raise ValueError(f"task: expected one of {TASKS}, found {task!r}")
        if task == "classification" and num_outputs < 2:
            raise ValueError(f"num_outputs: classification needs >= 2 classes, found {num_outputs}")
        check_modality_names(modality_dims)
        bad = {k: v for k, v in modality_dims.items() if int(v) < 1}
        if bad:
            raise ValueError(f"modality_dims: expected feature sizes >= 1, found {bad}")
        self.modality_dims = {str(k): int(v) for k, v in modality_dims.items()}
        self.modalities = tuple(self.modality_dims)
        self.task, self.num_outputs = task, int(num_outputs)
        self.register_buffer("fallback", torch.zeros(self.num_outputs))
        self.register_forward_pre_hook(_cast_features_hook)

    def set_fallback(self, value: Tensor | float) -> None:
        """Set the prediction for samples with no modality present."""
        v = torch.as_tensor(value, dtype=self.fallback.dtype).reshape(-1)
        if v.numel() not in (1, self.num_outputs):
            raise ValueError(f"fallback: expected a scalar or {self.num_outputs} values, found {v.numel()}")
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"fallback: expected finite values, found {v.tolist()}")
        self.fallback.copy_(v.to(self.fallback.device).expand(self.num_outputs))

    def check_batch(self, batch: MultimodalBatch) -> Tensor:
        """Validate that ``batch`` has exactly this model's modalities with the right feature
        sizes and at least one sample; returns the ``[B, M]`` presence mask in the model's
        modality order."""
        missing = [m for m in self.modalities if m not in batch.inputs]
        if missing:
            raise ValueError(f"batch lacks modalities {missing}; the model expects {list(self.modalities)} "
                             f"and the batch has {list(batch.modalities)} (mark absent ones in `present`)")
        extra = [m for m in batch.modalities if m not in self.modality_dims]
        if extra:
            raise ValueError(f"batch has modalities {extra} that the model does not know; the model expects "
                             f"{list(self.modalities)} (drop them from the batch, e.g. with "
                             "MultimodalDataset.select_modalities)")
        if batch.batch_size == 0:
            raise ValueError("batch: expected at least one sample, found an empty batch")
        for m, d in self.modality_dims.items():
            x = batch.inputs[m]
            if x.dim() >= 3 and x.shape[1] == 0:
                raise ValueError(f"modality {m!r}: expected at least one frame (T >= 1), found shape {tuple(x.shape)}")
            found = x.shape[2] if x.dim() == 5 else x.shape[-1]  # raw frames [B, T, C, H, W]: channels
            if found != d:
                what = "channel count" if x.dim() == 5 else "feature size"
                raise ValueError(f"modality {m!r}: expected {what} {d}, found {found} (shape {tuple(x.shape)})")
        return torch.stack([batch.present_mask(m) for m in self.modalities], dim=1)

    def apply_fallback(self, prediction: Tensor, present: Tensor) -> Tensor:
        """The final prediction: ``fallback`` for samples with no modality present."""
        none = ~present.any(dim=1, keepdim=True)
        return torch.where(none, self.fallback.to(prediction.dtype).expand_as(prediction), prediction)

    def supervised_output(self, prediction: Tensor, batch: MultimodalBatch, **fields) -> ModelOutput:
        """A :class:`ModelOutput` whose loss is the supervised loss alone (when ``batch`` has
        targets), for models without auxiliary terms. Needs ``self.regression_loss``."""
        out = ModelOutput(prediction=prediction, **fields)
        if batch.targets is not None:
            out.loss = supervised_loss(prediction, batch.targets, self.task, getattr(self, "regression_loss", "l1"))
            out.losses = {"supervised": out.loss}
        return out

    @torch.no_grad()
    def predict(self, batch: MultimodalBatch) -> Tensor:
        """``[B, K]`` predictions in eval mode, without gradients (training mode restored)."""
        was = self.training
        self.eval()
        try:
            return self(batch.replace(targets=None)).prediction
        finally:
            self.train(was)
