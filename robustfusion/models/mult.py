"""MulT: Multimodal Transformer (Tsai et al., ACL 2019, arXiv 1906.00295)."""

from __future__ import annotations

from collections.abc import Mapping

from robustfusion.batch import MultimodalBatch
from robustfusion.encoders.crossmodal import MulTEncoder
from robustfusion.heads import PredictionHead
from robustfusion.models.base import MultimodalModel
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import register_model

__all__ = ["MulT"]


@register_model("mult")
class MulT(MultimodalModel):
    """Pairwise crossmodal transformers, one stream per target modality, residual head.

    MulT (arXiv 1906.00295): "a crossmodal transformer enables one modality for receiving
    information from another modality"; for each target modality the crossmodal outputs from
    every other modality are concatenated, passed through a self-attention transformer, and the
    last elements of all streams are concatenated and sent to a residual fully connected head
    (:class:`~robustfusion.encoders.crossmodal.MulTEncoder` +
    :class:`~robustfusion.heads.PredictionHead`). Works on sequences of different lengths
    (unaligned) and on ``[B, D]`` utterance vectors (``T = 1``). Any number ``M >= 1`` of
    modalities; the number of crossmodal transformers is ``M (M - 1)``.

    Missing-modality rule (MulT assumes complete inputs; common practice when evaluating it
    with missing modalities): the absent modality's input sequence is zero-filled through the
    presence mask and treated as a fully observed all-zero sequence; unobserved frames of
    present modalities are zeroed and masked out as attention keys. The output never depends on
    the values stored in absent modalities. A sample with no modality present gets ``fallback``.

    Args:
        modality_dims, task, num_outputs: see :class:`MultimodalModel`.
        d_model, num_heads, num_layers, dropout, attn_dropout, embed_dropout, pooling,
            conv_kernel: see :class:`~robustfusion.encoders.crossmodal.MulTEncoder`
            (defaults 32, 4, 2, 0.1, 0.1, 0.1, ``"last"``, 1).
        head_dropout: dropout in the residual head (default 0.1).
        regression_loss: ``"l1"`` (default, as MulT) or ``"mse"``.
    """

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1,
                 d_model: int = 32, num_heads: int = 4, num_layers: int = 2, dropout: float = 0.1,
                 attn_dropout: float = 0.1, embed_dropout: float = 0.1, pooling: str = "last",
                 conv_kernel: int = 1, head_dropout: float = 0.1, regression_loss: str = "l1") -> None:
        super().__init__(modality_dims, task, num_outputs)
        self.encoder = MulTEncoder(self.modality_dims, d_model=d_model, num_heads=num_heads, num_layers=num_layers,
                                   dropout=dropout, attn_dropout=attn_dropout, embed_dropout=embed_dropout,
                                   pooling=pooling, conv_kernel=conv_kernel)
        self.head = PredictionHead(self.encoder.out_dim, num_outputs, head_dropout)
        self.regression_loss = regression_loss

    def forward(self, batch: MultimodalBatch) -> ModelOutput:
        present = self.check_batch(batch)
        h = self.encoder(batch.inputs, present, {m: batch.frame_mask(m) for m in self.modalities})
        prediction = self.apply_fallback(self.head(h), present)
        return self.supervised_output(prediction, batch)
