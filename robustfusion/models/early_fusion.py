"""Early fusion baseline: concatenate the (zero-filled) modality features, then one encoder.

The "EF-LSTM" baseline of the CMU-MOSI/MOSEI literature (reported e.g. by TFN, arXiv
1707.07250, and MulT, arXiv 1906.00295): per-frame features of all modalities are
concatenated and one sequence model reads them.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from robustfusion.batch import MultimodalBatch
from robustfusion.encoders.base import create_encoder
from robustfusion.masking import masked_mean, zero_fill_sequences
from robustfusion.models.base import MultimodalModel
from robustfusion.models.output import ModelOutput
from robustfusion.models.registry import register_model

__all__ = ["EarlyFusion"]


@register_model("early_fusion")
class EarlyFusion(MultimodalModel):
    """``encoder([x_1; ...; x_M]) -> MLP head``.

    Inputs: if every modality is a sequence, features are concatenated frame by frame
    (``[B, T, sum D_m]``) and the frame mask is the union of the present modalities' observed
    frames. Sequences of different lengths (unaligned data) are, with ``unaligned="pad"``
    (default, this library's choice), zero-padded at the end to the longest ``T`` (padding
    marked unobserved) and concatenated by frame index; with ``unaligned="pool"`` each is
    mean-pooled over its observed frames and the vectors concatenated (``[B, sum D_m]``). Inputs
    that mix utterance vectors ``[B, D]`` and sequences, or are all utterance vectors, always
    take the pooled (utterance-level) path.

    Missing-modality rule (common practice for early fusion): the absent modality's input
    features are zero-filled -- through the presence mask, never by trusting the stored values --
    as are unobserved frames of present modalities. With ``append_mask=True`` the presence mask
    is also appended to the features so the encoder can tell "absent" from "zero". The output
    never depends on the values stored in absent modalities; a sample with no modality present
    gets ``fallback``.

    Args:
        modality_dims, task, num_outputs: see :class:`MultimodalModel`.
        encoder: registered encoder for the fused input (default ``"gru"``; ``[B, D]`` inputs
            are read as ``T = 1``).
        hidden_dim: encoder output size (default 64).
        encoder_kwargs: extra encoder arguments.
        append_mask: append the ``[M]`` presence mask to every frame (default ``False``).
        unaligned: ``"pad"`` (default) or ``"pool"``, for sequences of different lengths.
        head_dropout: dropout in the head.
        regression_loss: ``"l1"`` (default) or ``"mse"``.
    """

    def __init__(self, modality_dims: Mapping[str, int], task: str = "regression", num_outputs: int = 1,
                 encoder: str = "gru", hidden_dim: int = 64, encoder_kwargs: Mapping[str, object] | None = None,
                 append_mask: bool = False, unaligned: str = "pad", head_dropout: float = 0.1,
                 regression_loss: str = "l1") -> None:
        super().__init__(modality_dims, task, num_outputs)
        if unaligned not in ("pad", "pool"):
            raise ValueError(f"unaligned: expected 'pad' or 'pool', found {unaligned!r}")
        self.append_mask, self.unaligned = append_mask, unaligned
        in_dim = sum(self.modality_dims.values()) + (len(self.modalities) if append_mask else 0)
        self.encoder = create_encoder(encoder, in_dim=in_dim, out_dim=hidden_dim, **dict(encoder_kwargs or {}))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(head_dropout), nn.Linear(hidden_dim, hidden_dim),
                                  nn.ReLU(), nn.Linear(hidden_dim, num_outputs))
        self.regression_loss = regression_loss

    def fuse_inputs(self, batch: MultimodalBatch, present: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(x, mask)``: the zero-filled concatenated input ``[B, T, sum D]`` with its ``[B, T]``
        frame mask, or ``[B, sum D]`` with ``None``."""
        seqs, masks = zero_fill_sequences({m: batch.inputs[m] for m in self.modalities}, present,
                                          {m: batch.frame_mask(m) for m in self.modalities})
        raw = [batch.inputs[m] for m in self.modalities]
        lengths = {x.shape[1] for x in raw if x.dim() == 3}
        sequences = all(x.dim() == 3 for x in raw) and (len(lengths) == 1 or self.unaligned == "pad")
        w = present.to(raw[0].dtype)
        if sequences:
            t = max(lengths)
            padded, observed = [], []
            for i, m in enumerate(self.modalities):
                extra = t - seqs[m].shape[1]
                padded.append(F.pad(seqs[m], (0, 0, 0, extra)))
                # absent modalities add no observed frame; padding is unobserved
                observed.append(F.pad(masks[m] & present[:, i : i + 1], (0, extra), value=False))
            x = torch.cat(padded, dim=-1)
            mask = torch.stack(observed).any(0)
            if self.append_mask:
                x = torch.cat([x, w.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)
            return x, mask
        pooled = [masked_mean(seqs[m], masks[m]) for m in self.modalities]
        x = torch.cat(pooled + ([w] if self.append_mask else []), dim=-1)
        return x, None

    def forward(self, batch: MultimodalBatch) -> ModelOutput:
        present = self.check_batch(batch)
        x, mask = self.fuse_inputs(batch, present)
        prediction = self.apply_fallback(self.head(self.encoder(x, mask)), present)
        return self.supervised_output(prediction, batch)
