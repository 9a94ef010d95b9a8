"""MultimodalBatch: construction, validation errors, derived batches, replace_nonfinite."""

from __future__ import annotations

import re

import pytest
import torch

from robustfusion import MultimodalBatch, replace_nonfinite

B = 4


def _inputs(b: int = B) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "text": torch.randn(b, 5, 3, generator=g),  # sequence [B, T, D]
        "audio": torch.randn(b, 7, generator=g),  # utterance vector [B, D]
        "vision": torch.randn(b, 6, 2, generator=g),
    }


# --------------------------------------------------------------------------- construction
def test_default_presence_is_all_true_in_input_order():
    batch = MultimodalBatch(_inputs())
    assert batch.modalities == ("text", "audio", "vision")
    assert batch.present.shape == (B, 3) and batch.present.dtype == torch.bool
    assert bool(batch.present.all())
    assert batch.batch_size == len(batch) == B
    assert batch.index("audio") == 1
    assert bool(batch.all_present().all())
    assert batch.frame_mask("text") is None


def test_presence_from_matrix_and_from_dict_agree():
    present = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 1], [0, 1, 0]], dtype=torch.bool)
    a = MultimodalBatch(_inputs(), present=present)
    b = MultimodalBatch(_inputs(), present={"text": present[:, 0], "audio": present[:, 1],
                                            "vision": present[:, 2]})
    assert torch.equal(a.present, present)
    assert torch.equal(b.present, present)
    assert torch.equal(a.present_mask("audio"), present[:, 1])
    assert a.all_present().tolist() == [False, True, False, False]


def test_presence_dict_defaults_missing_names_to_present():
    batch = MultimodalBatch(_inputs(), present={"audio": torch.tensor([True, False, True, False])})
    assert batch.present[:, 0].all() and batch.present[:, 2].all()
    assert batch.present[:, 1].tolist() == [True, False, True, False]


def test_presence_accepts_0_1_integers_and_floats():
    p = torch.tensor([[1, 0, 1]] * B)
    assert torch.equal(MultimodalBatch(_inputs(), present=p).present, p.bool())
    assert torch.equal(MultimodalBatch(_inputs(), present=p.float()).present, p.bool())


def test_frame_masks_are_stored_as_bool():
    fm = torch.ones(B, 5, dtype=torch.int64)
    fm[0, 3:] = 0
    batch = MultimodalBatch(_inputs(), frame_masks={"text": fm})
    assert batch.frame_mask("text").dtype == torch.bool
    assert batch.frame_mask("text")[0].tolist() == [True, True, True, False, False]
    assert batch.frame_mask("vision") is None


def test_unknown_modality_index_raises_key_error_naming_modalities():
    batch = MultimodalBatch(_inputs())
    with pytest.raises(KeyError, match="depth.*text"):
        batch.index("depth")


# --------------------------------------------------------------------------- bad inputs
def test_empty_inputs_raise():
    with pytest.raises(ValueError, match="at least one modality"):
        MultimodalBatch({})


def test_non_tensor_input_raises():
    with pytest.raises(ValueError, match=r"'text'.*torch.Tensor.*list"):
        MultimodalBatch({"text": [[1.0, 2.0]]})


def test_mismatched_batch_sizes_raise():
    inputs = _inputs()
    inputs["audio"] = torch.randn(B + 1, 7)
    with pytest.raises(ValueError, match=r"'audio'.*batch size 4.*\(5, 7\)"):
        MultimodalBatch(inputs)


@pytest.mark.parametrize("shape", [(B,), (B, 2, 3, 4), ()])
@pytest.mark.parametrize("position", ["first", "second"])
def test_wrong_rank_raises(shape, position):
    inputs = _inputs()
    bad = torch.randn(shape)
    if position == "first":
        inputs = {"bad": bad, **inputs}
    else:
        inputs["bad"] = bad
    with pytest.raises(ValueError, match=r"'bad'.*\[B, D\], \[B, T, D\] or raw frames \[B, T, C, H, W\].*found shape " + re.escape(str(shape))):
        MultimodalBatch(inputs)


def test_integer_features_raise():
    inputs = _inputs()
    inputs["audio"] = torch.ones(B, 7, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"'audio'.*floating-point.*int64"):
        MultimodalBatch(inputs)


@pytest.mark.parametrize("value", [float("nan"), float("-inf"), float("inf")])
def test_nonfinite_features_raise_naming_modality_and_value(value):
    inputs = _inputs()
    inputs["vision"][2, 1, 0] = value
    with pytest.raises(ValueError, match=r"'vision'.*finite.*found " + re.escape(str(value)) + r".*\[2, 1, 0\]"):
        MultimodalBatch(inputs)


def test_nonfinite_features_pass_without_validation():
    inputs = _inputs()
    inputs["audio"][0, 0] = float("-inf")
    batch = MultimodalBatch(inputs, validate=False)
    assert torch.isinf(batch.inputs["audio"][0, 0])


def test_presence_matrix_wrong_shape_raises():
    with pytest.raises(ValueError, match=r"presence mask.*\(4, 3\).*'text', 'audio', 'vision'.*found \(4, 2\)"):
        MultimodalBatch(_inputs(), present=torch.ones(B, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"presence mask.*found \(3, 3\)"):
        MultimodalBatch(_inputs(), present=torch.ones(B - 1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"presence mask.*found \(4,\)"):
        MultimodalBatch(_inputs(), present=torch.ones(B, dtype=torch.bool))


def test_presence_dict_unknown_name_raises():
    with pytest.raises(ValueError, match=r"unknown modalities \['depth'\].*'text'"):
        MultimodalBatch(_inputs(), present={"depth": torch.ones(B, dtype=torch.bool)})


def test_presence_dict_wrong_length_raises():
    with pytest.raises(ValueError, match=r"presence mask of 'audio'.*\(4,\).*found \(3,\)"):
        MultimodalBatch(_inputs(), present={"audio": torch.ones(B - 1, dtype=torch.bool)})


@pytest.mark.parametrize("bad", [torch.full((B, 3), 2), torch.full((B, 3), 0.5)])
def test_presence_non_boolean_values_raise(bad):
    with pytest.raises(ValueError, match=r"presence mask.*boolean.*found values"):
        MultimodalBatch(_inputs(), present=bad)
    with pytest.raises(ValueError, match=r"presence mask of 'text'.*boolean.*found values"):
        MultimodalBatch(_inputs(), present={"text": bad[:, 0]})


def test_presence_complex_dtype_raises():
    with pytest.raises(ValueError, match=r"presence mask.*boolean.*complex"):
        MultimodalBatch(_inputs(), present=torch.ones(B, 3, dtype=torch.complex64))


def test_frame_mask_wrong_shape_raises():
    with pytest.raises(ValueError, match=r"frame mask of 'text'.*expected shape \(4, 5\).*found \(4, 4\)"):
        MultimodalBatch(_inputs(), frame_masks={"text": torch.ones(B, 4, dtype=torch.bool)})


def test_frame_mask_on_utterance_modality_raises():
    with pytest.raises(ValueError, match=r"frame mask of 'audio'.*not a sequence.*\(4, 7\)"):
        MultimodalBatch(_inputs(), frame_masks={"audio": torch.ones(B, 7, dtype=torch.bool)})


def test_frame_mask_unknown_modality_raises():
    with pytest.raises(ValueError, match=r"unknown modality 'depth'.*'text'"):
        MultimodalBatch(_inputs(), frame_masks={"depth": torch.ones(B, 5, dtype=torch.bool)})


def test_frame_mask_non_boolean_values_raise():
    with pytest.raises(ValueError, match=r"frame mask of 'text'.*boolean.*found values"):
        MultimodalBatch(_inputs(), frame_masks={"text": torch.full((B, 5), 3)})


@pytest.mark.parametrize("targets", [torch.zeros(B - 1), torch.zeros(B + 1, 2), torch.tensor(1.0)])
def test_targets_wrong_length_raise(targets):
    with pytest.raises(ValueError, match=r"targets.*leading dimension 4.*found shape"):
        MultimodalBatch(_inputs(), targets=targets)


def test_nonfinite_targets_raise():
    with pytest.raises(ValueError, match=r"targets.*finite"):
        MultimodalBatch(_inputs(), targets=torch.tensor([0.0, float("nan"), 1.0, 2.0]))


# --------------------------------------------------------------------------- replace_nonfinite
def test_replace_nonfinite_replaces_only_nonfinite_values():
    x = torch.tensor([[1.0, float("nan")], [float("-inf"), float("inf")], [-2.5, 0.0]])
    y = replace_nonfinite(x)
    assert torch.equal(y, torch.tensor([[1.0, 0.0], [0.0, 0.0], [-2.5, 0.0]]))
    assert torch.isnan(x[0, 1])  # the input is not modified
    assert torch.equal(replace_nonfinite(x, value=-1.0)[1], torch.tensor([-1.0, -1.0]))
    inputs = _inputs()
    inputs["audio"][1, 3] = float("-inf")
    batch = MultimodalBatch({k: replace_nonfinite(v) for k, v in inputs.items()})
    assert batch.inputs["audio"][1, 3] == 0.0


# --------------------------------------------------------------------------- derived batches
def _full_batch() -> MultimodalBatch:
    present = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 1], [0, 1, 0]], dtype=torch.bool)
    fm = torch.ones(B, 5, dtype=torch.bool)
    fm[:, 4] = False
    return MultimodalBatch(_inputs(), present=present, frame_masks={"text": fm},
                           targets=torch.arange(B, dtype=torch.float32))


def test_select_keeps_everything_aligned():
    batch = _full_batch()
    for idx in ([2, 0], torch.tensor([3, 1]), slice(1, 3)):
        sub = batch.select(idx)
        rows = torch.arange(B)[idx]
        assert sub.batch_size == len(rows)
        for m in batch.modalities:
            assert torch.equal(sub.inputs[m], batch.inputs[m][rows])
        assert torch.equal(sub.present, batch.present[rows])
        assert torch.equal(sub.frame_mask("text"), batch.frame_mask("text")[rows])
        assert torch.equal(sub.targets, batch.targets[rows])


def test_to_moves_every_tensor():
    batch = _full_batch()
    moved = batch.to("cpu")
    assert moved.device == torch.device("cpu")
    assert torch.equal(moved.present, batch.present)
    assert torch.equal(moved.frame_mask("text"), batch.frame_mask("text"))
    assert torch.equal(moved.targets, batch.targets)
    as_double = MultimodalBatch({k: v.double() for k, v in batch.inputs.items()})
    assert as_double.to(torch.device("cpu")).inputs["text"].dtype == torch.float64


def test_with_present_replaces_only_the_mask():
    batch = _full_batch()
    new = batch.with_present({"text": torch.zeros(B, dtype=torch.bool)})
    assert not new.present[:, 0].any()
    assert new.present[:, 1:].all()  # names not given default to present
    assert new.inputs is batch.inputs or all(new.inputs[m] is batch.inputs[m] for m in batch.modalities)
    assert torch.equal(new.frame_mask("text"), batch.frame_mask("text"))
    assert torch.equal(new.targets, batch.targets)
    assert torch.equal(batch.present, _full_batch().present)  # the original is unchanged
    with pytest.raises(ValueError, match=r"presence mask.*found \(4, 1\)"):
        batch.with_present(torch.ones(B, 1, dtype=torch.bool))


def test_with_frame_masks_merges_and_replace_changes_targets():
    batch = _full_batch()
    vm = torch.zeros(B, 6, dtype=torch.bool)
    new = batch.with_frame_masks({"vision": vm})
    assert torch.equal(new.frame_mask("vision"), vm)
    assert torch.equal(new.frame_mask("text"), batch.frame_mask("text"))
    assert batch.replace(targets=None).targets is None


# ---------------------------------------------------------------- issue 14: no silent wrong results
def test_replace_validates_new_inputs_where_observed():
    batch = _full_batch()
    x = batch.inputs["text"].clone()
    x[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"modality 'text': expected finite features, found nan"):
        batch.replace(inputs={**batch.inputs, "text": x})
    # junk where nothing is observed (absent modality) is allowed: it is never read
    absent = batch.with_present({"text": torch.zeros(batch.batch_size, dtype=torch.bool)})
    assert torch.isnan(absent.replace(inputs={**batch.inputs, "text": x}).inputs["text"]).any()
    with pytest.raises(ValueError, match=r"modality 'text': expected floating-point features"):
        batch.replace(inputs={**batch.inputs, "text": x.long()})


def test_frame_mask_with_no_observed_frame_marks_the_modality_absent():
    batch = _full_batch()
    fm = torch.ones(batch.inputs["text"].shape[:2], dtype=torch.bool)
    fm[1] = False
    dropped = batch.with_frame_masks({"text": fm})
    before = batch.present_mask("text").tolist()
    assert before[1]
    assert dropped.present_mask("text").tolist() == [p and i != 1 for i, p in enumerate(before)]
    assert batch.present_mask("text").tolist() == before  # the original batch is unchanged


def test_empty_sequence_and_zero_width_features_are_refused():
    with pytest.raises(ValueError, match=r"modality 'text': expected at least one frame \(T >= 1\), found shape \(2, 0, 3\)"):
        MultimodalBatch({"text": torch.randn(2, 0, 3)})
    with pytest.raises(ValueError, match=r"modality 'audio': expected a feature size >= 1, found shape \(2, 0\)"):
        MultimodalBatch({"text": torch.randn(2, 3), "audio": torch.randn(2, 0)})


def test_select_modalities_keeps_masks_of_the_chosen_ones():
    batch = _full_batch()
    sub = batch.select_modalities(["vision", "text"])
    assert sub.modalities == ("vision", "text")
    assert torch.equal(sub.present[:, 1], batch.present_mask("text"))
    with pytest.raises(ValueError, match=r"unknown modalities \['depth'\]"):
        batch.select_modalities(["depth"])
