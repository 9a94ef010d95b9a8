"""``create_model``: a wrong keyword names the model asked for and lists the keywords it takes,
including those a subclass forwards to its parent (``gmc_pf`` -> ``GMC``)."""

from __future__ import annotations

import inspect

import pytest
from omegaconf import OmegaConf

from robustfusion.models.registry import (
    MODELS,
    UnknownKeywordError,
    create_model,
    list_models,
    model_keywords,
)
from robustfusion.runner.api import build_model
from robustfusion.runner.config import ConfigError
from robustfusion.runner.presets import GRIDS, method_config


def test_a_wrong_keyword_for_gmc_pf_names_gmc_pf_and_lists_the_valid_ones():
    with pytest.raises(UnknownKeywordError) as info:
        create_model("gmc_pf", modality_dims={"a": 3, "b": 2}, hiden_dim=8)
    msg = str(info.value)
    assert msg.startswith("create_model('gmc_pf'): unexpected keyword argument(s) ['hiden_dim']; valid keywords: [")
    assert "GMC.__init__" not in msg
    for own, inherited in [("steps", "latent_dim"), ("context_mode", "temperature")]:
        assert repr(own) in msg and repr(inherited) in msg  # gmc_pf's own and GMC's, forwarded by **gmc_kwargs
    # a TypeError as Python raises for an unexpected keyword, and a ValueError as every bad input here
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_every_listed_keyword_is_a_parameter_of_the_class_chain_and_none_is_missing():
    for name in list_models():
        keywords = model_keywords(name)
        assert keywords[:3] == ["modality_dims", "task", "num_outputs"], name
        assert len(set(keywords)) == len(keywords), name
        # brute force: every named parameter of every __init__ up to the first without **kwargs
        expected = set()
        for cls in MODELS.get(name).__mro__:
            if "__init__" not in vars(cls):
                continue
            params = inspect.signature(cls.__init__).parameters.values()
            expected |= {p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                break
        assert set(keywords) == expected, name


def test_the_runner_reports_a_wrong_model_param_with_the_inherited_keywords():
    cfg = method_config(GRIDS.get("synthetic"), "gmc_pf", 0)
    cfg.model.params = OmegaConf.merge(cfg.model.params, {"hiden_dim": 8})
    from robustfusion.runner.api import prepare_data

    train = prepare_data(method_config(GRIDS.get("synthetic"), "gmc_pf", 0,
                                       overrides=["data.options.n_train=32", "data.options.n_valid=16",
                                                  "data.options.n_test=16"])).splits["train"]
    with pytest.raises(ConfigError, match=r"model.params for 'gmc_pf': unexpected key\(s\) \['hiden_dim'\]; "
                                          r"valid parameters: \[.*'latent_dim'.*\]"):
        build_model(cfg, train)
