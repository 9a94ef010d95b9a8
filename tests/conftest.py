"""Shared pytest setup.

The test tensors are tiny: one intra-op thread is several times faster than the default
(thread start-up and contention dominate) and keeps the suite fast on shared 2-core CI boxes.
"""

import torch

torch.set_num_threads(1)
