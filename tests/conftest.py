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


def real_mosi_dir() -> Path | None:
    env = os.environ.get("ROBUSTFUSION_MOSI_DIR")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mosi-bclstm")
    for c in cands:
        if (c / "train.npz").is_file():
            return c
    return None


@pytest.fixture
def mosi_dir() -> Path:
    """The real CMU-MOSI utterance features (``../shared/data/mosi-bclstm`` or
    ``$ROBUSTFUSION_MOSI_DIR``); the test is skipped where they are absent."""
    d = real_mosi_dir()
    if d is None:
        pytest.skip("real MOSI utterance data not found: ../shared/data/mosi-bclstm/train.npz relative to the repo "
                    "root is absent and ROBUSTFUSION_MOSI_DIR is not set")
    return d


def real_iemocap_dir() -> Path | None:
    env = os.environ.get("ROBUSTFUSION_DATA_IEMOCAP_UTTERANCE")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "iemocap-ta")
    for c in cands:
        if (c / "train.npz").is_file():
            return c
    return None


@pytest.fixture
def iemocap_dir() -> Path:
    """The real IEMOCAP utterance files (``../shared/data/iemocap-ta`` or
    ``$ROBUSTFUSION_DATA_IEMOCAP_UTTERANCE``); the test is skipped where they are absent."""
    d = real_iemocap_dir()
    if d is None:
        pytest.skip("real IEMOCAP utterance data not found: ../shared/data/iemocap-ta/train.npz relative to the repo "
                    "root is absent and ROBUSTFUSION_DATA_IEMOCAP_UTTERANCE is not set")
    return d
