"""The builders every model uses for its per-modality encoders and fusion."""

from __future__ import annotations

import pytest
import torch

from robustfusion.encoders import create_encoder
from robustfusion.fusion import ConcatFusion
from robustfusion.models import create_model
from robustfusion.models.builders import build_fusion, build_modality_encoders, per_modality

DIMS = {"text": 5, "audio": 3, "vision": 2}


def test_per_modality_sizes():
    assert per_modality(4, list(DIMS), "hidden_dim") == {"text": 4, "audio": 4, "vision": 4}
    assert per_modality({"vision": 1, "text": 2, "audio": 3}, list(DIMS), "hidden_dim") == {
        "text": 2, "audio": 3, "vision": 1}
    with pytest.raises(ValueError, match=r"hidden_dim: expected a size for every modality.*missing \['vision'\]"):
        per_modality({"text": 2, "audio": 3}, list(DIMS), "hidden_dim")


def test_registry_built_encoders_follow_modality_order_and_sizes():
    enc = build_modality_encoders(DIMS, "mlp", {"text": 2, "audio": 3, "vision": 4}, {"hidden_dim": 8})
    assert list(enc) == list(DIMS)
    assert [(e.in_dim, e.out_dim, e.context_dim) for e in enc.values()] == [(5, 2, 0), (3, 3, 0), (2, 4, 0)]
    ctx = build_modality_encoders(DIMS, "gru", 6, context_dim=6, context_mode="gate")
    assert all(e.context_dim == 6 and e.inject.mode == "gate" for e in ctx.values())


def test_given_encoders_are_checked_and_put_in_modality_order():
    given = {m: create_encoder("mlp", in_dim=d, out_dim=4) for m, d in reversed(DIMS.items())}
    assert list(build_modality_encoders(DIMS, "gru", 4, encoders=given)) == list(DIMS)
    with pytest.raises(ValueError, match=r"encoders: expected one module per modality"):
        build_modality_encoders(DIMS, "gru", 4, encoders={"text": given["text"]})
    with pytest.raises(ValueError, match=r"encoders: expected context_dim=3"):
        build_modality_encoders(DIMS, "gru", 4, encoders=given, context_dim=3)
    with pytest.raises(ValueError, match=r"modality names \['values'\] cannot be used"):
        build_modality_encoders({"values": 3}, "gru", 4)


def test_build_fusion_by_name_or_module():
    assert isinstance(build_fusion("concat", 4, 3), ConcatFusion)
    assert build_fusion("lmf", [2, 3, 4], 3, {"out_dim": 5}).out_dim == 5
    module = ConcatFusion(4, 3)
    assert build_fusion(module, 4, 3) is module
    with pytest.raises(TypeError, match=r"partial_fusion: expected a registered fusion name or an nn.Module"):
        build_fusion(3, 4, 3, what="partial_fusion")
    with pytest.raises(TypeError, match=r"fusion: expected a module with an integer `out_dim`"):
        build_fusion(torch.nn.Identity(), 4, 3)


@pytest.mark.parametrize("name", ["tfn", "lmf"])
def test_tfn_and_lmf_accept_per_modality_hidden_sizes(name):
    torch.manual_seed(0)
    model = create_model(name, modality_dims=DIMS, hidden_dim={"text": 2, "audio": 3, "vision": 1})
    assert [e.out_dim for e in model.encoders.values()] == [2, 3, 1]
