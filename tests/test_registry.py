"""Registries: unknown names list the registered ones; create_model records how it built a model."""

from __future__ import annotations

import pytest
import torch

from robustfusion import create_model, list_models, register_model
from robustfusion.models import MODELS, MultimodalModel
from robustfusion.registry import Registry


def test_generic_registry_register_get_create():
    reg: Registry = Registry("widget")
    assert reg.names() == []

    @reg.register("b")
    def make_b(x: int = 1):
        return ("b", x)

    @reg.register("a")
    class A:
        def __init__(self, y: int = 0) -> None:
            self.y = y

    assert reg.names() == ["a", "b"] and "a" in reg and "c" not in reg
    assert reg.get("b") is make_b
    assert reg.create("b", x=3) == ("b", 3) and reg.create("a", y=2).y == 2
    reg.register("a")(A)  # registering the same builder again is harmless
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a")(make_b)


def test_unknown_name_is_a_key_error_listing_registered_names():
    reg: Registry = Registry("widget")
    reg.register("gru")(dict)
    reg.register("mlp")(dict)
    with pytest.raises(KeyError, match=r"unknown widget 'gur'; registered: \['gru', 'mlp'\].*did you mean \['gru'\]"):
        reg.get("gur")
    with pytest.raises(KeyError, match=r"unknown widget 'zzz'; registered: \['gru', 'mlp'\]") as info:
        reg.create("zzz")
    assert "did you mean" not in str(info.value)


def test_unknown_model_lists_registered_models():
    assert "gmc" in list_models()
    assert list_models() == sorted(list_models())
    with pytest.raises(KeyError, match=r"unknown model 'gcm'; registered: \[.*'gmc'.*\]"):
        create_model("gcm", modality_dims={"a": 2})


def test_create_model_records_registry_name_and_init_config():
    torch.manual_seed(0)
    cfg = {"modality_dims": {"a": 3, "b": 2}, "task": "regression", "num_outputs": 1, "hidden_dim": 8,
           "latent_dim": 4, "encoder": "mlp"}
    model = create_model("gmc", **cfg)
    assert model.registry_name == "gmc"
    assert model.init_config == cfg
    assert model.init_config is not cfg  # a copy, not the caller's dict
    rebuilt = create_model(model.registry_name, **model.init_config)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]


def test_register_model_adds_a_user_model():
    name = "test-registry-constant"

    class Constant(MultimodalModel):
        def forward(self, batch):
            raise NotImplementedError

    register_model(name)(Constant)
    try:
        assert name in list_models()
        model = create_model(name, modality_dims={"x": 1})
        assert isinstance(model, Constant) and model.registry_name == name
        assert model.init_config == {"modality_dims": {"x": 1}}
    finally:  # keep the global registry clean for the tests that iterate over every model
        del MODELS._builders[name]
    assert name not in list_models()


def test_generic_registry_add_remove_ordered_and_build():
    reg: Registry = Registry("thing")
    reg.register("b")(lambda scale=1: ("b", scale))
    reg.add("a", "ready-made")
    assert reg.ordered() == ["b", "a"] and reg.names() == ["a", "b"]
    assert reg.build("b", scale=3) == ("b", 3)
    with pytest.raises(ValueError, match=r"thing: expected one of \['a', 'b'\], found 'c'"):
        reg.build("c")
    with pytest.raises(ValueError, match=r"thing 'b': bad parameters \['size'\]"):
        reg.build("b", size=2)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        reg.add("a", "other")
    reg.remove("a")
    assert "a" not in reg
    with pytest.raises(KeyError, match="unknown thing 'a'"):
        reg.remove("a")
