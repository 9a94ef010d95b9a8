"""GMC model: every modality subset, the missing-modality rule, the all-missing fallback,
arbitrary modality names, batch checks and a tiny end-to-end fit."""

from __future__ import annotations

import pytest
import torch

from robustfusion import GMC, MultimodalBatch, create_model
from robustfusion.dropping import all_subsets, keep_subset
from robustfusion.models import ModelOutput

B, T = 6, 5
SEQ3 = {"text": 6, "audio": 3, "vision": 4}
SMALL = {"hidden_dim": 8, "latent_dim": 6, "encoder_kwargs": {"hidden_dim": 8}}


def _batch(dims, b: int = B, seq: bool = True, present=None, seed: int = 0, task: str = "regression",
           num_outputs: int = 1) -> MultimodalBatch:
    g = torch.Generator().manual_seed(seed)
    inputs = {m: torch.randn((b, T, d) if seq and i % 2 == 0 else (b, d), generator=g) for i, (m, d) in enumerate(dims.items())}
    if task == "classification":
        targets = torch.randint(0, num_outputs, (b,), generator=g)
    elif task == "multilabel":
        targets = (torch.rand(b, num_outputs, generator=g) < 0.5).float()
    else:
        targets = torch.randn(b, generator=g)
    return MultimodalBatch(inputs, present=present, targets=targets)


def _model(dims=SEQ3, seed: int = 0, **kw) -> GMC:
    torch.manual_seed(seed)
    cfg = {**SMALL, **kw}
    return create_model("gmc", modality_dims=dims, **cfg)


def _mixed_present(modalities, b: int) -> torch.Tensor:
    """Row i has subset i (cycling through every non-empty subset), the last row has none."""
    subsets = all_subsets(modalities)
    rows = [[m in subsets[i % len(subsets)] for m in modalities] for i in range(b - 1)]
    return torch.tensor(rows + [[False] * len(modalities)])


def _finite_grads(model) -> list[str]:
    return [n for n, p in model.named_parameters() if p.grad is not None and not bool(torch.isfinite(p.grad).all())]


# --------------------------------------------------------------------------- subsets
@pytest.mark.parametrize("subset", all_subsets(SEQ3), ids=lambda s: "+".join(s))
def test_forward_backward_on_every_subset(subset):
    model = _model()
    batch = keep_subset(_batch(SEQ3), subset)
    out = model(batch)
    assert isinstance(out, ModelOutput)
    assert out.prediction.shape == (B, 1) and bool(torch.isfinite(out.prediction).all())
    assert set(out.z) == set(SEQ3) and out.z_joint.shape == (B, 6)
    assert {"supervised", "contrastive", *(f"contrastive/{m}" for m in SEQ3)} <= set(out.losses)
    for m in SEQ3:
        if m not in subset:  # an absent modality contributes no contrastive term
            assert out.losses[f"contrastive/{m}"].item() == 0.0
        else:
            assert out.losses[f"contrastive/{m}"].item() > 0.0
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert not _finite_grads(model)
    for m in SEQ3:  # only the present modalities' encoders learn
        grads = [p.grad for p in model.encoders[m].parameters() if p.grad is not None]
        has_grad = any(bool(g.abs().sum() > 0) for g in grads)
        assert has_grad == (m in subset), m


def test_batch_mixing_every_subset_and_an_empty_sample():
    model = _model()
    batch = _batch(SEQ3, b=9, present=_mixed_present(SEQ3, 9))
    out = model(batch)
    assert bool(torch.isfinite(out.prediction).all()) and torch.isfinite(out.loss)
    out.loss.backward()
    assert not _finite_grads(model)


@pytest.mark.parametrize("task,k", [("classification", 3), ("multilabel", 4)])
def test_other_tasks_forward_backward(task, k):
    model = _model(task=task, num_outputs=k)
    batch = _batch(SEQ3, b=7, present=_mixed_present(SEQ3, 7), task=task, num_outputs=k)
    out = model(batch)
    assert out.prediction.shape == (7, k)
    out.loss.backward()
    assert not _finite_grads(model)


# --------------------------------------------------------------------------- the prediction rule
@pytest.mark.parametrize("encoder", ["gru", "mlp", "transformer"])
def test_missing_modality_rule_numerically(encoder):
    ekw = {"d_model": 8, "num_heads": 2, "num_layers": 1} if encoder == "transformer" else {"hidden_dim": 8}
    model = _model(encoder=encoder, encoder_kwargs=ekw).eval()
    model.set_fallback(0.75)
    present = _mixed_present(SEQ3, 9)
    batch = _batch(SEQ3, b=9, present=present)
    with torch.no_grad():
        pred = model(batch).prediction
        full = batch.with_present(torch.ones_like(present))
        z, z_joint = model.encode(full)
        for i in range(9):
            mods = [m for j, m in enumerate(SEQ3) if present[i, j]]
            if not mods:
                expected = torch.tensor([0.75])
            elif len(mods) == len(SEQ3):
                expected = model.head(z_joint[i : i + 1])[0]
            else:
                mean = sum(z[m][i] for m in mods) / len(mods)
                expected = model.head(mean.unsqueeze(0))[0]
            torch.testing.assert_close(pred[i], expected, msg=f"sample {i} with {mods}")


def test_modality_latents_do_not_depend_on_other_modalities_presence():
    model = _model().eval()
    batch = _batch(SEQ3)
    with torch.no_grad():
        z_full, zj_full = model.encode(batch)
        for subset in all_subsets(SEQ3):
            z_sub, _ = model.encode(keep_subset(batch, subset))
            for m in SEQ3:
                torch.testing.assert_close(z_sub[m], z_full[m])
            # latent reuse: predicting a subset from cached latents == a fresh forward
            sub = keep_subset(batch, subset)
            cached = model.predict_from_latents(z_full, zj_full, sub.present)
            torch.testing.assert_close(cached, model(sub.replace(targets=None)).prediction)
    assert GMC.supports_latent_reuse


def test_latents_are_unit_norm():
    model = _model()
    z, z_joint = model.encode(_batch(SEQ3))
    for v in (*z.values(), z_joint):
        torch.testing.assert_close(v.norm(dim=-1), torch.ones(B))


def test_no_modality_sample_gets_the_fallback_not_nan():
    model = _model()
    empty = _batch(SEQ3, present=torch.zeros(B, 3, dtype=torch.bool))
    out = model(empty)
    assert torch.equal(out.prediction, torch.zeros(B, 1))  # default fallback
    assert torch.isfinite(out.loss)
    out.loss.backward()  # nothing to learn from, but no crash and no NaN
    assert not _finite_grads(model)
    model.set_fallback(torch.tensor(-1.5))
    assert torch.equal(model.predict(empty), torch.full((B, 1), -1.5))
    clf = _model(task="classification", num_outputs=3)
    log_freq = torch.log(torch.tensor([0.5, 0.3, 0.2]))
    clf.set_fallback(log_freq)
    torch.testing.assert_close(clf.predict(_batch(SEQ3, present=torch.zeros(B, 3, dtype=torch.bool))),
                               log_freq.expand(B, 3))


def test_predict_is_eval_mode_without_grad_and_restores_training():
    model = _model(head_dropout=0.5)
    batch = _batch(SEQ3)
    model.train()
    a, b = model.predict(batch), model.predict(batch)
    assert torch.equal(a, b) and not a.requires_grad
    assert model.training


# --------------------------------------------------------------------------- arbitrary modalities
@pytest.mark.parametrize("dims", [
    {"left": 3, "right": 4},
    {"text": 6, "audio": 3, "vision": 4},
    {"m0": 2, "Eye-Tracking": 3, "eeg_α": 5, "4": 2, "x y": 3},
], ids=["2", "3", "5"])
def test_any_number_of_modalities_with_any_names(dims):
    model = _model(dims)
    assert model.modalities == tuple(dims)
    present = _mixed_present(dims, len(all_subsets(dims)) + 1)
    batch = _batch(dims, b=present.shape[0], present=present)
    out = model(batch)
    assert out.prediction.shape == (present.shape[0], 1) and bool(torch.isfinite(out.prediction).all())
    out.loss.backward()
    assert not _finite_grads(model)
    # modality order in the batch does not matter: modalities are looked up by name
    shuffled = MultimodalBatch({m: batch.inputs[m] for m in reversed(dims)},
                               present={m: batch.present_mask(m) for m in dims}, targets=batch.targets)
    model.eval()
    torch.testing.assert_close(model.predict(shuffled), model.predict(batch))


# --------------------------------------------------------------------------- errors and registry
def test_check_batch_errors():
    model = _model()
    batch = _batch(SEQ3)
    missing = MultimodalBatch({m: batch.inputs[m] for m in ("text", "audio")})
    with pytest.raises(ValueError, match=r"lacks modalities \['vision'\].*expects \['text', 'audio', 'vision'\]"):
        model(missing)
    wrong = MultimodalBatch(dict(batch.inputs, audio=torch.randn(B, 5)))
    with pytest.raises(ValueError, match=r"'audio': expected feature size 3, found 5"):
        model(wrong)
    # an extra modality the model does not know is refused, by name (issue 14: it was ignored silently)
    extra = MultimodalBatch(dict(batch.inputs, depth=torch.randn(B, 2)))
    with pytest.raises(ValueError, match=r"modalities \['depth'\] that the model does not know"):
        model(extra)
    with pytest.raises(ValueError, match=r"targets.*\(6, 1\).*found"):
        model(batch.replace(targets=torch.randn(B, 2)))


def test_constructor_errors():
    with pytest.raises(ValueError, match="at least one modality"):
        GMC({})
    with pytest.raises(ValueError, match=r"task.*found 'ranking'"):
        GMC(SEQ3, task="ranking")
    with pytest.raises(ValueError, match=r"classification needs >= 2"):
        GMC(SEQ3, task="classification", num_outputs=1)
    with pytest.raises(ValueError, match=r"temperature.*found 0"):
        GMC(SEQ3, temperature=0)
    with pytest.raises(ValueError, match=r"encoders: expected one module per modality"):
        GMC(SEQ3, encoders={"text": torch.nn.Identity()})


def test_create_model_records_how_it_was_built():
    model = _model(temperature=0.2)
    assert isinstance(model, GMC)
    assert model.registry_name == "gmc"
    assert model.init_config["modality_dims"] == SEQ3 and model.init_config["temperature"] == 0.2
    again = create_model(model.registry_name, **model.init_config)
    again.load_state_dict(model.state_dict())  # same architecture


# --------------------------------------------------------------------------- end-to-end fit
def _synthetic(n: int, g: torch.Generator):
    """Three utterance-level modalities; the target mixes a linear and a nonlinear part of each."""
    x = {"text": torch.randn(n, 4, generator=g), "audio": torch.randn(n, 3, generator=g),
         "vision": torch.randn(n, 5, generator=g)}
    y = (x["text"][:, 0] - 0.5 * x["text"][:, 1] + torch.tanh(2 * x["audio"][:, 0]) + 0.5 * x["vision"][:, :2].sum(1)
         + 0.05 * torch.randn(n, generator=g))
    return x, y


def test_tiny_end_to_end_fit_beats_the_mean_predictor():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x_train, y_train = _synthetic(320, g)
    x_test, y_test = _synthetic(160, g)
    model = create_model("gmc", modality_dims={m: v.shape[1] for m, v in x_train.items()}, encoder="mlp",
                         hidden_dim=32, latent_dim=16, encoder_kwargs={"hidden_dim": 32, "dropout": 0.0},
                         joint_kwargs={"dropout": 0.0}, contrastive_weight=0.1)
    model.set_fallback(y_train.mean())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    epoch_losses = []
    for _ in range(25):
        order = torch.randperm(320, generator=g)
        total = 0.0
        for start in range(0, 320, 32):
            idx = order[start : start + 32]
            batch = MultimodalBatch({m: v[idx] for m, v in x_train.items()}, targets=y_train[idx])
            out = model(batch)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            total += out.losses["supervised"].item()
        epoch_losses.append(total / 10)
    assert epoch_losses[-1] < 0.5 * epoch_losses[0], epoch_losses
    test = MultimodalBatch(x_test)
    mae = (model.predict(test).squeeze(1) - y_test).abs().mean().item()
    mean_mae = (y_train.mean() - y_test).abs().mean().item()
    assert mae < 0.6 * mean_mae, (mae, mean_mae)
    # one aligned space serves the subsets too: with one modality missing it is still better than the mean
    partial = keep_subset(test, ("text", "audio"))
    assert (model.predict(partial).squeeze(1) - y_test).abs().mean().item() < mean_mae


def test_user_encoders_in_another_order_follow_the_model_order():
    """``encoders`` given in a different order than ``modality_dims``: latents and the per-modality
    contrastive terms still line up with the presence columns (model order)."""
    torch.manual_seed(0)
    from robustfusion.encoders import create_encoder

    encs = {m: create_encoder("mlp", in_dim=SEQ3[m], out_dim=8, hidden_dim=8, dropout=0.0)
            for m in ("vision", "text", "audio")}
    model = GMC(SEQ3, hidden_dim=8, latent_dim=6, encoders=encs)
    present = torch.ones(B, 3, dtype=torch.bool)
    present[1:, 2] = False  # vision kept by a single sample: its term must be exactly 0
    out = model(_batch(SEQ3, present=present))
    assert list(out.z) == list(SEQ3)
    assert out.losses["contrastive/vision"].item() == 0.0
    assert out.losses["contrastive/text"].item() > 0.0 and out.losses["contrastive/audio"].item() > 0.0


def test_set_fallback_errors():
    model = _model(task="classification", num_outputs=3)
    with pytest.raises(ValueError, match=r"fallback: expected a scalar or 3 values, found 2"):
        model.set_fallback(torch.zeros(2))
    with pytest.raises(ValueError, match=r"fallback: expected finite"):
        model.set_fallback(float("nan"))
    model.set_fallback(1.0)
    assert torch.equal(model.fallback, torch.ones(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gmc_and_dropping_on_cuda_match_cpu():
    from robustfusion.dropping import drop_samples, protocol_generator

    model = _model().eval()
    model.set_fallback(0.5)
    batch = _batch(SEQ3, b=9, present=_mixed_present(SEQ3, 9))
    cpu = model.predict(batch)
    gpu_model = model.to("cuda")
    gpu_batch = batch.to("cuda")
    torch.testing.assert_close(gpu_model.predict(gpu_batch).cpu(), cpu, rtol=1e-4, atol=1e-4)
    dropped = drop_samples(gpu_batch, 0.5, protocol_generator(0, "sample_rate", 0.5), keep_at_least_one=True)
    assert dropped.present.device.type == "cuda"
    assert torch.equal(dropped.present.cpu(),
                       drop_samples(batch, 0.5, protocol_generator(0, "sample_rate", 0.5), keep_at_least_one=True).present)
    gpu_model.train()
    gpu_model(gpu_batch).loss.backward()


# --------------------------------------------------------------------------- unimodal supervision
def test_unimodal_term_is_the_mean_supervised_loss_of_each_present_modality():
    torch.manual_seed(0)
    from robustfusion.losses import supervised_loss

    dims = {"text": 5, "audio": 3}
    model = create_model("gmc", modality_dims=dims, encoder="mlp", hidden_dim=8, latent_dim=8, unimodal_weight=0.5)
    present = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    batch = MultimodalBatch({m: torch.randn(4, d) for m, d in dims.items()}, present=present, targets=torch.randn(4))
    out = model(batch)
    expected = torch.stack([
        supervised_loss(model.head(out.z[m][present[:, i]]), batch.targets[present[:, i]], "regression")
        for i, m in enumerate(dims)]).mean()
    torch.testing.assert_close(out.losses["unimodal"], expected)
    base = out.losses["supervised"] + out.losses["contrastive"]
    torch.testing.assert_close(out.loss, base + 0.5 * expected)
    plain = create_model("gmc", modality_dims=dims, encoder="mlp", hidden_dim=8, latent_dim=8)
    assert "unimodal" not in plain(batch).losses
    with pytest.raises(ValueError, match="unimodal_weight"):
        create_model("gmc", modality_dims=dims, unimodal_weight=-1.0)


# --------------------------------------------------------------------------- partial_fusion
def test_weighted_partial_fusion_starts_as_gmc_rule_and_keeps_latent_reuse():
    batch = _batch(SEQ3, b=9, present=_mixed_present(SEQ3, 9))
    gmc_rule = _model().eval()
    weighted = _model(partial_fusion="weighted_mean").eval()
    weighted.load_state_dict(gmc_rule.state_dict(), strict=False)  # same weights, logits still 0
    with torch.no_grad():
        torch.testing.assert_close(weighted(batch).prediction, gmc_rule(batch).prediction)
        weighted.partial_fusion.logits.copy_(torch.tensor([1.5, -0.5, 0.0]))
        pred = weighted(batch).prediction
        z, z_joint = weighted.encode(batch.with_present(torch.ones_like(batch.present)))
        w = torch.exp(torch.tensor([1.5, -0.5, 0.0]))
        for i in range(8):  # every non-empty subset; the 7th row is complete (z_joint)
            keep = batch.present[i]
            if bool(keep.all()):
                continue
            fused = sum(w[j] * z[m][i] for j, m in enumerate(SEQ3) if keep[j]) / w[keep].sum()
            torch.testing.assert_close(pred[i], weighted.head(fused.unsqueeze(0))[0], msg=f"row {i}")
        torch.testing.assert_close(weighted.predict_from_latents(z, z_joint, batch.present), pred)


def test_partial_fusion_must_keep_the_latent_width():
    with pytest.raises(ValueError, match=r"partial_fusion='lmf'.*latent_dim=6, found 32"):
        _model(partial_fusion="lmf")
    with pytest.raises(KeyError, match=r"unknown fusion layer 'sum'"):
        _model(partial_fusion="sum")
