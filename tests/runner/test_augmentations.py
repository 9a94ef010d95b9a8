"""The run's train-time augmentations (robustfusion.runner.augmentations): the config list reaches
the registry, the shortcut keys and the list give the same draws, and bad entries are refused."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from robustfusion.augment import MissingRateDropout, ModalityDropout, RandomRateFrameDropout
from robustfusion.data import MultimodalDataset
from robustfusion.models import create_model
from robustfusion.runner.augmentations import RunAugmentations, run_augmentations
from robustfusion.runner.config import ConfigError, TrainConfig, load_config
from robustfusion.runner.fit import evaluate_dataset, fit
from robustfusion.seeding import derived_seed


def _data(n: int, seed: int) -> MultimodalDataset:
    g = torch.Generator().manual_seed(seed)
    text, audio, vision = torch.randn(n, 5, 6, generator=g), torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g)
    y = text[:, :, 0].mean(dim=1) * 2 + audio[:, 0] + 0.1 * torch.randn(n, generator=g)
    return MultimodalDataset({"text": text, "audio": audio, "vision": vision}, y, task="regression", name="toy")


def _cfg(**kw):
    base = {"epochs": 2, "batch_size": 32, "device": "cpu", "progress": False}
    return OmegaConf.structured(TrainConfig(**{**base, **kw}))


def test_shortcuts_then_the_list_in_order_each_with_its_own_generator():
    cfg = _cfg(modality_dropout=0.3, random_rate_frame_dropout=True,
               augment=[{"name": "missing_rate_dropout", "rate": 0.4}, {"name": "missing_rate_dropout", "rate": 0.2}])
    augs = run_augmentations(cfg, _data(8, 0))
    keys = [k for k, _ in augs]
    assert keys == ["modality_dropout", "random_rate_frame_dropout", "missing_rate_dropout", "missing_rate_dropout#1"]
    kinds = [type(a) for _, a in augs]
    assert kinds == [ModalityDropout, RandomRateFrameDropout, MissingRateDropout, MissingRateDropout]
    batch = next(_data(32, 1).batches(32))
    got = RunAugmentations.apply(batch, augs.for_epoch(5, 3))
    want = batch
    for key, aug in augs:  # brute force: each draws from (seed, key, epoch) only
        want = aug(want, torch.Generator().manual_seed(derived_seed(5, key, 3)))
    assert torch.equal(got.present, want.present)
    assert all(torch.equal(got.frame_masks[m], want.frame_masks[m]) for m in want.frame_masks)


def test_the_list_entry_trains_exactly_as_the_shortcut_key():
    train, valid = _data(96, 0), _data(32, 1)
    results = []
    for cfg in (_cfg(modality_dropout=0.3), _cfg(augment=[{"name": "modality_dropout", "p": 0.3}]), _cfg()):
        torch.manual_seed(0)
        model = create_model("late_fusion", modality_dims=train.modality_dims, encoder="mlp", hidden_dim=8)
        fit(model, train, valid, cfg, seed=2)
        results.append(evaluate_dataset(model, valid))
    assert results[0] == results[1]
    assert results[0] != results[2]  # the augmentation changed what the model saw


def test_bad_entries_are_refused():
    with pytest.raises(ConfigError, match=r"train.augment\[0\]'.*expected \{name: one of \['missing_rate_dropout'"):
        load_config(None, ["train.augment=[{name: dropout}]"])
    with pytest.raises(ValueError, match=r"augmentation 'missing_rate_dropout': bad parameters \['p'\]"):
        run_augmentations(_cfg(augment=[{"name": "missing_rate_dropout", "p": 0.3}]), _data(8, 0))
    cfg = load_config(None, ["train.augment=[{name: missing_rate_dropout, rate: 0.3}]"])
    assert OmegaConf.to_container(cfg.train.augment) == [{"name": "missing_rate_dropout", "rate": 0.3}]
