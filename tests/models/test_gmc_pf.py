"""Tests of GMC + Progressive Fusion ("gmc_pf")."""

from __future__ import annotations

import itertools

import pytest
import torch

from robustfusion.dropping import all_subsets, subset_name
from robustfusion.fusion import mean_of_present
from robustfusion.models import GMC, create_model, list_models
from robustfusion.models.gmc_pf import GMCProgressive
from tests.models.batches import every_subset_present, make_batch

DIMS = {"text": 5, "audio": 3, "vision": 2}
B, T, H, L = 3, 4, 6, 5
MODES = ("concat", "add", "gate")


def build(name: str = "gmc_pf", **kw) -> GMC:
    torch.manual_seed(0)
    kw = {"hidden_dim": H, "latent_dim": L, "encoder_kwargs": {"hidden_dim": 4},
          "joint_kwargs": {"encoder_kwargs": {"hidden_dim": 4}}, **kw}
    return create_model(name, modality_dims=DIMS, task="regression", num_outputs=1, **kw)


def test_registered_with_gmc_interface_and_no_latent_reuse():
    assert "gmc_pf" in list_models()
    model = create_model("gmc_pf", modality_dims=DIMS, task="regression", num_outputs=1)
    assert isinstance(model, GMC) and isinstance(model, GMCProgressive)
    assert GMCProgressive.supports_latent_reuse is False and GMC.supports_latent_reuse is True
    assert model.steps == 2 and model.context_mode == "add" and model.context_source == "z_mean"
    assert model.context_dim == model.projection.latent_dim
    out = model(make_batch(torch.ones(B, 3, dtype=torch.bool)))
    assert out.prediction.shape == (B, 1) and torch.isfinite(out.loss)
    assert {"supervised", "contrastive", "contrastive/text"} <= set(out.losses)
    assert set(out.z) == set(DIMS) and out.z_joint.shape == (B, 64)


@pytest.mark.parametrize("kw, match", [
    ({"steps": 0}, "steps: expected an integer R >= 1"),
    ({"context_mode": "mul"}, "context_mode: expected one of"),
    ({"loss_at": "sometimes"}, "loss_at: expected one of"),
    ({"predict_from": "joint"}, "predict_from: expected one of"),
])
def test_bad_options_raise_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        build(**kw)


def test_encode_refuses_external_contexts():
    model = build()
    with pytest.raises(ValueError, match="gmc_pf computes its own back-connected contexts"):
        model.encode(make_batch(torch.ones(B, 3, dtype=torch.bool)), contexts={"text": torch.zeros(B, L)})


# ---------------------------------------------------------------------------- R = 1 is GMC
@pytest.mark.parametrize("context", ["z_mean", "concat"])
@pytest.mark.parametrize("mode", MODES)
def test_one_step_equals_gmc_with_the_same_weights(mode: str, context: str):
    model = build(steps=1, context_mode=mode, context=context).eval()
    gmc = build("gmc").eval()
    if mode == "concat":  # GMC's plain encoders have no context columns: give GMC the ported encoders
        gmc.encoders = model.encoders
    result = gmc.load_state_dict(model.state_dict(), strict=False)
    assert not result.missing_keys
    assert all(".inject." in k or k.startswith("context_fusion.") for k in result.unexpected_keys), result
    batch = make_batch(every_subset_present(), frame_masks=True)
    out, ref = model(batch), gmc(batch)
    assert torch.equal(out.prediction, ref.prediction)
    assert torch.equal(out.loss, ref.loss)
    for m in DIMS:
        assert torch.equal(out.z[m], ref.z[m])
    z, z_joint = model.encode(batch)
    assert all(torch.equal(z[m], ref.z[m]) for m in DIMS) and torch.equal(z_joint, ref.z_joint)


# ---------------------------------------------------------------------------- R > 1
@pytest.mark.parametrize("context", ["z_mean", "concat"])
@pytest.mark.parametrize("mode", MODES)
def test_more_steps_change_latents_and_gradients_reach_the_back_connection(mode: str, context: str):
    model = build(steps=2, context_mode=mode, context=context).eval()
    batch = make_batch(torch.tensor([[True, True, False]] * B))
    out2 = model(batch)
    model.steps = 1
    out1 = model(batch)
    model.steps = 2
    for m in ("text", "audio"):
        assert not torch.allclose(out2.z[m], out1.z[m], atol=1e-4), m
    assert not torch.allclose(out2.prediction, out1.prediction, atol=1e-5)
    torch.testing.assert_close(out2.extras["step_predictions"][0], out1.prediction)
    out2.loss.backward()
    for m, enc in model.encoders.items():
        g = enc.gru.weight_ih_l0.grad[:, DIMS[m]:] if mode == "concat" else enc.inject.proj.weight.grad
        if m == "vision":  # absent everywhere in this batch: no loss term may reach it
            assert g is None or g.abs().sum() == 0
        else:
            assert g is not None and g.abs().sum() > 0, f"{mode}/{context}: no gradient at the back-connection of {m}"
    if context == "concat":
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.context_fusion.parameters()
                   if p.dim() == 2)


def test_detach_context_stops_gradients_through_earlier_steps():
    batch = make_batch(every_subset_present())
    models = {}
    for detach in (False, True):
        model = build(steps=2, learned_init=True, detach_context=detach).eval()
        with torch.no_grad():
            model.c0.normal_()
        model(batch).loss.backward()
        models[detach] = model
    assert models[False].c0.grad is not None and models[False].c0.grad.abs().sum() > 0
    assert models[True].c0.grad is None or models[True].c0.grad.abs().sum() == 0
    assert all(e.inject.proj.weight.grad.abs().sum() > 0 for e in models[True].encoders.values())


def test_z_mean_context_is_the_mean_of_present_latents_brute_force():
    model = build(steps=3).eval()
    present = every_subset_present()
    batch = make_batch(present)
    out = model(batch)
    ctx = out.extras["contexts"]
    assert ctx[0] is None and len(ctx) == 4
    for r, z in enumerate(out.extras["step_z"], start=1):
        torch.testing.assert_close(ctx[r], mean_of_present(z, present))
    torch.testing.assert_close(ctx[-1], mean_of_present(out.z, present))


def test_loss_every_step_is_the_mean_over_steps():
    model = build(steps=2, loss_at="every").eval()
    batch = make_batch(every_subset_present())
    out = model(batch)
    present = model.check_batch(batch)
    per_step = []
    for z, p in zip(out.extras["step_z"], out.extras["step_predictions"]):
        o = type(out)(prediction=p, z=z, z_joint=out.z_joint)
        model.add_losses(o, batch, present)
        per_step.append(o.loss)
    torch.testing.assert_close(out.loss, torch.stack(per_step).mean())
    assert {"supervised/step1", "contrastive/step2"} <= set(out.losses)


def test_predict_from_modalities_uses_mean_of_present_latents_for_complete_samples():
    model = build(predict_from="modalities").eval()
    batch = make_batch(torch.ones(B, 3, dtype=torch.bool))
    out = model(batch)
    expected = model.head(torch.stack([out.z[m] for m in DIMS]).mean(0))
    torch.testing.assert_close(out.prediction, expected)
    gmc_rule = build().eval()  # default predict_from="gmc": complete samples use z_joint
    o = gmc_rule(batch)
    torch.testing.assert_close(o.prediction, gmc_rule.head(o.z_joint))



def test_partial_fusion_weights_the_present_latents_and_learns():
    model = build(predict_from="modalities", partial_fusion="weighted_mean")
    with torch.no_grad():
        model.partial_fusion.logits.copy_(torch.tensor([2.0, -1.0, 0.0]))
    batch = make_batch(every_subset_present())
    out = model.eval()(batch)
    w = model.partial_fusion.weights(batch.present).unsqueeze(-1)
    fused = (w * torch.stack([out.z[m] for m in DIMS], dim=1)).sum(1)
    some = batch.present.any(1)
    torch.testing.assert_close(out.prediction[some], model.head(fused)[some])
    model.train()(batch).loss.backward()
    grad = model.partial_fusion.logits.grad
    assert grad is not None and bool(torch.isfinite(grad).all()) and bool(grad.abs().sum() > 0)

# ---------------------------------------------------------------------------- missing modalities
@pytest.mark.parametrize("context", ["z_mean", "concat"])
@pytest.mark.parametrize("mode", MODES)
def test_outputs_do_not_depend_on_absent_modalities(mode: str, context: str):
    model = build(steps=3, context_mode=mode, context=context, learned_init=True).eval()
    with torch.no_grad():
        model.c0.normal_()
    model.set_fallback(-0.4)
    present = every_subset_present()
    batch = make_batch(present, targets=False, frame_masks=True)
    g = torch.Generator().manual_seed(3)
    junk = {}
    for j, (m, x) in enumerate(batch.inputs.items()):
        keep = present[:, j].view(-1, 1, 1) & batch.frame_mask(m).unsqueeze(-1)
        junk[m] = torch.where(keep, x, 100 * torch.randn(x.shape, generator=g))
    with torch.no_grad():
        ref, out = model(batch), model(batch.replace(inputs=junk))
    torch.testing.assert_close(out.prediction, ref.prediction, rtol=1e-5, atol=1e-6)
    for r, (a, b) in enumerate(zip(out.extras["contexts"], ref.extras["contexts"])):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=lambda s, r=r: f"c_{r}: {s}")
    for j, m in enumerate(DIMS):
        rows = present[:, j]
        torch.testing.assert_close(out.z[m][rows], ref.z[m][rows], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ref.prediction[-1], torch.tensor([-0.4]))
    assert all(torch.equal(c[-1], torch.zeros_like(c[-1])) for c in ref.extras["contexts"])


def test_latent_of_a_modality_depends_on_which_others_are_present():
    """Why supports_latent_reuse is False: z_text changes when audio is dropped."""
    model = build(steps=2).eval()
    batch = make_batch(torch.ones(B, 3, dtype=torch.bool), targets=False)
    with torch.no_grad():
        z_all, _ = model.encode(batch)
        z_drop, _ = model.encode(batch.with_present({"audio": torch.zeros(B, dtype=torch.bool)}))
    assert not torch.allclose(z_all["text"], z_drop["text"], atol=1e-5)


# ---------------------------------------------------------------------------- every option x subset
COMBOS = list(itertools.product(MODES, ("z_mean", "concat"), (False, True), ("last", "every"), (False, True),
                                ("gmc", "modalities")))


@pytest.mark.parametrize("mode, context, detach, loss_at, learned_init, predict_from", COMBOS,
                         ids=["-".join(map(str, c)) for c in COMBOS])
def test_every_option_combination_runs_forward_backward_on_every_subset(mode, context, detach, loss_at,
                                                                         learned_init, predict_from):
    model = build(steps=2, context_mode=mode, context=context, detach_context=detach, loss_at=loss_at,
                  learned_init=learned_init, predict_from=predict_from, encoder="mlp",
                  encoder_kwargs={"hidden_dim": 4}, joint_kwargs={"encoder": "mlp"}).train()
    for subset in all_subsets(DIMS):
        present = torch.tensor([[m in subset for m in DIMS]] * B)
        model.zero_grad()
        out = model(make_batch(present, utterance=True))
        where = subset_name(subset)
        assert out.prediction.shape == (B, 1) and torch.isfinite(out.prediction).all(), where
        assert torch.isfinite(out.loss), where
        out.loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), where
    out = model(make_batch(every_subset_present(), frame_masks=True))  # mixed subsets, sequences
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_rebuilt_from_init_config_and_safetensors_gives_the_same_predictions(tmp_path):
    from safetensors.torch import load_file, save_file

    model = build(steps=2, learned_init=True, context="concat").eval()
    with torch.no_grad():
        model.c0.normal_()
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    torch.manual_seed(1)
    again = create_model(model.registry_name, **model.init_config).eval()
    again.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    batch = make_batch(every_subset_present(), targets=False)
    assert torch.equal(again(batch).prediction, model(batch).prediction)
