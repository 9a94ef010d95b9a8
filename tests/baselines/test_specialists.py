"""Per-subset specialists: ridge against scikit-learn, the router scored by the evaluator,
early-stopped small models (trained by the runner)."""

from __future__ import annotations

import math

import pytest
import torch

from robustfusion.baselines import (
    SubsetRouter,
    fit_ridge_specialist,
    fit_ridge_specialists,
    pooled_features,
)
from robustfusion.batch import MultimodalBatch
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import all_subsets, subset_name
from robustfusion.robustness import evaluate
from robustfusion.runner.baselines import train_model_specialists, train_subset_model

W_TEXT = torch.tensor([1.0, -2.0, 0.5])


def toy(n: int, seed: int, task: str = "regression", noise: float = 0.0) -> MultimodalDataset:
    g = torch.Generator().manual_seed(seed)
    text, audio, vision = torch.randn(n, 5, 3, generator=g), torch.randn(n, 4, generator=g), torch.randn(n, 5, 2, generator=g)
    fm = {"text": torch.rand(n, 5, generator=g) > 0.3}
    fm["text"][:, 0] = True
    pooled = (text * fm["text"].unsqueeze(-1)).sum(1) / fm["text"].sum(1, keepdim=True)
    score = pooled @ W_TEXT + 2 * audio[:, 0] + noise * torch.randn(n, generator=g)
    if task == "classification":
        y = (score > 0).long() + (score > 1.5).long()
    elif task == "multilabel":
        y = torch.stack([(score > 0), (audio[:, 1] > 0)], 1).float()
    else:
        y = score
    return MultimodalDataset({"text": text, "audio": audio, "vision": vision}, y, task, frame_masks=fm, name="toy")


def test_pooled_features_mean_over_observed_frames():
    ds = toy(4, 0)
    x, present = pooled_features(ds.full_batch(), ["text", "audio"])
    fm = ds.frame_masks["text"]
    ref = torch.stack([ds.features["text"][i][fm[i]].mean(0) for i in range(4)])
    torch.testing.assert_close(x[:, :3], ref)
    torch.testing.assert_close(x[:, 3:], ds.features["audio"])
    assert present.all()


def test_flatten_features_and_width_check():
    tr, va = toy(60, 0), toy(20, 1)
    ds = toy(4, 2)
    x, _ = pooled_features(ds.full_batch(), ["text", "audio"], "flatten")
    fm = ds.frame_masks["text"]
    torch.testing.assert_close(x[:, :15], (ds.features["text"] * fm.unsqueeze(-1)).flatten(1))
    spec = fit_ridge_specialist(tr, va, "text+audio", feature_mode="flatten")
    assert spec.dims == (15, 4) and spec.weight.shape == (19, 1)
    short = ds.full_batch().replace(inputs={**ds.full_batch().inputs, "text": torch.randn(4, 3, 3)},
                                    frame_masks={})
    with pytest.raises(ValueError, match="feature widths"):
        spec.predict(short)
    with pytest.raises(ValueError, match="feature mode"):
        pooled_features(ds.full_batch(), ["text"], "max")


def test_ridge_matches_sklearn_on_standardised_features():
    sklearn = pytest.importorskip("sklearn.linear_model")
    tr, va = toy(80, 0, noise=0.3), toy(30, 1, noise=0.3)
    spec = fit_ridge_specialist(tr, va, "text+vision", alphas=[3.0])
    x, _ = pooled_features(tr.full_batch(), ["text", "vision"])
    z = ((x.double() - x.double().mean(0)) / x.double().std(0, unbiased=False)).numpy()
    ref = sklearn.Ridge(alpha=3.0).fit(z, tr.targets.double().numpy())
    torch.testing.assert_close(spec.weight[:, 0], torch.from_numpy(ref.coef_), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(spec.bias[0], torch.tensor(float(ref.intercept_), dtype=torch.float64))


def test_ridge_selects_alpha_on_validation_and_recovers_noise_free_target():
    tr, va, te = toy(200, 0), toy(60, 1), toy(60, 2)
    spec = fit_ridge_specialist(tr, va, ["audio", "text"])
    assert spec.modalities == ("text", "audio")  # dataset order
    assert spec.val_scores[spec.alpha] == min(spec.val_scores.values())
    pred = spec.predict(te.full_batch())
    assert pred.dtype == torch.float32 and pred.shape == (60, 1)
    assert float((pred[:, 0] - te.targets).abs().mean()) < 1e-2


def test_ridge_absent_modalities_are_mean_imputed_and_none_present_is_fallback():
    tr, va = toy(100, 0), toy(40, 1)
    spec = fit_ridge_specialist(tr, va, "text+audio")
    batch = toy(3, 5).full_batch()
    present = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1]], dtype=torch.bool)
    junk = {**batch.inputs, "audio": 1e3 * torch.ones(3, 4)}
    a = spec.predict(batch.with_present(present))
    b = spec.predict(batch.replace(inputs=junk, present=torch.tensor([[1, 0, 0], [0, 0, 1], [1, 1, 1]], dtype=torch.bool)))
    torch.testing.assert_close(a[:2], b[:2])
    torch.testing.assert_close(a[1], tr.targets.mean().reshape(1))


@pytest.mark.parametrize("task", ["classification", "multilabel"])
def test_ridge_other_tasks(task):
    tr, va, te = toy(300, 0, task), toy(80, 1, task), toy(80, 2, task)
    router = fit_ridge_specialists(tr, va)
    rows = evaluate(router, te, protocols=["subsets"], model_name="specialists_ridge")
    values = {r["metric"]: r["value"] for r in rows if r["subset"] == "text+audio"}
    key = "Acc" if task == "classification" else "Avg_acc"
    assert values[key] > 0.75


def test_router_sends_each_sample_to_the_specialist_of_its_pattern():
    tr, va, te = toy(120, 0, noise=0.5), toy(40, 1, noise=0.5), toy(6, 2, noise=0.5)
    router = fit_ridge_specialists(tr, va)
    assert [tuple(s) for s in router.specialists] == all_subsets(tr.modalities)
    present = torch.tensor([[1, 0, 0], [0, 1, 1], [1, 1, 1], [0, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    batch = te.full_batch().with_present(present)
    pred = router.predict(batch)
    for i, row in enumerate(present.tolist()):
        mods = [m for m, p in zip(tr.modalities, row) if p]
        expected = router[mods].predict(batch)[i] if mods else tr.targets.mean().reshape(1)
        torch.testing.assert_close(pred[i], expected.float())
    # a missing pattern is a clear error, not a silent fallback
    partial = SubsetRouter({"text": router["text"]}, tr.modalities, torch.zeros(1))
    with pytest.raises(ValueError, match=r"no specialist for the presence patterns \['audio\+vision'"):
        partial.predict(batch)
    with pytest.raises(ValueError, match=r"expected a non-empty subset of \['text', 'audio', 'vision'\]"):
        SubsetRouter({"text+depth": router["text"]}, tr.modalities, torch.zeros(1))


def test_router_under_every_protocol_matches_each_specialist_on_its_subset():
    tr, va, te = toy(120, 0, noise=0.5), toy(40, 1, noise=0.5), toy(50, 2, noise=0.5)
    router = fit_ridge_specialists(tr, va)
    rows = evaluate(router, te, levels=[0.0, 0.5, 1.0], model_name="specialists_ridge", seed=3, batch_size=16)
    assert {r["protocol"] for r in rows} >= {"subsets", "sample_rate", "frame_rate"}
    for subset in all_subsets(tr.modalities):
        name = subset_name(subset)
        ref = evaluate(router[subset], te, protocols=["subsets"], model_name="x", seed=3)
        theirs = {r["metric"]: r["value"] for r in ref if r["subset"] == name}
        ours = {r["metric"]: r["value"] for r in rows if r["protocol"] == "subsets" and r["subset"] == name}
        for metric, value in ours.items():
            assert math.isclose(value, theirs[metric], rel_tol=1e-6, abs_tol=1e-9) or (
                math.isnan(value) and math.isnan(theirs[metric]))


def test_model_specialist_early_stopping_and_own_modalities_only():
    tr, va = toy(64, 0, noise=0.2), toy(32, 1, noise=0.2)
    spec = train_subset_model("late_fusion", tr, va, "audio", seed=0, epochs=8, patience=2, lr=3e-3,
                              batch_size=16, hidden_dim=8)
    assert spec.modalities == ("audio",) and list(spec.model.modality_dims) == ["audio"]
    assert spec.best_score == min(spec.history)
    assert len(spec.history) <= spec.best_epoch + 3
    batch = va.full_batch()
    junk = MultimodalBatch({**batch.inputs, "text": 1e3 * torch.ones_like(batch.inputs["text"])},
                           frame_masks=batch.frame_masks)
    torch.testing.assert_close(spec.predict(batch), spec.predict(junk))
    # the restored weights reproduce the best validation MAE
    mae = float((spec.predict(batch)[:, 0] - va.targets).abs().mean())
    assert math.isclose(mae, spec.best_score, rel_tol=1e-5)


def test_errors():
    tr, va = toy(20, 0), toy(10, 1)
    with pytest.raises(ValueError, match="subset"):
        fit_ridge_specialist(tr, va, "text+depth")
    with pytest.raises(ValueError, match="alphas"):
        fit_ridge_specialist(tr, va, "text", alphas=[])
    with pytest.raises(ValueError, match="epochs"):
        train_subset_model("late_fusion", tr, va, "text", epochs=0)
    with pytest.raises(ValueError, match=r"select_modalities: expected a non-empty subset"):
        tr.select_modalities(["depth"])


def test_model_specialists_behind_a_router():
    tr, va = toy(48, 0, noise=0.2), toy(24, 1, noise=0.2)
    router = train_model_specialists("late_fusion", tr, va, ["audio", "text+audio"], epochs=2, batch_size=16,
                                     hidden_dim=8)
    batch = va.full_batch().with_present(torch.tensor([[0, 1, 0], [1, 1, 0]], dtype=torch.bool).repeat(12, 1))
    torch.testing.assert_close(router.predict(batch)[0], router["audio"].predict(batch)[0])
    torch.testing.assert_close(router.predict(batch)[1], router["text+audio"].predict(batch)[1])
