"""The training loop: it learns, selection rules hold, and a killed run resumes bit-identically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from robustfusion.data import MultimodalDataset
from robustfusion.models import create_model
from robustfusion.runner import load_config, train_run
from robustfusion.runner.config import TrainConfig
from robustfusion.runner.fit import fit
from robustfusion.runner.scoring import evaluate_dataset, set_fallback_from_targets, validation_loss

ROOT = Path(__file__).resolve().parents[2]


def _data(n: int, seed: int) -> MultimodalDataset:
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(n, 5, 6, generator=g)
    audio = torch.randn(n, 4, generator=g)
    y = text[:, :, 0].mean(dim=1) * 2 + audio[:, 0] + 0.1 * torch.randn(n, generator=g)
    return MultimodalDataset({"text": text, "audio": audio}, y, task="regression", name="toy")


def _cfg(**kw):
    base = {"epochs": 4, "batch_size": 32, "lr": 3e-3, "scheduler": "cosine", "device": "cpu", "progress": False}
    base.update(kw)
    return OmegaConf.structured(TrainConfig(**base))


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("gmc", modality_dims={"text": 6, "audio": 4}, encoder="gru", hidden_dim=16, latent_dim=16)


def test_fit_learns_and_beats_mean_predictor():
    train, valid = _data(256, 0), _data(128, 1)
    model = _model()
    set_fallback_from_targets(model, train)
    fit(model, train, valid, _cfg(epochs=15), seed=0)
    mae = evaluate_dataset(model, valid)["MAE"]
    mean_mae = float((valid.targets - train.targets.mean()).abs().mean())
    assert mae < 0.8 * mean_mae


def test_selection_last_keeps_last_epoch_and_best_keeps_best(tmp_path):
    train, valid = _data(128, 0), _data(64, 1)
    res_last = fit(_model(), train, valid, _cfg(selection="last"), seed=0)
    assert res_last.selected_epoch == 4
    model = _model()
    res_best = fit(model, train, valid, _cfg(selection="best"), seed=0, run_dir=tmp_path)
    maes = [h["valid/MAE"] for h in res_best.history]
    assert res_best.selected_epoch == 1 + maes.index(min(maes))
    assert evaluate_dataset(model, valid)["MAE"] == pytest.approx(min(maes), abs=1e-6)


def test_early_stopping_stops_after_patience():
    train, valid = _data(64, 0), _data(32, 1)
    res = fit(_model(), train, valid, _cfg(epochs=30, lr=0.0, patience=2, scheduler="none"), seed=0)
    assert res.epochs_run <= 4  # lr=0: no improvement after epoch 1


def test_plateau_scheduler_follows_the_validation_loss_as_torch_does(tmp_path):
    train, valid = _data(96, 0), _data(48, 1)
    model = _model()
    res = fit(model, train, valid, _cfg(epochs=8, lr=0.05, scheduler="plateau", plateau_patience=1,
                                        plateau_factor=0.5, selection="last"), seed=0)
    losses = [h["valid/loss"] for h in res.history]
    # the same losses fed to torch's ReduceLROnPlateau give the logged learning rates
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.05)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    expected = []
    for loss in losses:
        expected.append(opt.param_groups[0]["lr"])
        ref.step(loss)
    assert [h["lr"] for h in res.history] == pytest.approx(expected)
    assert min(h["lr"] for h in res.history) < 0.05  # the schedule did act in these 8 epochs
    assert losses[-1] == pytest.approx(validation_loss(model, valid))
    with pytest.raises(ValueError, match="no validation split"):
        fit(_model(), train, None, _cfg(scheduler="plateau"), seed=0)


class _Kill(Exception):
    pass


def test_killed_run_resumes_to_identical_result(tmp_path):
    train, valid = _data(128, 0), _data(64, 1)
    cfg = _cfg(epochs=5, modality_dropout=0.3, selection="last")
    ref = _model()
    fit(ref, train, valid, cfg, seed=3, run_dir=tmp_path / "ref")
    ref_metrics = evaluate_dataset(ref, valid)

    def kill(epoch):
        if epoch == 2:
            raise _Kill

    run = tmp_path / "run"
    with pytest.raises(_Kill):
        fit(_model(), train, valid, cfg, seed=3, run_dir=run, on_epoch_end=kill)
    # a fresh process would rebuild the model with other initial weights: the checkpoint must win
    resumed = _model(seed=99)
    fit(resumed, train, valid, cfg, seed=3, run_dir=run, resume=True)
    assert evaluate_dataset(resumed, valid) == ref_metrics
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3, 4, 5]
    ref_lines = [json.loads(x) for x in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(lines, ref_lines):
        assert {k: v for k, v in a.items() if k != "time_s"} == {k: v for k, v in b.items() if k != "time_s"}


def test_monitor_subsets_selects_on_the_metric_averaged_over_every_subset():
    from robustfusion.dropping import all_subsets, keep_subset
    from robustfusion.metrics import compute_metrics
    from robustfusion.runner.scoring import predict_dataset, subset_mean_metric

    train, valid = _data(128, 0), _data(64, 1)
    model = _model()
    res = fit(model, train, valid, _cfg(epochs=3, monitor_subsets=True), seed=0)
    values = [h["valid/subset_mean/MAE"] for h in res.history]
    assert res.selected_epoch == 1 + values.index(min(values))
    manual = []
    for subset in all_subsets(valid.modalities):
        preds = torch.cat([model.predict(keep_subset(b, subset)) for b in valid.batches(256)])
        manual.append(compute_metrics("regression", preds, valid.targets)["MAE"])
    assert subset_mean_metric(model, valid, "MAE") == pytest.approx(sum(manual) / len(manual))
    assert predict_dataset(model, valid).shape == (64, 1)


def test_random_rate_frame_dropout_trains_on_sequences_and_is_refused_on_utterances(tmp_path):
    tiny = ["data.options.n_train=64", "data.options.n_valid=32", "data.options.n_test=32", "train.epochs=1",
            "model.params.hidden_dim=8", "train.progress=false"]
    cfg = load_config(ROOT / "configs" / "synthetic" / "late_fusion.yaml", [*tiny, "train.random_rate_frame_dropout=true"])
    plain = load_config(ROOT / "configs" / "synthetic" / "late_fusion.yaml", tiny)
    a = train_run(cfg, run_dir=tmp_path / "a").final["valid"]["MAE"]
    b = train_run(plain, run_dir=tmp_path / "b").final["valid"]["MAE"]
    assert a != b  # the augmentation changed what the model saw
    pooled = MultimodalDataset({"x": torch.randn(16, 3)}, torch.randn(16), name="utterances")
    with pytest.raises(ValueError, match=r"random_rate_frame_dropout drops frames of sequences.*'utterances'"):
        fit(create_model("late_fusion", modality_dims={"x": 3}, encoder="mlp"), pooled, None, cfg.train, 0)
