"""timm is imported only by the ``timm_frames`` encoder: where it does not import (e.g. a torchvision
of another torch build), asking for that encoder is a ``ValueError`` that says what to install, and
every other encoder works."""

from __future__ import annotations

import sys

import pytest

from robustfusion.encoders import create_encoder
from robustfusion.encoders.frames import create_timm_backbone


def test_without_timm_the_frame_encoder_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    with pytest.raises(ValueError, match=r"timm_frames encoder needs timm.*pip install timm"):
        create_timm_backbone("test_resnet")
    with pytest.raises(ValueError, match=r"torchvision of your torch"):
        create_encoder("timm_frames", in_dim=3, model_name="test_resnet")
    assert create_encoder("gru", in_dim=3, out_dim=4) is not None
