"""Contract tests over the model registry (as timm's tests/test_models.py does).

Every model in ``robustfusion.models.list_models()`` -- collected at import time, so a newly
registered model is covered automatically -- must, on CPU in float32, for sequence inputs
(``T = 4``), unaligned sequences (lengths 4 / 6 / 3) and utterance inputs (``[B, D]``),
batch sizes 1 and 2 and every non-empty modality
subset: run forward and backward, give finite predictions of shape ``[B, K]`` and a finite
loss; give predictions that do not depend on the values stored in absent modalities or
unobserved frames; and predict ``fallback`` for samples with no modality present.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from robustfusion.batch import MultimodalBatch
from robustfusion.dropping import all_subsets, subset_name
from robustfusion.models import create_model, list_models

DIMS = {"text": 6, "audio": 5, "vision": 4}
T = 4
UNALIGNED_T = (4, 6, 3)  # per-modality lengths of the "unaligned" input kind
KINDS = ["sequence", "unaligned", "utterance"]
MODELS = list_models()
SUBSETS = all_subsets(DIMS)

# Tiny sizes for models we know; other models get the generic small sizes their constructor
# accepts (or their defaults), so the file stays fast as the registry grows.
SMALL_KWARGS: dict[str, dict] = {
    "mult": {"d_model": 8, "num_heads": 2, "num_layers": 1},
    "tfn": {"hidden_dim": 4, "post_fusion_dim": 8},
    "lmf": {"hidden_dim": 8, "fusion_dim": 8, "rank": 2},
    "ensemble": {"member": "gmc_pf", "members": 2, "hidden_dim": 8, "latent_dim": 8},
}
GENERIC_SMALL = {"hidden_dim": 8, "latent_dim": 8}


def small_kwargs(name: str) -> dict:
    if name in SMALL_KWARGS:
        return dict(SMALL_KWARGS[name])
    from robustfusion.models.registry import MODELS as REG
    params = inspect.signature(REG.get(name)).parameters
    return {k: v for k, v in GENERIC_SMALL.items() if k in params}


def build(name: str, task: str = "regression", num_outputs: int = 1):
    torch.manual_seed(0)
    return create_model(name, modality_dims=DIMS, task=task, num_outputs=num_outputs, **small_kwargs(name))


def make_batch(b: int, kind: str, present: torch.Tensor | None = None, targets: bool = True,
               frame_masks: bool = False, seed: int = 0) -> MultimodalBatch:
    g = torch.Generator().manual_seed(seed)
    lengths = dict(zip(DIMS, UNALIGNED_T)) if kind == "unaligned" else {m: T for m in DIMS}
    shape = (lambda m, d: (b, d)) if kind == "utterance" else (lambda m, d: (b, lengths[m], d))
    inputs = {m: torch.randn(*shape(m, d), generator=g) for m, d in DIMS.items()}
    fm = None
    if frame_masks and kind != "utterance":
        fm = {m: torch.rand(b, lengths[m], generator=g) > 0.3 for m in DIMS}
        for v in fm.values():
            v[:, 0] = True
    y = torch.randn(b, generator=g) if targets else None
    return MultimodalBatch(inputs, present=present, frame_masks=fm, targets=y)


def subset_present(b: int, subset: tuple[str, ...]) -> torch.Tensor:
    return torch.tensor([[m in subset for m in DIMS]] * b)


def test_registry_is_not_empty_and_records_config():
    assert {"early_fusion", "tfn", "lmf", "mult", "gmc"} <= set(MODELS)
    m = build("tfn")
    assert m.registry_name == "tfn" and m.init_config["modality_dims"] == DIMS


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("b", [1, 2])
@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_every_subset(name: str, b: int, kind: str):
    model = build(name).train()
    for subset in SUBSETS:
        batch = make_batch(b, kind, subset_present(b, subset), frame_masks=True)
        model.zero_grad()
        out = model(batch)
        where = f"{name} {kind} B={b} subset={subset_name(subset)}"
        assert out.prediction.shape == (b, 1), where
        assert out.prediction.dtype == torch.float32, where
        assert torch.isfinite(out.prediction).all(), where
        assert out.loss is not None and out.loss.dim() == 0 and torch.isfinite(out.loss), where
        out.loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads, f"{where}: no parameter received a gradient"
        assert all(torch.isfinite(g).all() for g in grads), where


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", MODELS)
def test_output_independent_of_absent_values(name: str, kind: str):
    """One sample per subset plus an all-absent one; junk in absent modalities and in
    unobserved frames must not change any prediction."""
    model = build(name).eval()
    model.set_fallback(0.7)
    present = torch.tensor([[m in s for m in DIMS] for s in SUBSETS] + [[False] * len(DIMS)])
    b = present.shape[0]
    batch = make_batch(b, kind, present, targets=False, frame_masks=True)
    junk_inputs = {}
    g = torch.Generator().manual_seed(1)
    for i, (m, x) in enumerate(batch.inputs.items()):
        junk = 50 * torch.randn(x.shape, generator=g)
        absent = ~present[:, i]
        keep = absent.view(-1, *([1] * (x.dim() - 1))).expand_as(x).clone()
        fm = batch.frame_mask(m)
        if fm is not None:
            keep |= (~fm).unsqueeze(-1).expand_as(x)
        junk_inputs[m] = torch.where(keep, junk, x)
    with torch.no_grad():
        ref = model(batch).prediction
        out = model(batch.replace(inputs=junk_inputs)).prediction
    assert torch.isfinite(ref).all()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5, msg=lambda s: f"{name} ({kind}): {s}")
    torch.testing.assert_close(ref[-1], torch.full((1,), 0.7))


@pytest.mark.parametrize("name", MODELS)
def test_classification_and_multilabel_heads(name: str):
    for task, k, y in [("classification", 3, torch.tensor([0, 2])), ("multilabel", 4, torch.tensor([[0, 1, 1, 0], [1, 0, 0, 0.]]))]:
        model = build(name, task=task, num_outputs=k)
        batch = make_batch(2, "sequence").replace(targets=y)
        out = model(batch)
        assert out.prediction.shape == (2, k)
        assert torch.isfinite(out.loss)
        out.loss.backward()


@pytest.mark.parametrize("name", MODELS)
def test_missing_modality_in_batch_is_an_error(name: str):
    model = build(name)
    batch = make_batch(2, "sequence")
    partial = MultimodalBatch({m: x for m, x in batch.inputs.items() if m != "audio"})
    with pytest.raises(ValueError, match="audio"):
        model(partial)
