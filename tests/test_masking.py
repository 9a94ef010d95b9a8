"""The core mask helpers (robustfusion.masking)."""

from __future__ import annotations

import torch

from robustfusion import masking


def test_zero_absent_selects_for_any_leading_mask_shape():
    h = torch.tensor([[1.0, float("nan")], [float("inf"), 2.0]])
    torch.testing.assert_close(masking.zero_absent(h, torch.tensor([True, False])), torch.tensor([[1.0, float("nan")],
                                                                                                   [0.0, 0.0]]),
                               equal_nan=True)
    stacked = torch.full((2, 3, 2), float("nan"))
    present = torch.tensor([[True, False, False], [False, False, False]])
    out = masking.zero_absent(stacked, present)
    assert bool(out[0, 0].isnan().all()) and torch.equal(out[~present], torch.zeros(5, 2))


def test_zero_fill_concat_appends_the_mask():
    feats = {"a": torch.ones(2, 2), "b": torch.full((2, 1), float("nan"))}
    present = torch.tensor([[True, False], [False, False]])
    out = masking.zero_fill_concat(feats, present, append_mask=True)
    torch.testing.assert_close(out, torch.tensor([[1.0, 1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]))
    assert masking.zero_fill_concat(feats, present).shape == (2, 3)


def test_key_padding_mask_lets_empty_rows_attend_everywhere():
    mask = torch.tensor([[True, False, True], [False, False, False]])
    assert torch.equal(masking.key_padding_mask(mask), torch.tensor([[False, True, False], [False, False, False]]))
    assert masking.key_padding_mask(None) is None
