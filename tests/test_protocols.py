"""The protocol registry (robustfusion.protocols): the built-in entries, each dropper against the
dropping function it wraps, and a protocol added by one entry reaching the evaluator, the
summaries, the config check and the report."""

from __future__ import annotations

import pytest
import torch

from robustfusion import MultimodalBatch
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.dropping import (
    drop_frames,
    drop_samples,
    drop_to_missing_rate,
    protocol_generator,
)
from robustfusion.protocols import (
    DEFAULT_LEVELS,
    MISSING_RATE_LEVELS,
    SWEEP_SUBSET,
    Protocol,
    default_protocols,
    get_protocol,
    protocol_label,
    protocol_names,
    register_protocol,
    sweep_protocols,
    unregister_protocol,
)
from robustfusion.reporting import write_report
from robustfusion.robustness import evaluate
from robustfusion.runner.config import ConfigError, load_config

MODS = ("text", "audio", "vision")


def _batch(b: int = 16, t: int = 5) -> MultimodalBatch:
    g = torch.Generator().manual_seed(0)
    inputs = {"text": torch.randn(b, t, 2, generator=g), "audio": torch.randn(b, 3, generator=g),
              "vision": torch.randn(b, t + 1, 2, generator=g)}
    return MultimodalBatch(inputs)


def _dataset(n: int = 24) -> MultimodalDataset:
    g = torch.Generator().manual_seed(1)
    feats = {m: torch.randn(n, 4, 3, generator=g) for m in MODS}
    return MultimodalDataset(feats, torch.randn(n, generator=g), "regression", name="toy")


class PresentCount:
    """Predicts the number of present modalities (so every drop pattern changes the metrics)."""

    def predict(self, batch):
        return batch.present.float().sum(1, keepdim=True)


def test_built_in_entries():
    assert protocol_names() == ("subsets", "sample_rate", "frame_rate", "missing_rate")
    assert default_protocols() == ("subsets", "sample_rate", "frame_rate")
    assert sweep_protocols() == ("sample_rate", "frame_rate", "missing_rate")
    assert get_protocol("sample_rate").default_levels == get_protocol("frame_rate").default_levels == DEFAULT_LEVELS
    assert get_protocol("missing_rate").default_levels == MISSING_RATE_LEVELS
    assert [p for p in protocol_names() if get_protocol(p).reuses_latents] == ["subsets", "sample_rate",
                                                                               "missing_rate"]
    assert [p for p in protocol_names() if get_protocol(p).needs_frames] == ["frame_rate"]
    assert [p for p in protocol_names() if get_protocol(p).mean_summary] == ["frame_rate"]
    assert protocol_label("frame_rate") == "frame drop rate (per frame of each sequence)"
    assert protocol_label("not_registered") == "not_registered"
    assert get_protocol("subsets").conditions(("a", "b"), ()) == [(None, "a"), (None, "b"), (None, "a+b")]
    assert get_protocol("missing_rate").conditions(MODS, [0.0, 0.5]) == [(0.0, SWEEP_SUBSET), (0.5, SWEEP_SUBSET)]
    with pytest.raises(KeyError, match="unknown protocol 'frame_rat'.*did you mean"):
        get_protocol("frame_rat")


@pytest.mark.parametrize("keep", [False, True])
def test_each_dropper_streams_the_generator_of_its_condition(keep):
    """Two batches through one dropper == the dropping function with one protocol generator."""
    a, b = _batch(), _batch(9)
    d = get_protocol("sample_rate").make_dropper(3, 0.4, SWEEP_SUBSET, MODS, keep)
    g = protocol_generator(3, "sample_rate", 0.4)
    for x in (a, b):
        assert torch.equal(d(x).present, drop_samples(x, 0.4, g, keep).present)
    d = get_protocol("missing_rate").make_dropper(3, 0.3, SWEEP_SUBSET, MODS, keep)
    g = protocol_generator(3, "missing_rate", 0.3)
    for x in (a, b):
        assert torch.equal(d(x).present, drop_to_missing_rate(x, 0.3, g).present)
    d = get_protocol("frame_rate").make_dropper(3, 0.5, SWEEP_SUBSET, MODS, keep)
    gens = {m: protocol_generator(3, "frame_rate", 0.5, m) for m in MODS}
    for x in (a, b):
        got, want = d(x), drop_frames(x, 0.5, gens)
        assert all(torch.equal(got.frame_masks[m], want.frame_masks[m]) for m in want.frame_masks)
    kept = get_protocol("subsets").make_dropper(3, None, "text+vision", MODS, keep)(a).present
    assert kept[:, 0].all() and not kept[:, 1].any() and kept[:, 2].all()


def _text_rate(seed, level, subset, modalities, keep_at_least_one):
    """Drop the text modality of each sample with probability ``level`` (the test's protocol)."""
    gen = protocol_generator(seed, "text_rate", level)

    def drop(batch):
        lost = torch.rand(batch.present.shape[0], generator=gen) < level
        present = batch.present.clone()
        present[:, 0] &= ~lost
        return batch.with_present(present)

    return drop


@pytest.fixture
def text_rate():
    proto = register_protocol(Protocol("text_rate", "text drop rate (per sample)", "text drop rate", _text_rate,
                                       (0.0, 0.5, 1.0), in_default=False))
    yield proto
    unregister_protocol("text_rate")


def test_a_protocol_added_by_one_entry_reaches_evaluator_config_and_report(text_rate, tmp_path):
    assert "text_rate" in protocol_names() and "text_rate" not in default_protocols()
    rows = evaluate(PresentCount(), _dataset(), protocols=["text_rate"], metrics=["MAE"], seed=4)
    curve = {r["level"]: r["value"] for r in rows if isinstance(r["level"], float)}
    assert sorted(curve) == [0.0, 0.5, 1.0]
    # brute force: the predictor counts present modalities; the target is fixed
    ds = _dataset()
    gen = protocol_generator(4, "text_rate", 0.5)
    lost = torch.cat([torch.rand(len(b.present), generator=gen) < 0.5 for b in ds.batches(256)])
    want = (3.0 - lost.float() - ds.targets).abs().mean().item()
    assert curve[0.5] == pytest.approx(want)
    assert curve[1.0] == pytest.approx((2.0 - ds.targets).abs().mean().item())
    assert {r["level"] for r in rows if not isinstance(r["level"], float)} == {"auilc", "relative"}
    cfg = load_config(None, ["eval.protocols=[subsets,text_rate]", "eval.levels.text_rate=[0.0,1.0]"])
    assert list(cfg.eval.levels.text_rate) == [0.0, 1.0]
    report = write_report(rows, tmp_path, plots=False)
    assert "text drop rate (per sample)" in report["markdown"]


def test_register_refuses_a_taken_name_and_a_non_protocol():
    with pytest.raises(ValueError, match="protocol 'subsets' is already registered"):
        register_protocol(Protocol("subsets", "x", "x", _text_rate))
    with pytest.raises(TypeError, match="expected a Protocol, found dict"):
        register_protocol({"name": "x"})


def test_config_levels_per_protocol_and_the_plain_list_of_earlier_versions():
    cfg = load_config(None, ["eval.levels.missing_rate=[0.3]"])
    assert {p: list(v) for p, v in cfg.eval.levels.items()} == {
        "sample_rate": list(DEFAULT_LEVELS), "frame_rate": list(DEFAULT_LEVELS), "missing_rate": [0.3]}
    legacy = load_config(None, ["eval.levels=[0.0,0.5]"])
    assert {p: list(v) for p, v in legacy.eval.levels.items()} == {
        "sample_rate": [0.0, 0.5], "frame_rate": [0.0, 0.5], "missing_rate": list(MISSING_RATE_LEVELS)}
    with pytest.raises(ConfigError, match=r"'eval.levels': keys \['subsets'\] are not sweep protocols"):
        load_config(None, ["eval.levels.subsets=[0.3]"])
    with pytest.raises(ConfigError, match=r"'eval.levels.frame_rate': expected rates in \[0, 1\], found \[1.5\]"):
        load_config(None, ["eval.levels.frame_rate=[1.5]"])
    with pytest.raises(ConfigError, match=r"'eval.protocols': expected a non-empty list of \['subsets'"):
        load_config(None, ["eval.protocols=[subset]"])
