"""The seed ensemble (``model.ensemble: K``): members from distinct initialisations, one
prediction from theirs, each member's own loss, the member's contracts kept, and a run that
trains, calibrates, saves and reloads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from robustfusion.models import SeedEnsemble, create_model
from robustfusion.models.ensemble import combine_predictions
from robustfusion.runner import ConfigError, load_config, load_run, train_run
from tests.models.batches import DIMS, every_subset_present, make_batch

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"hidden_dim": 8, "latent_dim": 8}


def build(members: int = 3, member: str = "gmc_pf", task: str = "regression", k: int = 1, **kw) -> SeedEnsemble:
    torch.manual_seed(0)
    return create_model("ensemble", modality_dims=DIMS, task=task, num_outputs=k, member=member, members=members,
                        **SMALL, **kw)


def test_combining_averages_values_or_probabilities():
    preds = [torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[3.0, -1.0, 0.5]])]
    torch.testing.assert_close(combine_predictions(preds, "regression"), torch.tensor([[1.5, 0.0, 1.25]]))
    mean_p = (preds[0].softmax(-1) + preds[1].softmax(-1)) / 2
    torch.testing.assert_close(combine_predictions(preds, "classification").softmax(-1), mean_p)
    torch.testing.assert_close(combine_predictions(preds, "classification").exp().sum(-1), torch.ones(1))
    mean_s = (preds[0].sigmoid() + preds[1].sigmoid()) / 2
    torch.testing.assert_close(combine_predictions(preds, "multilabel").sigmoid(), mean_s)


def test_members_start_apart_and_the_ensemble_predicts_their_mean_on_every_subset():
    model = build().eval()
    weights = [torch.cat([p.flatten() for p in m.parameters()]) for m in model.members]
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    model.set_fallback(0.25)
    batch = make_batch(every_subset_present(), targets=False)
    with torch.no_grad():
        got = model(batch).prediction
        members = torch.stack([m(batch).prediction for m in model.members]).mean(0)
    torch.testing.assert_close(got[:-1], members[:-1])
    torch.testing.assert_close(got[-1], torch.tensor([0.25]))  # no modality present: the fallback


def test_latents_side_by_side_give_the_same_prediction_as_forward():
    model = build(members=2).eval()
    batch = make_batch(every_subset_present(), targets=False)
    with torch.no_grad():
        z, z_joint = model.encode(batch)
        got = model.predict_from_latents(z, z_joint, model.check_batch(batch))
        ref = model(batch).prediction
    assert z_joint.shape[-1] == 2 * model.members[0].encode(batch)[1].shape[-1]
    torch.testing.assert_close(got, ref)


def test_the_loss_is_the_mean_of_the_members_own_losses_and_trains_every_member():
    model = build(members=2).train()
    batch = make_batch(every_subset_present()[:-1])
    torch.manual_seed(1)
    out = model(batch)
    torch.manual_seed(1)
    alone = [m(batch) for m in model.members]
    torch.testing.assert_close(out.loss, torch.stack([o.loss for o in alone]).mean())
    out.loss.backward()
    assert all(any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters()) for m in model.members)
    assert {"supervised", "contrastive"} <= set(out.losses)


def test_classification_output_is_the_log_of_the_averaged_probabilities():
    model = build(members=2, task="classification", k=4).eval()
    batch = make_batch(every_subset_present()[:-1], targets=False)
    with torch.no_grad():
        probs = torch.stack([m(batch).prediction.softmax(-1) for m in model.members]).mean(0)
        torch.testing.assert_close(model(batch).prediction.softmax(-1), probs)


def test_partial_fusion_gathers_every_member_without_saving_a_weight_twice():
    model = build(members=2, partial_fusion="weighted_mean")
    own = {id(p) for m in model.members for p in m.partial_fusion.parameters()}
    assert {id(p) for p in model.partial_fusion.parameters()} == own
    assert not any(k.startswith("partial_fusion") for k in model.state_dict())


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="expected members >= 1"):
        build(members=0)
    with pytest.raises(ValueError, match="other than 'ensemble'"):
        build(member="ensemble")
    with pytest.raises(TypeError, match=r"create_model\('gmc_pf'\): unexpected keyword argument\(s\) \['bogus'\]"):
        build(bogus=1)
    with pytest.raises(ConfigError, match="model.ensemble: expected a number of members >= 1, found 0"):
        from robustfusion.data import load_dataset
        from robustfusion.runner.api import build_model
        cfg = load_config(None, ["model.ensemble=0"])
        build_model(cfg, load_dataset("synthetic", n_train=32, n_valid=16, n_test=16)["train"])


def test_a_run_trains_calibrates_saves_and_reloads_an_ensemble(tmp_path):
    cfg = load_config(str(ROOT / "configs" / "synthetic" / "gmc_pf.yaml"),
                      ["model.ensemble=2", "data.options.n_train=96", "data.options.n_valid=48",
                       "data.options.n_test=48", "train.epochs=2", "train.batch_size=32", "model.params.hidden_dim=8",
                       "train.progress=false"])
    run = train_run(cfg, out=tmp_path)
    assert isinstance(run.model.model if hasattr(run.model, "model") else run.model, SeedEnsemble)
    assert "calibration" in run.final  # train.calibrate_fusion fitted every member's partial fusion
    again = load_run(run.dir)
    batch = next(iter(run.data.splits["test"].batches(48)))
    with torch.no_grad():
        torch.testing.assert_close(again.model.predict(batch), run.model.predict(batch))
