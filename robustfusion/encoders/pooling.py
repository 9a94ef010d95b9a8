"""Forwarding module: the masked pooling helpers now live in :mod:`robustfusion.masking` (a core
module, so fusion layers and evaluation code can use them without importing the encoders).

``from robustfusion.encoders.pooling import masked_mean`` keeps working.
"""

from robustfusion.masking import (
    POOLINGS,
    check_frame_mask,
    masked_last,
    masked_mean,
    zero_unobserved,
)

__all__ = ["POOLINGS", "check_frame_mask", "masked_last", "masked_mean", "zero_unobserved"]
