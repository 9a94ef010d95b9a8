"""Synthetic affect benchmark: determinism, the closed-form posterior against a brute-force joint
Gaussian, the oracle against least squares, monotonicity under modality and frame removal,
calibration."""

import numpy as np
import pytest
import torch

from robustfusion.batch import MultimodalBatch
from robustfusion.data import ModalitySpec, SyntheticAffect, SyntheticOracle, load_dataset
from robustfusion.dropping import all_subsets, drop_frames, keep_subset, protocol_generator


@pytest.fixture(scope="module")
def gen():
    return SyntheticAffect(seed=0)


@pytest.fixture(scope="module")
def data(gen):
    return gen.splits(n_train=1500, n_valid=10, n_test=800)


def test_deterministic_per_seed():
    a = SyntheticAffect(seed=5).sample(20, "train")
    b = SyntheticAffect(seed=5).sample(20, "train")
    c = SyntheticAffect(seed=6).sample(20, "train")
    t = SyntheticAffect(seed=5).sample(20, "test")
    for m in a["features"]:
        np.testing.assert_array_equal(a["features"][m], b["features"][m])
        np.testing.assert_array_equal(a["frame_masks"][m], b["frame_masks"][m])
        assert not np.allclose(a["features"][m], c["features"][m])
        assert not np.allclose(a["features"][m], t["features"][m])
    np.testing.assert_array_equal(a["sentiment"], b["sentiment"])
    np.testing.assert_array_equal(a["emotion"], b["emotion"])


def test_default_sizes_and_layout(data):
    tr = data["train"]
    assert len(tr) == 1500 and tr.task == "regression" and tr.num_outputs == 1
    assert {m: tuple(x.shape[1:]) for m, x in tr.features.items()} == {
        "text": (10, 24), "audio": (12, 16), "vision": (8, 20)}
    # variable lengths: zero padding after the last real frame, masked out
    for m, x in tr.features.items():
        fm = tr.frame_masks[m]
        assert fm[:, 0].all() and not fm.all()
        assert (x[~fm] == 0).all()
    tr.full_batch()  # validated: finite
    assert isinstance(tr.oracle, SyntheticOracle)  # the declared field the evaluator reads


def _brute_force_posterior(gen, batch):
    """Posterior of s from the joint Gaussian over (s, u_1..u_M), built row by row."""
    k, p = gen.k, gen.p
    names = list(gen.specs)
    means, covs = [], []
    for i in range(batch.batch_size):
        rows, zs, noise = [], [], []
        for j, m in enumerate(names):
            if not batch.present_mask(m)[i]:
                continue
            sp = gen.specs[m]
            fm = batch.frame_mask(m)
            x = batch.inputs[m][i].double().numpy()
            inv = {"identity": lambda v: v, "sinh": np.arcsinh, "exp": np.log, "cube": np.cbrt}[sp.nonlinearity]
            for t in range(sp.frames):
                if fm is not None and not fm[i, t]:
                    continue
                H = np.zeros((sp.dim, k + p * len(names)))
                H[:, :k] = gen.A[m][t]
                H[:, k + j * p: k + (j + 1) * p] = gen.B[m][t]
                rows.append(H)
                zs.append(inv(x[t]))
                noise.append(np.full(sp.dim, sp.noise ** 2))
        dim = k + p * len(names)
        if not rows:
            means.append(np.zeros(k))
            covs.append(np.eye(k))
            continue
        H, z, r = np.concatenate(rows), np.concatenate(zs), np.concatenate(noise)
        P = np.eye(dim) + H.T @ (H / r[:, None])
        cov = np.linalg.inv(P)
        mu = cov @ (H.T @ (z / r))
        means.append(mu[:k])
        covs.append(cov[:k, :k])
    return np.stack(means), np.stack(covs)


@pytest.mark.parametrize("g", ["identity", "sinh", "exp", "cube"])
def test_posterior_matches_brute_force(g):
    specs = {"a": ModalitySpec(frames=3, dim=4, signal=0.8, nonlinearity=g),
             "b": ModalitySpec(frames=4, dim=3, signal=0.5, noise=0.7, nonlinearity="sinh")}
    gen = SyntheticAffect(seed=3, latent_dim=2, private_dim=2, modalities=specs)
    ds = gen.dataset(12, "test")
    rng = torch.Generator().manual_seed(0)
    batch = ds.full_batch()
    present = torch.rand(12, 2, generator=rng) < 0.7
    present[0] = False  # nothing observed: the prior
    fmasks = {m: ds.frame_masks[m] & (torch.rand(ds.frame_masks[m].shape, generator=rng) < 0.7) for m in specs}
    batch = batch.with_present(present).with_frame_masks(fmasks)
    mu, cov = gen.posterior(batch)
    mu_ref, cov_ref = _brute_force_posterior(gen, batch)
    np.testing.assert_allclose(mu.numpy(), mu_ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cov.numpy(), cov_ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(mu[0].numpy(), 0)
    pred = gen.oracle_predict(batch, emotion=False)
    np.testing.assert_allclose(pred.sentiment[:, 0].numpy(), gen.y_scale * mu_ref @ gen.w, rtol=1e-5, atol=1e-6)


def _lsq_mse(train, test, subset):
    def feats(ds):
        cols = [ds.features[m].reshape(len(ds), -1).numpy().astype(np.float64) for m in subset]
        return np.concatenate(cols + [np.ones((len(ds), 1))], axis=1)

    coef, *_ = np.linalg.lstsq(feats(train), train.targets.numpy(), rcond=None)
    return float(np.mean((feats(test) @ coef - test.targets.numpy()) ** 2))


def test_oracle_beats_least_squares_on_every_subset(gen, data):
    tr, te = data["train"], data["test"]
    batch = te.full_batch()
    for subset in all_subsets(gen.modalities):
        pred = gen.oracle_predict(keep_subset(batch, subset), emotion=False).sentiment[:, 0]
        oracle_mse = float(((pred - te.targets) ** 2).mean())
        assert oracle_mse < _lsq_mse(tr, te, subset), subset


def test_error_grows_as_modalities_are_removed(gen, data):
    te = data["test"]
    batch = te.full_batch()
    var, mse = {}, {}
    for subset in all_subsets(gen.modalities):
        out = gen.oracle_predict(keep_subset(batch, subset), emotion=False)
        var[subset] = out.sentiment_var[:, 0]
        mse[subset] = float(((out.sentiment[:, 0] - te.targets) ** 2).mean())
    for big, v_big in var.items():
        for small, v_small in var.items():
            if set(small) < set(big):  # per sample: more evidence never increases posterior variance
                assert (v_big <= v_small + 1e-6).all(), (big, small)
    full = ("text", "audio", "vision")
    assert mse[full] < mse[("text",)] < mse[("audio",)] < mse[("vision",)]
    assert mse[full] < mse[("audio", "vision")]
    # nothing present: predict the prior mean 0 with the prior variance
    none = gen.oracle_predict(batch.with_present(torch.zeros(len(te), 3, dtype=torch.bool)), emotion=False)
    assert (none.sentiment == 0).all()
    np.testing.assert_allclose(none.sentiment_var.numpy(), gen.y_scale ** 2 + gen.y_noise ** 2, rtol=1e-5)


def test_error_grows_as_frames_are_removed(gen, data):
    te = data["test"]
    batch = te.full_batch()
    variances, mses = [], []
    for rate in (0.0, 0.3, 0.6, 0.9):  # the evaluator's frame_rate protocol
        gens = {m: protocol_generator(0, "frame_rate", rate, m) for m in te.modalities}
        out = gen.oracle_predict(drop_frames(batch, rate, generators=gens), emotion=False)
        variances.append(float(out.sentiment_var.mean()))
        mses.append(float(((out.sentiment[:, 0] - te.targets) ** 2).mean()))
    assert variances == sorted(variances) and variances[0] < variances[-1]
    assert mses[0] < mses[2] < mses[3]
    # nested frame sets: per sample, observing fewer frames never lowers the posterior variance
    g = torch.Generator().manual_seed(0)
    u = {m: torch.rand(te.frame_masks[m].shape, generator=g) for m in te.modalities}
    prev = None
    for keep in (1.0, 0.7, 0.4, 0.1):
        masks = {m: te.frame_masks[m] & (u[m] < keep) for m in te.modalities}
        v = gen.oracle_predict(batch.with_frame_masks(masks), emotion=False).sentiment_var[:, 0]
        if prev is not None:
            assert (v >= prev - 1e-6).all()
        prev = v


def test_posterior_is_calibrated_on_large_n():
    gen = SyntheticAffect(seed=2)
    te = gen.dataset(6000, "test")
    batch = te.full_batch()
    for subset in [("text", "audio", "vision"), ("audio",), ("vision",)]:
        out = gen.oracle_predict(keep_subset(batch, subset), emotion=False)
        mse = float(((out.sentiment[:, 0] - te.targets) ** 2).mean())
        expected = float(out.sentiment_var.mean())
        assert abs(mse - expected) / expected < 0.06, (subset, mse, expected)


def test_emotion_probabilities(gen, data):
    te = gen.dataset(600, "test", target="emotion")
    batch = te.full_batch()
    out = gen.oracle_predict(batch, num_samples=500, seed=1)
    p = out.emotion_probs
    assert p.shape == (600, 6)
    np.testing.assert_allclose(p.sum(1).numpy(), 1, atol=1e-6)
    again = gen.oracle_predict(batch, num_samples=500, seed=1).emotion_probs
    assert torch.equal(p, again)
    y = te.targets
    acc = float((p.argmax(1) == y).float().mean())
    majority = float(torch.bincount(y).max()) / len(y)
    assert acc > majority + 0.2
    # calibrated: the average predicted probability of each class matches its frequency
    freq = torch.bincount(y, minlength=6).float() / len(y)
    np.testing.assert_allclose(p.mean(0).numpy(), freq.numpy(), atol=0.04)
    # fewer modalities: lower accuracy, and the oracle stays a valid distribution
    p_vis = gen.oracle_predict(keep_subset(batch, ["vision"]), num_samples=500).emotion_probs
    assert float((p_vis.argmax(1) == y).float().mean()) < acc


def test_oracle_as_model(gen, data):
    te = data["test"]
    batch = te.get_batch(range(16))
    oracle = te.meta["oracle"]
    assert oracle.task == "regression" and oracle.num_outputs == 1
    assert oracle.modality_dims == te.modality_dims
    pred = oracle.predict(batch)
    assert pred.shape == (16, 1) and pred.dtype == torch.float32
    assert torch.equal(oracle(batch).prediction, pred)
    emo = SyntheticOracle(gen, target="emotion", num_samples=300)
    logp = emo.predict(batch)
    assert emo.task == "classification" and logp.shape == (16, 6) and torch.isfinite(logp).all()
    np.testing.assert_allclose(logp.softmax(1).sum(1).numpy(), 1, atol=1e-5)
    probs = SyntheticOracle(gen, target="emotion", num_samples=300, emotion_output="probs").predict(batch)
    torch.testing.assert_close(probs.clamp_min(1e-6).log(), logp)


def test_bad_inputs(gen, data):
    te = data["test"]
    b = te.get_batch(range(4))
    with pytest.raises(ValueError, match=r"unknown to the generator"):
        gen.posterior(MultimodalBatch({"text": b.inputs["text"], "face": b.inputs["vision"]}))
    with pytest.raises(ValueError, match=r"'text': expected shape \[B, 10, 24\]"):
        gen.posterior(MultimodalBatch({"text": b.inputs["text"][:, :5]}))
    with pytest.raises(ValueError, match=r"target"):
        gen.dataset(5, target="arousal")
    with pytest.raises(ValueError, match=r"unknown spec keys \['signl'\]"):
        SyntheticAffect(modalities={"text": {"signl": 1.0}})
    with pytest.raises(ValueError, match=r"nonlinearity"):
        ModalitySpec(nonlinearity="relu")


def test_configurable_informativeness():
    """Raising vision's signal makes vision-only prediction better (text strong/vision weak is a default)."""
    weak = SyntheticAffect(seed=0)
    strong = SyntheticAffect(seed=0, modalities={"text": {}, "audio": {}, "vision": {"signal": 0.4}})
    vw = weak.dataset(300, "test").full_batch()
    vs = strong.dataset(300, "test").full_batch()
    var_w = weak.oracle_predict(keep_subset(vw, ["vision"]), emotion=False).sentiment_var.mean()
    var_s = strong.oracle_predict(keep_subset(vs, ["vision"]), emotion=False).sentiment_var.mean()
    assert var_s < var_w


def test_registry_seed_and_target():
    a = load_dataset("synthetic", n_train=30, n_valid=10, n_test=10, seed=4)
    b = load_dataset("synthetic", n_train=30, n_valid=10, n_test=10, seed=4)
    assert torch.equal(a["train"].features["audio"], b["train"].features["audio"])
    e = load_dataset("synthetic", n_train=30, n_valid=10, n_test=10, seed=4, target="emotion")
    assert torch.equal(e["train"].targets, torch.as_tensor(a["train"].meta["emotion"]))
