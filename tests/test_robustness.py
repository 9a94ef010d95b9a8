"""Robustness evaluator: drop-pattern determinism and sharing across models, latent reuse equal to
the plain path, AUILC / relative robustness / LNLN's mean over 0.0..0.9, GCNet's missing_rate
protocol, evaluator rows through the CSV round trip (the row schema, aggregation and CSV writer
themselves: tests/test_results.py), and a pin on the existing protocols' rows."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from robustfusion import create_model
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import (
    all_subsets,
    drop_samples,
    drop_to_missing_rate,
    protocol_generator,
    subset_name,
)
from robustfusion.results import (
    AUILC_LEVEL,
    DEFAULT_LEVELS,
    MEAN_LEVEL,
    MISSING_RATE_LEVELS,
    RELATIVE_LEVEL,
    read_rows_csv,
    write_rows_csv,
)
from robustfusion.robustness import (
    auilc,
    evaluate,
    evaluate_many,
    relative_robustness,
    summary_rows,
)

LEVELS = (0.0, 0.25, 0.5, 1.0)


def make_dataset(n=40, task="regression", seed=0, with_absent=False) -> MultimodalDataset:
    g = torch.Generator().manual_seed(seed)
    feats = {"text": torch.randn(n, 6, 5, generator=g), "audio": torch.randn(n, 4, 3, generator=g),
             "vision": torch.randn(n, 4, generator=g)}
    fm = {"text": torch.rand(n, 6, generator=g) > 0.2}
    fm["text"][:, 0] = True
    present = None
    if with_absent:
        present = torch.rand(n, 3, generator=g) > 0.15
    if task == "regression":
        y = torch.randn(n, generator=g) * 1.5
        y[:3] = 0.0
        return MultimodalDataset(feats, y, "regression", frame_masks=fm, present=present, name="toy")
    if task == "classification":
        return MultimodalDataset(feats, torch.randint(0, 3, (n,), generator=g), "classification", num_outputs=3,
                                 frame_masks=fm, name="toy3")
    return MultimodalDataset(feats, (torch.rand(n, 4, generator=g) > 0.5).float(), "multilabel", frame_masks=fm,
                             name="toy4")


class Recorder:
    """A predictor that records the presence and frame masks it was given; its prediction
    depends on them (so metrics change with the drop pattern)."""

    def __init__(self, k: int = 1, scale: float = 1.0):
        self.k, self.scale, self.seen = k, scale, []

    def predict(self, batch):
        self.seen.append((batch.present.clone(), {m: v.clone() for m, v in batch.frame_masks.items()}))
        x = batch.inputs["vision"].sum(1) * batch.present[:, 2] + batch.present[:, 0].float()
        fm = batch.frame_mask("audio")
        if fm is not None:
            x = x + fm.float().mean(1)
        return (self.scale * x).unsqueeze(1).repeat(1, self.k)


def _key(r):
    return (r["protocol"], r["level"], r["subset"], r["metric"])


# ---------------------------------------------------------------------------- rows
def test_rows_layout_subsets_and_sweeps():
    ds = make_dataset()
    rows = evaluate(Recorder(), ds, levels=LEVELS, seed=3, batch_size=16, model_name="rec")
    subsets = {r["subset"] for r in rows if r["protocol"] == "subsets"}
    assert subsets == {subset_name(s) for s in all_subsets(ds.modalities)} and len(subsets) == 7
    assert all(r["level"] is None for r in rows if r["protocol"] == "subsets")
    sweep = [r for r in rows if r["protocol"] != "subsets"]
    assert {r["subset"] for r in sweep} == {"all"}
    assert {r["level"] for r in sweep} == set(LEVELS) | {AUILC_LEVEL, RELATIVE_LEVEL}
    assert {(r["dataset"], r["model"], r["seed"], r["split"]) for r in rows} == {("toy", "rec", 3, "test")}
    n_metrics = 8
    assert len(rows) == n_metrics * (7 + 2 * len(LEVELS) + 2 * 2)
    assert len({_key(r) for r in rows}) == len(rows)


def test_same_seed_same_rows_and_other_seed_differs():
    ds = make_dataset()
    a = evaluate(Recorder(), ds, levels=LEVELS, seed=0, batch_size=16)
    b = evaluate(Recorder(), ds, levels=LEVELS, seed=0, batch_size=16)
    c = evaluate(Recorder(), ds, levels=LEVELS, seed=1, batch_size=16)
    same = lambda x, y: x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
    assert all(same(x["value"], y["value"]) and _key(x) == _key(y) for x, y in zip(a, b))
    va = {_key(r): r["value"] for r in a if r["protocol"] == "sample_rate" and r["level"] == 0.5}
    vc = {_key(r): r["value"] for r in c if r["protocol"] == "sample_rate" and r["level"] == 0.5}
    assert va != vc


def test_two_models_see_identical_masks_equal_to_the_protocol_reference():
    ds = make_dataset(n=37)
    r1, r2 = Recorder(), Recorder(k=1, scale=-3.0)
    evaluate(r1, ds, protocols=("sample_rate", "frame_rate", "subsets"), levels=LEVELS, seed=5, batch_size=10)
    evaluate(r2, ds, protocols=("sample_rate", "frame_rate", "subsets"), levels=LEVELS, seed=5, batch_size=10)
    assert len(r1.seen) == len(r2.seen) == 4 * (2 * len(LEVELS) + 7)
    for (p1, f1), (p2, f2) in zip(r1.seen, r2.seen):
        assert torch.equal(p1, p2)
        assert f1.keys() == f2.keys() and all(torch.equal(f1[m], f2[m]) for m in f1)
    # reference: one generator per (seed, protocol, level) streamed over the batches in order
    n_cond = 2 * len(LEVELS) + 7
    gen = protocol_generator(5, "sample_rate", 0.5)
    for b, batch in enumerate(ds.batches(10)):
        ref = drop_samples(batch, 0.5, gen).present
        assert torch.equal(r1.seen[b * n_cond + LEVELS.index(0.5)][0], ref)
        # frame_rate at 1.0 drops every frame of the sequences; vision has no frames
        frames = r1.seen[b * n_cond + len(LEVELS) + LEVELS.index(1.0)][1]
        assert set(frames) == {"text", "audio"} and not any(bool(v.any()) for v in frames.values())
        # subsets: last 7 conditions of the batch, in all_subsets order
        for j, s in enumerate(all_subsets(ds.modalities)):
            pres = r1.seen[b * n_cond + 2 * len(LEVELS) + j][0]
            assert torch.equal(pres, torch.tensor([m in s for m in ds.modalities]).expand_as(pres))


def test_keep_at_least_one_never_empties_a_sample():
    rec = Recorder()
    evaluate(rec, make_dataset(), protocols=("sample_rate",), levels=(1.0,), keep_at_least_one=True, batch_size=16)
    assert all(bool(p.any(1).all()) for p, _ in rec.seen)


# ---------------------------------------------------------------------------- latent reuse
class CountingGMC:
    """Wraps a GMC and counts its encoder passes."""

    def __init__(self, model):
        self.model, self.encodes = model, 0
        orig = model.encode

        def encode(*a, **k):
            self.encodes += 1
            return orig(*a, **k)

        model.encode = encode


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_latent_reuse_equals_plain_path_for_gmc(task):
    torch.manual_seed(0)
    ds = make_dataset(n=30, task=task, with_absent=(task == "regression"))
    model = create_model("gmc", modality_dims=ds.modality_dims, task=ds.task, num_outputs=ds.num_outputs,
                         hidden_dim=12, latent_dim=8)
    model.set_fallback(0.25 if task == "regression" else 0.0)
    assert type(model).supports_latent_reuse
    counter = CountingGMC(model)
    reuse = evaluate(model, ds, levels=LEVELS, batch_size=8, seed=2)
    n_reuse = counter.encodes
    counter.encodes = 0
    plain = evaluate(model, ds, levels=LEVELS, batch_size=8, seed=2, reuse_latents=False)
    n_plain = counter.encodes
    assert len(reuse) == len(plain)
    for a, b in zip(reuse, plain):
        assert _key(a) == _key(b)
        if math.isnan(b["value"]):
            assert math.isnan(a["value"])
        else:
            assert a["value"] == pytest.approx(b["value"], abs=1e-6)
    batches = 4
    assert n_plain == batches * (7 + 2 * len(LEVELS))
    assert n_reuse == batches * (1 + len(LEVELS))  # one encode per batch + frame-rate passes
    assert model.training  # training mode restored


def test_multilabel_and_metric_selection():
    ds = make_dataset(task="multilabel")
    rows = evaluate(Recorder(k=4), ds, protocols=("subsets",), metrics=["Avg_F1", "Happy_acc"], batch_size=64)
    assert {r["metric"] for r in rows} == {"Avg_F1", "Happy_acc"} and len(rows) == 14
    with pytest.raises(ValueError, match="not computed"):
        evaluate(Recorder(k=4), ds, protocols=("subsets",), metrics=["MAE"])


def test_bad_arguments():
    ds = make_dataset()
    with pytest.raises(ValueError, match="protocols"):
        evaluate(Recorder(), ds, protocols=("dropout",))
    with pytest.raises(ValueError, match=r"rates in \[0, 1\]"):
        evaluate(Recorder(), ds, levels=(0.0, 1.5))
    with pytest.raises(ValueError, match="predict"):
        evaluate(object(), ds)


# ---------------------------------------------------------------------------- AUILC
def test_auilc_and_relative_robustness_reference():
    x = [0.0, 0.1, 0.2, 0.5, 1.0]
    y = [0.8, 0.78, 0.7, 0.6, 0.5]
    ref = sum((x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2 for i in range(4))
    assert auilc(x, y) == pytest.approx(ref)
    assert auilc(x[::-1], y[::-1]) == pytest.approx(ref)  # order does not matter
    assert relative_robustness(x, y) == pytest.approx(ref / 0.8)
    assert relative_robustness(x, [0.7] * 5) == pytest.approx(1.0)
    assert math.isnan(relative_robustness([0.1, 0.5], [0.7, 0.6]))  # 0.0 missing
    assert math.isnan(auilc([0.0, 1.0], [0.1, float("nan")]))


def test_summary_rows_match_curves():
    rows = evaluate(Recorder(), make_dataset(), levels=LEVELS, batch_size=16, summaries=False)
    summ = summary_rows(rows)
    for p in ("sample_rate", "frame_rate"):
        curve = {r["level"]: r["value"] for r in rows if r["protocol"] == p and r["metric"] == "MAE"}
        got = {r["level"]: r["value"] for r in summ if r["protocol"] == p and r["metric"] == "MAE"}
        xs = sorted(curve)
        area = float(np.trapezoid([curve[v] for v in xs], xs)) if hasattr(np, "trapezoid") else \
            float(np.trapz([curve[v] for v in xs], xs))
        assert got[AUILC_LEVEL] == pytest.approx(area)
        assert got[RELATIVE_LEVEL] == pytest.approx(area / curve[0.0])


# ---------------------------------------------------------------------------- CSV
def test_evaluator_rows_survive_the_csv_round_trip(tmp_path):
    rows = evaluate(Recorder(), make_dataset(), levels=LEVELS, batch_size=16)
    rows[0]["value"] = float("nan")
    path = write_rows_csv(rows, tmp_path / "sub" / "robustness.csv")
    back = read_rows_csv(path)
    assert len(back) == len(rows)
    for a, b in zip(rows, back):  # the CSV format itself is tested in tests/test_results.py
        assert {k: v for k, v in a.items() if k != "value"} == {k: v for k, v in b.items() if k != "value"}
        assert (math.isnan(a["value"]) and math.isnan(b["value"])) or a["value"] == b["value"]


def test_evaluate_many_names_models_and_seeds():
    ds = make_dataset()
    rows = evaluate_many({"a": Recorder(), "b": {3: Recorder(scale=2.0), 4: Recorder(scale=2.0)}}, ds,
                         seeds=(0, 1), protocols=("subsets",), metrics=["MAE"], batch_size=64)
    assert sorted({(r["model"], r["seed"]) for r in rows}) == [("a", 0), ("a", 1), ("b", 3), ("b", 4)]
    assert len(rows) == 4 * 7
    with pytest.raises(ValueError, match="seeds="):
        evaluate_many({"a": Recorder()}, ds, seed=1)


def test_frame_rate_on_utterance_level_data_is_refused_not_a_flat_curve():
    """Issue 14: one vector per sample has no frames to drop; the curve would be flat (1.000)."""

    class Zero:
        def predict(self, batch):
            return torch.zeros(batch.batch_size, 1)

    g = torch.Generator().manual_seed(0)
    ds = MultimodalDataset({"text": torch.randn(12, 4, generator=g), "audio": torch.randn(12, 3, generator=g)},
                           torch.randn(12, generator=g), "regression", name="utt")
    with pytest.raises(ValueError, match=r"'frame_rate' drops frames of sequences, but dataset 'utt' is "
                                         r"utterance-level .*eval\.protocols=\[subsets,sample_rate\]"):
        evaluate(Zero(), ds, protocols=("subsets", "frame_rate"), levels=[0.0, 1.0])
    rows = evaluate(Zero(), ds, protocols=("subsets", "sample_rate"), levels=[0.0, 1.0])
    assert {r["protocol"] for r in rows} >= {"subsets", "sample_rate"}



# ---------------------------------------------------------------------------- missing_rate (GCNet)
def test_missing_rate_rows_default_levels_and_summaries():
    rows = evaluate(Recorder(), make_dataset(), protocols=("missing_rate",), seed=3, batch_size=16)
    assert {r["protocol"] for r in rows} == {"missing_rate"} and {r["subset"] for r in rows} == {"all"}
    assert MISSING_RATE_LEVELS == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    assert {r["level"] for r in rows} == set(MISSING_RATE_LEVELS) | {AUILC_LEVEL, RELATIVE_LEVEL}  # no mean row
    curve = {r["level"]: r["value"] for r in rows if r["metric"] == "MAE" and isinstance(r["level"], float)}
    summ = {r["level"]: r["value"] for r in rows if r["metric"] == "MAE" and isinstance(r["level"], str)}
    assert summ[AUILC_LEVEL] == pytest.approx(auilc(list(curve), list(curve.values())))
    assert summ[RELATIVE_LEVEL] == pytest.approx(summ[AUILC_LEVEL] / (curve[0.0] * 0.7))


def test_missing_rate_masks_are_shared_and_equal_the_reference():
    ds = make_dataset(n=45, with_absent=True)
    r1, r2 = Recorder(), Recorder(scale=-2.0)
    for r in (r1, r2):
        evaluate(r, ds, protocols=("missing_rate",), seed=7, batch_size=10)
    n_lv = len(MISSING_RATE_LEVELS)
    assert len(r1.seen) == len(r2.seen) == 5 * n_lv
    assert all(torch.equal(a[0], b[0]) for a, b in zip(r1.seen, r2.seen))
    gens = {lv: protocol_generator(7, "missing_rate", lv) for lv in MISSING_RATE_LEVELS}
    for b, batch in enumerate(ds.batches(10)):
        for j, lv in enumerate(MISSING_RATE_LEVELS):
            seen = r1.seen[b * n_lv + j][0]
            assert torch.equal(seen, drop_to_missing_rate(batch, lv, gens[lv]).present)
            had = batch.present.any(dim=1)
            assert bool(seen[had].any(dim=1).all())  # at least one modality kept
            assert not (seen & ~batch.present).any()
        assert all(torch.equal(f, batch.frame_masks[m]) for m, f in r1.seen[b * n_lv][1].items())


def test_levels_per_protocol():
    ds = make_dataset()
    rows = evaluate(Recorder(), ds, protocols=("sample_rate", "frame_rate", "missing_rate"), batch_size=64,
                    metrics=["MAE"], summaries=False)
    by = lambda rs, p: sorted(r["level"] for r in rs if r["protocol"] == p)
    assert by(rows, "sample_rate") == by(rows, "frame_rate") == list(DEFAULT_LEVELS)
    assert by(rows, "missing_rate") == list(MISSING_RATE_LEVELS)
    one = evaluate(Recorder(), ds, protocols=("sample_rate", "missing_rate"), levels=[0.0, 0.5], batch_size=64,
                   metrics=["MAE"], summaries=False)
    assert by(one, "sample_rate") == by(one, "missing_rate") == [0.0, 0.5]
    per = evaluate(Recorder(), ds, protocols=("sample_rate", "missing_rate"), levels={"sample_rate": [0.0, 1.0]},
                   batch_size=64, metrics=["MAE"], summaries=False)
    assert by(per, "sample_rate") == [0.0, 1.0] and by(per, "missing_rate") == list(MISSING_RATE_LEVELS)
    with pytest.raises(ValueError, match="not sweep protocols"):
        evaluate(Recorder(), ds, protocols=("missing_rate",), levels={"subsets": [0.1]})
    with pytest.raises(TypeError, match="sequence of rates"):
        evaluate(Recorder(), ds, protocols=("missing_rate",), levels=0.5)


def test_missing_rate_latent_reuse_equals_plain_path():
    torch.manual_seed(0)
    ds = make_dataset(n=30)
    model = create_model("gmc", modality_dims=ds.modality_dims, task=ds.task, num_outputs=ds.num_outputs,
                         hidden_dim=12, latent_dim=8)
    counter = CountingGMC(model)
    reuse = evaluate(model, ds, protocols=("missing_rate",), batch_size=8, seed=2)
    assert counter.encodes == 4  # one encoding per batch serves every level
    plain = evaluate(model, ds, protocols=("missing_rate",), batch_size=8, seed=2, reuse_latents=False)
    for a, b in zip(reuse, plain, strict=True):
        assert _key(a) == _key(b)
        assert (math.isnan(a["value"]) and math.isnan(b["value"])) or a["value"] == pytest.approx(b["value"], abs=1e-6)


# ---------------------------------------------------------------------------- LNLN mean over 0.0..0.9
def test_frame_rate_mean_over_0_to_0_9():
    ds = make_dataset()
    rows = evaluate(Recorder(), ds, protocols=("sample_rate", "frame_rate"), batch_size=16, metrics=["MAE", "Corr"])
    means = [r for r in rows if r["level"] == MEAN_LEVEL]
    assert {(r["protocol"], r["metric"]) for r in means} == {("frame_rate", "MAE"), ("frame_rate", "Corr")}
    for r in means:
        curve = {x["level"]: x["value"] for x in rows if x["protocol"] == "frame_rate" and x["metric"] == r["metric"]}
        hand = (curve[0.0] + curve[0.1] + curve[0.2] + curve[0.3] + curve[0.4] + curve[0.5] + curve[0.6]
                + curve[0.7] + curve[0.8] + curve[0.9]) / 10  # 1.0 left out, as LNLN does
        assert r["value"] == pytest.approx(hand, rel=1e-12)
    # after every AUILC / relative row, so the rows without it are unchanged
    first_mean = min(i for i, r in enumerate(rows) if r["level"] == MEAN_LEVEL)
    assert all(r["level"] == MEAN_LEVEL for r in rows[first_mean:])
    # LNLN's own levels (0.0..0.9, no 1.0) give it too; a level set without all ten does not
    lnln = evaluate(Recorder(), ds, protocols=("frame_rate",), levels=[i / 10 for i in range(10)], batch_size=16,
                    metrics=["MAE"])
    assert [r["level"] for r in lnln if isinstance(r["level"], str)] == [AUILC_LEVEL, RELATIVE_LEVEL, MEAN_LEVEL]
    short = evaluate(Recorder(), ds, protocols=("frame_rate",), levels=LEVELS, batch_size=16, metrics=["MAE"])
    assert not any(r["level"] == MEAN_LEVEL for r in short)


def test_existing_protocols_rows_are_pinned():
    """subsets / sample_rate / frame_rate rows (MEAN_LEVEL rows left out) hash to the value the
    evaluator gave before missing_rate and the mean row were added (commit 6b3d8b5): adding a
    protocol must not move any existing drop pattern or number."""

    def metric(p, y):
        return {"mean_pred": float(p[:, 0].mean()), "mse": float(((p[:, 0] - y) ** 2).mean())}

    rows = []
    for kal in (False, True):
        rows += evaluate(Recorder(), make_dataset(n=50, with_absent=kal),
                         protocols=("subsets", "sample_rate", "frame_rate"), seed=11, batch_size=16,
                         keep_at_least_one=kal, metrics=metric, model_name=f"r{kal}")
    rows = [r for r in rows if r["level"] != MEAN_LEVEL]
    assert len(rows) == 132
    text = "\n".join(",".join(repr(r[k]) if isinstance(r[k], float) else str(r[k]) for k in r) for r in rows)
    assert hashlib.sha256(text.encode()).hexdigest() == PINNED_ROWS_SHA256


PINNED_ROWS_SHA256 = "8ac0f05f0f38835daa1238b33ee4ba2a4465da021dba48b42ec6ab852917bd08"
