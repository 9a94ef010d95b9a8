"""Shared pytest setup.

The test tensors are tiny: one intra-op thread is several times faster than the default
(thread start-up and contention dominate) and keeps the suite fast on shared 2-core CI boxes.
Nothing may touch the network: the Hugging Face libraries are put in offline mode, and plots
use the Agg backend.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

torch.set_num_threads(1)
