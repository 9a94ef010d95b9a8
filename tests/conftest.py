"""Shared pytest setup.

The test tensors are tiny: one intra-op thread is several times faster than the default
(thread start-up and contention dominate) and keeps the suite fast on shared 2-core CI boxes.
Nothing may touch the network: the Hugging Face libraries are put in offline mode, and plots
use the Agg backend; text embeddings are cached in a temporary folder unless
``$ROBUSTFUSION_CACHE`` is set.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# transcript embeddings of test runs go to a throw-away cache unless the caller names one (the
# real-data tests are much faster with a filled $ROBUSTFUSION_CACHE)
if not os.environ.get("ROBUSTFUSION_CACHE"):
    import tempfile

    os.environ["ROBUSTFUSION_CACHE"] = tempfile.mkdtemp(prefix="robustfusion-test-cache-")

import torch

torch.set_num_threads(1)


def _real_dir(env_var: str, folder: str) -> Path | None:
    """``$env_var`` if it holds ``train.npz``, else ``../shared/data/<folder>`` beside the repo, else ``None``."""
    env = os.environ.get(env_var)
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / folder)
    return next((c for c in cands if (c / "train.npz").is_file()), None)


def _real_or_skip(env_var: str, folder: str, what: str) -> Path:
    d = _real_dir(env_var, folder)
    if d is None:
        pytest.skip(f"real {what} data not found: ../shared/data/{folder}/train.npz relative to the repo "
                    f"root is absent and {env_var} is not set")
    return d


def real_mosi_dir() -> Path | None:
    return _real_dir("ROBUSTFUSION_MOSI_DIR", "mosi-bclstm")


def real_iemocap_dir() -> Path | None:
    return _real_dir("ROBUSTFUSION_DATA_IEMOCAP_UTTERANCE", "iemocap-ta")


@pytest.fixture
def mosi_dir() -> Path:
    """The real CMU-MOSI utterance features (``../shared/data/mosi-bclstm`` or
    ``$ROBUSTFUSION_MOSI_DIR``); the test is skipped where they are absent."""
    return _real_or_skip("ROBUSTFUSION_MOSI_DIR", "mosi-bclstm", "MOSI utterance")


@pytest.fixture
def iemocap_dir() -> Path:
    """The real IEMOCAP utterance files (``../shared/data/iemocap-ta`` or
    ``$ROBUSTFUSION_DATA_IEMOCAP_UTTERANCE``); the test is skipped where they are absent."""
    return _real_or_skip("ROBUSTFUSION_DATA_IEMOCAP_UTTERANCE", "iemocap-ta", "IEMOCAP utterance")
