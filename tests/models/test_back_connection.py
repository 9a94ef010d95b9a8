"""The back-connection module that "progressive" and "gmc_pf" share, and its drop-in BackConnection."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustfusion.encoders import create_encoder
from robustfusion.fusion import create_fusion
from robustfusion.models import BackConnection, create_model
from robustfusion.models.back_connection import encode_with_context, initial_context
from tests.models.batches import DIMS, every_subset_present, make_batch

K = 6


class UserModel(nn.Module):
    """The example of BackConnection's docstring, with small sizes."""

    def __init__(self, dims, k=K, **back_kw):
        super().__init__()
        self.encoders = nn.ModuleDict({m: create_encoder("gru", in_dim=d, out_dim=k, context_dim=k, hidden_dim=4)
                                       for m, d in dims.items()})
        self.fusion = create_fusion("mean", dim=k)
        self.back = BackConnection(k, **back_kw)
        self.head = nn.Linear(k, 1)

    def forward(self, batch):
        present = torch.stack([batch.present_mask(m) for m in self.encoders], dim=1)
        _, contexts = self.back(encode_with_context(self.encoders, batch),
                                lambda h: self.fusion(h, present), present)
        return self.head(contexts[-1])


def test_docstring_example_runs_and_ignores_absent_modalities():
    torch.manual_seed(0)
    model = UserModel(DIMS, steps=3, learned_init=True).eval()
    with torch.no_grad():
        model.back.c0.normal_()
    present = every_subset_present()
    batch = make_batch(present, targets=False)
    out = model(batch)
    assert out.shape == (len(present), 1) and bool(torch.isfinite(out).all())
    junk = {m: torch.where(present[:, i].view(-1, 1, 1), x, torch.full_like(x, float("nan")))
            for i, (m, x) in enumerate(batch.inputs.items())}
    torch.testing.assert_close(model(batch.replace(inputs=junk)), out)
    # the all-absent row gets zero context at every step: head(0)
    torch.testing.assert_close(out[-1], model.head.bias)


@pytest.mark.parametrize("learned_init, detach", [(False, False), (True, False), (True, True)])
def test_back_connection_unrolls_exactly_like_the_progressive_model(learned_init, detach):
    """ProgressiveFusion runs its steps through this module: the drop-in module with the same
    encoders, fusion and c_0 gives the same contexts."""
    torch.manual_seed(0)
    model = create_model("progressive", modality_dims=DIMS, hidden_dim=K, steps=3, learned_init=learned_init,
                         detach_context=detach, encoder_kwargs={"hidden_dim": 4}).eval()
    back = BackConnection(K, steps=3, learned_init=learned_init, detach_context=detach)
    if learned_init:
        with torch.no_grad():
            model.c0.normal_()
            back.c0.copy_(model.c0)
    present = every_subset_present()
    batch = make_batch(present, frame_masks=True)
    _, expected = model.unroll(batch, present)
    _, contexts = back(encode_with_context(model.encoders, batch), lambda h: model.fusion(h, present), present)
    assert len(contexts) == 4
    for c, e in zip(contexts, expected):
        if e is None:
            assert c is None
        else:
            torch.testing.assert_close(c, e)


def test_initial_context_is_zero_for_samples_without_modalities():
    c0 = torch.tensor([1.0, -2.0])
    any_present = torch.tensor([[True], [False]])
    torch.testing.assert_close(initial_context(c0, any_present), torch.tensor([[1.0, -2.0], [0.0, 0.0]]))
    assert initial_context(None, any_present) is None
    assert BackConnection(2).c0 is None and "c0" in dict(BackConnection(2, learned_init=True).named_parameters())


def test_bad_steps_raise():
    with pytest.raises(ValueError, match=r"steps: expected an integer R >= 1, found 0"):
        BackConnection(K, steps=0)


def test_progressive_names_stay_importable():
    from robustfusion.models import unroll_progressive
    from robustfusion.models.back_connection import unroll_progressive as moved
    from robustfusion.models.progressive import LOSS_AT, check_progressive_options
    from robustfusion.models.progressive import unroll_progressive as forwarded

    assert unroll_progressive is moved is forwarded
    assert LOSS_AT == ("last", "every") and callable(check_progressive_options)
