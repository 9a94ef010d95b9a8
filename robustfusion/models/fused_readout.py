"""`FusedReadoutModel`: encode every modality, fuse the embeddings in one layer, read out.

What TFN and LMF share: one encoder per modality, a fusion layer that takes the embeddings and the
presence mask (absent embeddings zero-filled by the layer), a read-out network on the fused vector,
and the model's all-missing fallback.
"""

from __future__ import annotations

from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.models.base import MultimodalModel
from robustfusion.models.output import ModelOutput

__all__ = ["FusedReadoutModel"]


class FusedReadoutModel(MultimodalModel):
    """Subclasses build ``self.encoders`` (``nn.ModuleDict``), ``self.fusion`` and return their
    read-out network from :meth:`readout` (kept under each model's own attribute name, so saved
    weights keep their keys)."""

    encoders: nn.ModuleDict
    fusion: nn.Module

    def readout(self) -> nn.Module:
        """The network from the fused vector to the ``[B, K]`` prediction."""
        raise NotImplementedError

    def fuse(self, batch: MultimodalBatch, present: Tensor) -> Tensor:
        """``[B, F]`` fused vector of the batch's embeddings (absent ones zero-filled by the layer)."""
        h = {m: enc(batch.inputs[m], batch.frame_mask(m)) for m, enc in self.encoders.items()}
        return self.fusion(h, present)

    def forward(self, batch: MultimodalBatch) -> ModelOutput:
        present = self.check_batch(batch)
        prediction = self.apply_fallback(self.readout()(self.fuse(batch, present)), present)
        return self.supervised_output(prediction, batch)
