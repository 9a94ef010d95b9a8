"""Tests of Progressive Fusion ("progressive", arXiv 2209.00302)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import pytest
import torch

from robustfusion.dropping import all_subsets, subset_name
from robustfusion.encoders import create_encoder
from robustfusion.losses.supervised import supervised_loss
from robustfusion.models import create_model, list_models
from robustfusion.models.progressive import ProgressiveFusion, unroll_progressive
from tests.models.batches import every_subset_present, make_batch

DIMS = {"text": 5, "audio": 3, "vision": 2}
B, T, H = 3, 4, 6
MODES = ("concat", "add", "gate")
REPO = Path(__file__).resolve().parents[2]
ENCODER_KWARGS = {"gru": {"hidden_dim": 4}, "mlp": {"hidden_dim": 4},
                  "transformer": {"d_model": 8, "num_heads": 2, "num_layers": 1, "dim_feedforward": 8}}


def build(**kw) -> ProgressiveFusion:
    torch.manual_seed(0)
    kw = {"hidden_dim": H, "encoder_kwargs": ENCODER_KWARGS[kw.get("encoder", "gru")], **kw}
    return create_model("progressive", modality_dims=DIMS, task="regression", num_outputs=1, **kw)


def late_twin(model: ProgressiveFusion):
    """``late_fusion`` sharing the progressive model's encoders, fusion and head."""
    late = create_model("late_fusion", modality_dims=DIMS, encoders=dict(model.encoders), fusion=model.fusion,
                        head=model.head)
    late.set_fallback(model.fallback)
    return late


# ---------------------------------------------------------------------------- construction
def test_registered_and_constructible_with_only_the_required_arguments():
    assert {"progressive", "late_fusion"} <= set(list_models())
    model = create_model("progressive", modality_dims=DIMS, task="regression", num_outputs=1)
    assert model.steps == 2 and model.context_mode == "add" and not model.detach_context
    assert model.loss_at == "last" and model.c0 is None and not model.supports_latent_reuse
    out = model(make_batch(torch.ones(B, 3, dtype=torch.bool)))
    assert out.prediction.shape == (B, 1) and torch.isfinite(out.loss)


@pytest.mark.parametrize("kw, match", [
    ({"steps": 0}, "steps: expected an integer R >= 1, found 0"),
    ({"steps": 1.5}, "steps: expected an integer"),
    ({"context_mode": "multiply"}, "context_mode: expected one of"),
    ({"loss_at": "first"}, "loss_at: expected one of"),
])
def test_bad_options_raise_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        build(**kw)
    with pytest.raises(TypeError, match="fusion: expected a registered fusion name or an nn.Module"):
        build(fusion=3)


def test_given_encoders_must_have_the_context_port():
    plain = {m: create_encoder("gru", in_dim=d, out_dim=H) for m, d in DIMS.items()}
    with pytest.raises(ValueError, match=r"encoders: expected context_dim=6"):
        create_model("progressive", modality_dims=DIMS, hidden_dim=H, encoders=plain)
    ported = {m: create_encoder("mlp", in_dim=d, out_dim=H, context_dim=H, context_mode="gate") for m, d in DIMS.items()}
    model = create_model("progressive", modality_dims=DIMS, hidden_dim=H, encoders=ported)
    assert all(model.encoders[m] is ported[m] for m in DIMS)


class UserEncoder(torch.nn.Module):
    """A user-written encoder that joins by the documented interface only (no base class):
    attributes ``in_dim``/``out_dim``/``context_dim`` and ``forward(x, mask=None, context=None)``."""

    def __init__(self, in_dim: int, out_dim: int, context_dim: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.context_dim = in_dim, out_dim, context_dim
        self.net = torch.nn.Linear(in_dim, out_dim)
        self.ctx = torch.nn.Linear(context_dim, out_dim, bias=False)

    def forward(self, x, mask=None, context=None):
        h = self.net(x.mean(dim=1) if x.dim() == 3 else x)
        return h if context is None else h + self.ctx(context)


def test_a_user_written_encoder_takes_part():
    encs = {m: UserEncoder(d, H, H) for m, d in DIMS.items()}
    model = create_model("progressive", modality_dims=DIMS, hidden_dim=H, steps=3, encoders=encs).eval()
    batch = make_batch(every_subset_present())
    out = model(batch)
    out.loss.backward()
    assert all(e.ctx.weight.grad.abs().sum() > 0 for e in encs.values())
    model.steps = 1
    torch.testing.assert_close(model(batch).prediction, late_twin(model).eval()(batch).prediction, rtol=0, atol=0)


# ---------------------------------------------------------------------------- R = 1 is late fusion
@pytest.mark.parametrize("fusion", ["mean", "concat"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("encoder", ["gru", "mlp", "transformer"])
def test_one_step_equals_late_fusion_with_the_same_weights(encoder: str, mode: str, fusion: str):
    model = build(steps=1, context_mode=mode, fusion=fusion, encoder=encoder, learned_init=(mode == "gate"))
    model.set_fallback(0.3)
    late = late_twin(model)
    model.eval(), late.eval()
    batch = make_batch(every_subset_present(), frame_masks=True)
    out, ref = model(batch), late(batch)
    assert torch.equal(out.prediction, ref.prediction)
    assert torch.equal(out.loss, ref.loss)
    assert torch.equal(out.extras["contexts"][-1], ref.extras["fused"])


@pytest.mark.parametrize("mode", ["add", "gate"])
def test_back_connection_switched_off_equals_late_fusion_at_any_depth(mode: str):
    model = build(steps=3, context_mode=mode, fusion="concat").eval()
    with torch.no_grad():
        for enc in model.encoders.values():
            enc.inject.proj.weight.zero_()
    batch = make_batch(every_subset_present(), frame_masks=True)
    torch.testing.assert_close(model(batch).prediction, late_twin(model).eval()(batch).prediction,
                               rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------- R > 1
@pytest.mark.parametrize("mode", MODES)
def test_more_steps_change_outputs_and_gradients_reach_the_back_connection(mode: str):
    model = build(steps=2, context_mode=mode).eval()
    batch = make_batch(torch.ones(B, 3, dtype=torch.bool))
    out2 = model(batch)
    model.steps = 1
    out1 = model(batch)
    model.steps = 2
    for m in DIMS:
        assert not torch.allclose(out2.extras["features"][m], out1.extras["features"][m], atol=1e-4), m
    assert not torch.allclose(out2.prediction, out1.prediction, atol=1e-5)
    torch.testing.assert_close(out2.extras["step_predictions"][0], out1.prediction)

    out2.loss.backward()
    for m, enc in model.encoders.items():
        if mode == "concat":  # the context's columns of the first layer
            g = enc.gru.weight_ih_l0.grad[:, DIMS[m]:]
        else:
            g = enc.inject.proj.weight.grad
        assert g is not None and g.abs().sum() > 0, f"{mode}: no gradient reached the back-connection of {m}"


def test_one_step_back_connection_gets_no_gradient():
    model = build(steps=1, context_mode="add")
    model(make_batch(torch.ones(B, 3, dtype=torch.bool))).loss.backward()
    assert all(enc.inject.proj.weight.grad is None for enc in model.encoders.values())


def test_detach_context_stops_gradients_through_earlier_steps():
    batch = make_batch(every_subset_present())
    grads = {}
    for detach in (False, True):
        model = build(steps=2, learned_init=True, detach_context=detach, fusion="concat")
        with torch.no_grad():
            model.c0.normal_()
        model(batch).loss.backward()
        grads[detach] = model
    assert grads[False].c0.grad is not None and grads[False].c0.grad.abs().sum() > 0
    assert grads[True].c0.grad is None or grads[True].c0.grad.abs().sum() == 0
    # the back-connection itself still learns from the last step
    assert all(enc.inject.proj.weight.grad.abs().sum() > 0 for enc in grads[True].encoders.values())


def test_detach_context_gradient_equals_last_step_with_constant_context_brute_force():
    batch = make_batch(every_subset_present())
    model = build(steps=3, detach_context=True, fusion="concat").eval()  # eval: no dropout noise
    model(batch).loss.backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    present = model.check_batch(batch)
    with torch.no_grad():
        c_prev = model(batch).extras["contexts"][-2]
    h = {m: enc(batch.inputs[m], None, c_prev) for m, enc in model.encoders.items()}
    fused = model.fusion(h, present) * present.any(dim=1, keepdim=True)
    pred = model.apply_fallback(model.head(fused), present)
    supervised_loss(pred, batch.targets, "regression", "l1").backward()
    for n, p in model.named_parameters():
        ref = p.grad if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(got.get(n, torch.zeros_like(p)), ref, msg=lambda s, n=n: f"{n}: {s}")


def test_loss_every_step_is_the_mean_of_the_per_step_losses():
    model = build(steps=3, loss_at="every")
    batch = make_batch(every_subset_present())
    out = model(batch)
    per_step = [supervised_loss(p, batch.targets, "regression", "l1") for p in out.extras["step_predictions"]]
    torch.testing.assert_close(out.loss, torch.stack(per_step).mean())
    assert set(out.losses) == {"supervised", "supervised/step1", "supervised/step2", "supervised/step3"}
    assert all(p.requires_grad for p in out.extras["step_predictions"])
    last = build(steps=3)(batch)
    assert len(last.extras["step_predictions"]) == 3 and not last.extras["step_predictions"][0].requires_grad
    assert last.extras["step_predictions"][-1] is last.prediction


# ---------------------------------------------------------------------------- missing modalities
@pytest.mark.parametrize("fusion", ["mean", "concat"])
@pytest.mark.parametrize("mode", MODES)
def test_outputs_do_not_depend_on_absent_modalities_or_unobserved_frames(mode: str, fusion: str):
    model = build(steps=3, context_mode=mode, fusion=fusion, learned_init=True).eval()
    with torch.no_grad():
        model.c0.normal_()
    model.set_fallback(0.5)
    present = every_subset_present()
    batch = make_batch(present, targets=False, frame_masks=True)
    g = torch.Generator().manual_seed(7)
    junk = {}
    for j, (m, x) in enumerate(batch.inputs.items()):
        keep = present[:, j].view(-1, 1, 1) & batch.frame_mask(m).unsqueeze(-1)
        junk[m] = torch.where(keep, x, 100 * torch.randn(x.shape, generator=g))
    with torch.no_grad():
        ref, out = model(batch), model(batch.replace(inputs=junk))
    torch.testing.assert_close(out.prediction, ref.prediction, rtol=1e-5, atol=1e-6)
    for r, (c_ref, c_out) in enumerate(zip(ref.extras["contexts"], out.extras["contexts"])):
        torch.testing.assert_close(c_out, c_ref, rtol=1e-5, atol=1e-6, msg=lambda s, r=r: f"c_{r}: {s}")
    for j, m in enumerate(DIMS):  # present modalities' features too
        rows = present[:, j]
        torch.testing.assert_close(out.extras["features"][m][rows], ref.extras["features"][m][rows],
                                   rtol=1e-5, atol=1e-6)
    # the all-absent sample: fallback and zero context at every step
    torch.testing.assert_close(ref.prediction[-1], torch.tensor([0.5]))
    for c in ref.extras["contexts"]:
        assert torch.equal(c[-1], torch.zeros_like(c[-1]))


def test_context_of_a_sample_depends_only_on_its_own_modalities():
    """Batch-mates do not leak into each other: each row equals the row run alone."""
    model = build(steps=2, fusion="concat").eval()
    batch = make_batch(every_subset_present(), targets=False)
    with torch.no_grad():
        full = model(batch).prediction
        alone = torch.cat([model(batch.select([i])).prediction for i in range(batch.batch_size)])
    torch.testing.assert_close(full, alone, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- every option x subset
COMBOS = list(itertools.product(MODES, (False, True), ("last", "every"), (False, True), ("mean", "concat")))


@pytest.mark.parametrize("mode, detach, loss_at, learned_init, fusion", COMBOS,
                         ids=["-".join(map(str, c)) for c in COMBOS])
def test_every_option_combination_runs_forward_backward_on_every_subset(mode, detach, loss_at, learned_init, fusion):
    model = build(steps=2, context_mode=mode, detach_context=detach, loss_at=loss_at, learned_init=learned_init,
                  fusion=fusion, encoder="mlp").train()
    for subset in all_subsets(DIMS):
        present = torch.tensor([[m in subset for m in DIMS]] * B)
        for utterance in (False, True):
            model.zero_grad()
            out = model(make_batch(present, frame_masks=True, utterance=utterance))
            where = f"{subset_name(subset)} utterance={utterance}"
            assert out.prediction.shape == (B, 1) and torch.isfinite(out.prediction).all(), where
            assert torch.isfinite(out.loss), where
            out.loss.backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads), where
    out = model(make_batch(every_subset_present(), frame_masks=True))  # mixed subsets in one batch
    out.loss.backward()
    assert torch.isfinite(out.loss)


def test_unroll_progressive_is_model_agnostic():
    """The core loop with plain callables: c_r = mean(x_m + c_{r-1}), zeroed where nothing is present."""
    x = {"a": torch.tensor([[1.0], [2.0]]), "b": torch.tensor([[3.0], [4.0]])}
    any_present = torch.tensor([[True], [False]])
    feats, ctx = unroll_progressive(lambda c: {k: v + (0 if c is None else c) for k, v in x.items()},
                                    lambda h: (h["a"] + h["b"]) / 2, None, 3, any_present)
    assert ctx[0] is None and len(feats) == 3
    torch.testing.assert_close(torch.cat(ctx[1:], dim=1), torch.tensor([[2.0, 4.0, 6.0], [0.0, 0.0, 0.0]]))


# ---------------------------------------------------------------------------- interaction fit
def _interaction_module():
    path = REPO / "benchmarks" / "interaction_fit.py"
    spec = importlib.util.spec_from_file_location("robustfusion_bench_interaction_fit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_progressive_beats_late_fusion_of_the_same_size_on_an_interaction():
    """Small version of benchmarks/interaction_fit.py (y = payload[k], k read from the selector;
    4-wide bottleneck, 8 slots): over 3 seeds, R=2 progressive fusion beats late fusion with at
    least as many parameters, on every seed."""
    fit = _interaction_module()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is fastest and plays well on shared CI
    try:
        res = fit.run_experiment([0, 1, 2], n_train=2000, n_test=1000, context_modes=("concat",), epochs=40,
                                 lr=1e-2)
    finally:
        torch.set_num_threads(threads)
    by_seed: dict[int, dict[str, object]] = {}
    for r in res:
        by_seed.setdefault(r.seed, {})["late" if r.model.startswith("late") else "prog"] = r
    for seed, pair in by_seed.items():
        prog, late = pair["prog"], pair["late"]
        assert late.params >= prog.params
        assert prog.test_mse < 0.3 and prog.test_mse < 0.5 * late.test_mse, (seed, prog, late)


# ---------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("name", ["progressive", "late_fusion"])
def test_rebuilt_from_init_config_and_safetensors_gives_the_same_predictions(name: str, tmp_path):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    kw = {"steps": 3, "learned_init": True, "fusion": "concat"} if name == "progressive" else {}
    model = create_model(name, modality_dims=DIMS, task="regression", num_outputs=1, hidden_dim=H, **kw).eval()
    if name == "progressive":
        with torch.no_grad():
            model.c0.normal_()
    model.set_fallback(0.2)
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    torch.manual_seed(1)
    again = create_model(model.registry_name, **model.init_config).eval()
    again.load_state_dict(load_file(str(tmp_path / "model.safetensors")))
    batch = make_batch(every_subset_present(), targets=False)
    assert torch.equal(again(batch).prediction, model(batch).prediction)
