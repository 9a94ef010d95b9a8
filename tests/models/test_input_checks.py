"""Issue 14, models: bad sizes refused at construction, bad batches refused (or handled by a
documented rule) at model entry, for every registered model."""

from __future__ import annotations

import pytest
import torch

from robustfusion import MultimodalBatch, create_model
from robustfusion.models import list_models
from tests.models.batches import DIMS, every_subset_present, make_batch

MODELS = list_models()


@pytest.mark.parametrize("kw, match", [
    ({"hidden_dim": 0}, r"hidden_dim: expected a size >= 1, found 0"),
    ({"hidden_dim": -3}, r"hidden_dim: expected a size >= 1, found -3"),
    ({"latent_dim": 0}, r"latent_dim: expected a size >= 1, found 0"),
    ({"hidden_dim": {"text": 8, "audio": 0, "vision": 8}}, r"hidden_dim: expected a size >= 1"),
])
def test_zero_or_negative_sizes_are_refused_at_construction(kw, match):
    with pytest.raises(ValueError, match=match):
        create_model("gmc", modality_dims=DIMS, **kw)


@pytest.mark.parametrize("name", MODELS)
def test_modality_of_dimension_zero_or_negative_is_refused(name):
    with pytest.raises(ValueError, match=r"modality_dims: expected feature sizes >= 1, found \{'audio': 0\}"):
        create_model(name, modality_dims={"text": 5, "audio": 0, "vision": 2})
    with pytest.raises(ValueError, match=r"expected feature sizes >= 1, found \{'text': -1\}"):
        create_model(name, modality_dims={"text": -1, "audio": 3})


def test_mult_sizes_refused():
    with pytest.raises(ValueError, match=r"d_model: expected a size >= 1, found 0"):
        create_model("mult", modality_dims=DIMS, d_model=0)
    with pytest.raises(ValueError, match=r"num_heads: expected a size >= 1, found -2"):
        create_model("mult", modality_dims=DIMS, num_heads=-2)


def _small(name):
    kw = {"d_model": 8, "num_heads": 2} if name == "mult" else {"hidden_dim": 8}
    torch.manual_seed(0)
    return create_model(name, modality_dims=DIMS, **kw).eval()


@pytest.mark.parametrize("name", MODELS)
def test_extra_modality_refused_with_its_name(name):
    model = _small(name)
    batch = make_batch(every_subset_present())
    extra = MultimodalBatch(dict(batch.inputs, depth=torch.randn(len(batch), 4, 2)))
    with pytest.raises(ValueError, match=r"modalities \['depth'\] that the model does not know"):
        model.predict(extra)
    # select_modalities is the way to feed a model a batch with more modalities
    assert torch.equal(model.predict(extra.select_modalities(model.modalities)),
                       model.predict(batch.replace(present=torch.ones_like(batch.present))))


@pytest.mark.parametrize("name", MODELS)
def test_empty_batch_refused(name):
    model = _small(name)
    empty = MultimodalBatch({m: torch.zeros(0, 4, d) for m, d in DIMS.items()})
    with pytest.raises(ValueError, match=r"expected at least one sample, found an empty batch"):
        model.predict(empty)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_float64_and_float16_features_are_cast_to_the_model_dtype(name, dtype):
    model = _small(name)
    batch = make_batch(every_subset_present(), targets=False)
    ref = model.predict(batch)
    other = MultimodalBatch({m: x.to(dtype) for m, x in batch.inputs.items()}, present=batch.present)
    got = model.predict(other)
    assert got.dtype == ref.dtype
    cast_back = MultimodalBatch({m: x.to(dtype).float() for m, x in batch.inputs.items()}, present=batch.present)
    torch.testing.assert_close(got, model.predict(cast_back))


@pytest.mark.parametrize("name", MODELS)
def test_modality_with_no_observed_frame_is_treated_as_absent(name):
    model = _small(name)
    batch = make_batch(every_subset_present(), targets=False, frame_masks=True)
    fm = dict(batch.frame_masks)
    fm["audio"] = fm["audio"].clone()
    fm["audio"][:] = False  # every frame of audio unobserved, audio still marked present
    no_frames = batch.replace(frame_masks=fm)
    assert not bool(no_frames.present_mask("audio").any())
    present = batch.present.clone()
    present[:, batch.index("audio")] = False
    absent = batch.with_present(present)
    torch.testing.assert_close(model.predict(no_frames), model.predict(absent))
    # every modality without frames: the documented all-missing rule (the fallback)
    none = batch.replace(frame_masks={m: torch.zeros_like(v) for m, v in batch.frame_masks.items()})
    model.set_fallback(0.25)
    assert torch.allclose(model.predict(none), torch.full((len(batch), 1), 0.25))


@pytest.mark.parametrize("name", MODELS)
def test_nan_through_replace_is_refused_not_predicted(name):
    model = _small(name)
    batch = make_batch(every_subset_present(), targets=False)
    x = batch.inputs["text"].clone()
    x[0, 0, 0] = float("nan")  # row 0 has every modality present
    with pytest.raises(ValueError, match=r"modality 'text': expected finite features, found nan"):
        model.predict(batch.replace(inputs={**batch.inputs, "text": x}))


@pytest.mark.parametrize("name", MODELS)
def test_sequence_of_length_zero_refused_at_model_entry(name):
    model = _small(name)
    unchecked = MultimodalBatch({m: torch.zeros(2, 0 if m == "text" else 4, d) for m, d in DIMS.items()},
                                validate=False)
    with pytest.raises(ValueError, match=r"modality 'text': expected at least one frame \(T >= 1\)"):
        model.predict(unchecked)
