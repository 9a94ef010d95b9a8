"""GMC contrastive loss against brute force over explicit pairs and against the GMC reference
formula (``SuperGMC.super_gmc_loss`` of miguelsvasco/gmc, contrastive part, re-derived here);
the one function returns ``GMCLossOutput(total, terms)`` and the module forwards to it."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import robustfusion
from robustfusion.losses import GMCContrastiveLoss, GMCLossOutput, gmc_contrastive_loss

NAMES = ("text", "audio", "vision", "depth")


def _latents(b: int, d: int, m: int, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    zj = torch.randn(b, d, generator=g, dtype=dtype)
    zs = {NAMES[i]: torch.randn(b, d, generator=g, dtype=dtype) for i in range(m)}
    return zj, zs


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def brute_force_term(zj: torch.Tensor, zm: torch.Tensor, tau: float) -> float:
    """Python loops over the 2n anchors i and every k != i of the vectors [zj; zm]."""
    n = zj.shape[0]
    v = [zj[i] for i in range(n)] + [zm[i] for i in range(n)]
    total = 0.0
    for i in range(2 * n):
        partner = i + n if i < n else i - n  # (z_joint^i, z_m^i) is the positive pair
        numerator = math.exp(_cos(v[i], v[partner]) / tau)
        denominator = sum(math.exp(_cos(v[i], v[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(numerator / denominator)
    return total / (2 * n)


def brute_force_loss(zj, zs, tau, present=None) -> float:
    total = 0.0
    for col, (name, zm) in enumerate(zs.items()):
        keep = torch.ones(zj.shape[0], dtype=torch.bool) if present is None else present[:, col]
        if int(keep.sum()) >= 2:
            total += brute_force_term(zj[keep], zm[keep], tau)
    return total


def gmc_reference_loss(zj: torch.Tensor, zs: list[torch.Tensor], tau: float) -> torch.Tensor:
    """The contrastive part of GMC's ``super_gmc_loss`` written from its formula: per modality,
    exp-similarities of the 2B vectors with the diagonal removed, ``-log(pos / row sum)``, summed
    over modalities per anchor and averaged over the 2B anchors. Expects unit-norm inputs."""
    b = zj.shape[0]
    per_anchor = torch.zeros(2 * b, dtype=zj.dtype)
    off_diagonal = ~torch.eye(2 * b, dtype=torch.bool)
    for zm in zs:
        v = torch.cat([zj, zm])
        sims = torch.exp(v @ v.T / tau)
        denominator = sims[off_diagonal].reshape(2 * b, 2 * b - 1).sum(dim=1)
        positive = torch.exp((zj * zm).sum(dim=1) / tau).repeat(2)
        per_anchor = per_anchor - torch.log(positive / denominator)
    return per_anchor.mean()


# --------------------------------------------------------------------------- exact values
@pytest.mark.parametrize("b", [2, 3, 8])
@pytest.mark.parametrize("tau", [0.1, 0.3, 1.0])
@pytest.mark.parametrize("m", [2, 3, 4])
def test_matches_brute_force_over_explicit_pairs(b, tau, m):
    d = {2: 3, 3: 5, 8: 16}[b]
    zj, zs = _latents(b, d, m, seed=b * 100 + m)
    terms = gmc_contrastive_loss(zj, zs, tau).terms
    for name, zm in zs.items():
        assert terms[name].item() == pytest.approx(brute_force_term(zj, zm, tau), rel=1e-10)
    total = gmc_contrastive_loss(zj, zs, tau).total
    assert total.item() == pytest.approx(brute_force_loss(zj, zs, tau), rel=1e-10)


@pytest.mark.parametrize("b", [2, 3, 8])
@pytest.mark.parametrize("tau", [0.1, 0.3, 1.0])
@pytest.mark.parametrize("m", [2, 3, 4])
def test_equals_gmc_reference_formula_on_normalised_inputs(b, tau, m):
    zj, zs = _latents(b, 8, m, seed=7 + b + m)
    zj = F.normalize(zj, dim=-1)
    zs = {k: F.normalize(v, dim=-1) for k, v in zs.items()}
    ours = gmc_contrastive_loss(zj, zs, tau).total
    ref = gmc_reference_loss(zj, list(zs.values()), tau)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_float32_matches_float64_brute_force():
    zj, zs = _latents(8, 16, 3, seed=3, dtype=torch.float32)
    value = gmc_contrastive_loss(zj, zs, 0.3).total
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(brute_force_loss(zj.double(), {k: v.double() for k, v in zs.items()}, 0.3),
                                         rel=1e-5)


def test_output_holds_total_and_terms_in_modality_order():
    zj, zs = _latents(4, 6, 3)
    out = gmc_contrastive_loss(zj, zs, 0.3)
    assert isinstance(out, GMCLossOutput)
    assert list(out.terms) == list(zs)
    assert out.total.dim() == 0 and all(t.dim() == 0 for t in out.terms.values())
    torch.testing.assert_close(out.total, torch.stack(list(out.terms.values())).sum(), rtol=0, atol=0)


def test_public_api_is_one_function_one_module_one_output():
    assert robustfusion.gmc_contrastive_loss is gmc_contrastive_loss
    assert robustfusion.GMCContrastiveLoss is GMCContrastiveLoss
    assert robustfusion.GMCLossOutput is GMCLossOutput
    assert not hasattr(robustfusion.losses, "gmc_contrastive_terms")


# --------------------------------------------------------------------------- invariances
def test_invariant_to_a_joint_permutation_of_the_batch():
    zj, zs = _latents(8, 6, 3, seed=11)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    a = gmc_contrastive_loss(zj, zs, 0.3).total
    b = gmc_contrastive_loss(zj[perm], {k: v[perm] for k, v in zs.items()}, 0.3).total
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_permuting_only_one_modality_changes_the_loss():
    zj, zs = _latents(8, 6, 2, seed=12)
    perm = torch.roll(torch.arange(8), 1)
    shuffled = dict(zs, text=zs["text"][perm])  # breaks the positive pairs
    assert not torch.isclose(gmc_contrastive_loss(zj, zs, 0.3).total,
                             gmc_contrastive_loss(zj, shuffled, 0.3).total)


def test_invariant_to_modality_order():
    zj, zs = _latents(6, 5, 4, seed=13)
    for order in itertools.permutations(zs):
        reordered = {k: zs[k] for k in order}
        torch.testing.assert_close(gmc_contrastive_loss(zj, reordered, 0.5).total,
                                   gmc_contrastive_loss(zj, zs, 0.5).total, rtol=1e-12, atol=1e-12)


def test_symmetric_in_joint_and_modality_roles():
    zj, zs = _latents(5, 4, 1, seed=14)
    (name, zm), = zs.items()
    torch.testing.assert_close(gmc_contrastive_loss(zj, {name: zm}, 0.3).total,
                               gmc_contrastive_loss(zm, {name: zj}, 0.3).total)


def test_invariant_to_rescaling_each_vector():
    zj, zs = _latents(6, 5, 3, seed=15)
    g = torch.Generator().manual_seed(1)
    scale = lambda z: z * (0.01 + 100 * torch.rand(z.shape[0], 1, generator=g, dtype=z.dtype))
    torch.testing.assert_close(gmc_contrastive_loss(scale(zj), {k: scale(v) for k, v in zs.items()}, 0.3).total,
                               gmc_contrastive_loss(zj, zs, 0.3).total, rtol=1e-12, atol=1e-12)


def test_aligned_pairs_give_lower_loss_than_random_ones():
    zj, zs = _latents(8, 16, 2, seed=16)
    aligned = {k: zj + 0.01 * v for k, v in zs.items()}
    assert gmc_contrastive_loss(zj, aligned, 0.3).total < gmc_contrastive_loss(zj, zs, 0.3).total


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_gradients_are_finite(tau):
    zj, zs = _latents(8, 6, 3, seed=17, dtype=torch.float32)
    zj.requires_grad_(True)
    for v in zs.values():
        v.requires_grad_(True)
    present = torch.ones(8, 3, dtype=torch.bool)
    present[3:, 1] = False
    present[1:, 2] = False  # one sample left for "vision": a zero term
    gmc_contrastive_loss(zj, zs, tau, present).total.backward()
    for t in (zj, *zs.values()):
        assert t.grad is not None and bool(torch.isfinite(t.grad).all())
    assert zs["text"].grad.abs().sum() > 0
    assert torch.equal(zs["vision"].grad, torch.zeros_like(zs["vision"].grad))


def test_gradients_match_finite_differences():
    zj, zs = _latents(3, 4, 2, seed=18)
    zj.requires_grad_(True)
    zs = {k: v.requires_grad_(True) for k, v in zs.items()}
    assert torch.autograd.gradcheck(lambda a, b, c: gmc_contrastive_loss(a, {"x": b, "y": c}, 0.3).total,
                                    (zj, zs["text"], zs["audio"]))


# --------------------------------------------------------------------------- presence mask
def _mask(b: int, m: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    present = torch.rand(b, m, generator=g) < 0.6
    present[:3] = True  # every modality keeps at least three samples
    return present


def test_presence_term_equals_loss_on_the_samples_that_have_the_modality():
    zj, zs = _latents(10, 6, 3, seed=19)
    present = _mask(10, 3, seed=2)
    terms = gmc_contrastive_loss(zj, zs, 0.3, present).terms
    for col, (name, zm) in enumerate(zs.items()):
        keep = present[:, col]
        alone = gmc_contrastive_loss(zj[keep], {name: zm[keep]}, 0.3).terms[name]
        torch.testing.assert_close(terms[name], alone, rtol=1e-12, atol=1e-12)
        assert terms[name].item() == pytest.approx(brute_force_term(zj[keep], zm[keep], 0.3), rel=1e-10)
    assert gmc_contrastive_loss(zj, zs, 0.3, present).total.item() == pytest.approx(
        brute_force_loss(zj, zs, 0.3, present), rel=1e-10)


def test_presence_columns_follow_the_order_of_the_z_dict():
    zj, zs = _latents(10, 6, 3, seed=20)
    present = _mask(10, 3, seed=3)
    reordered = {k: zs[k] for k in ("vision", "text", "audio")}
    swapped = present[:, [2, 0, 1]]
    a = gmc_contrastive_loss(zj, zs, 0.3, present)
    b = gmc_contrastive_loss(zj, reordered, 0.3, swapped)
    for name in zs:
        torch.testing.assert_close(a.terms[name], b.terms[name], rtol=1e-12, atol=1e-12)
    assert list(b.terms) == ["vision", "text", "audio"]


def test_no_present_means_every_modality_present():
    zj, zs = _latents(6, 4, 3, seed=25)
    torch.testing.assert_close(gmc_contrastive_loss(zj, zs, 0.3).total,
                               gmc_contrastive_loss(zj, zs, 0.3, torch.ones(6, 3, dtype=torch.bool)).total,
                               rtol=0, atol=0)


def test_junk_in_excluded_rows_does_not_change_the_value():
    zj, zs = _latents(10, 6, 3, seed=21)
    present = _mask(10, 3, seed=4)
    before = gmc_contrastive_loss(zj, zs, 0.3, present).total
    junk = {k: torch.where(present[:, i : i + 1], v, 1e6 * torch.randn_like(v)) for i, (k, v) in enumerate(zs.items())}
    torch.testing.assert_close(gmc_contrastive_loss(zj, junk, 0.3, present).total, before, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kept", [0, 1])
def test_fewer_than_two_samples_give_a_zero_term(kept):
    zj, zs = _latents(6, 4, 2, seed=22)
    present = torch.ones(6, 2, dtype=torch.bool)
    present[kept:, 1] = False
    terms = gmc_contrastive_loss(zj, zs, 0.3, present).terms
    assert terms["audio"].item() == 0.0
    torch.testing.assert_close(gmc_contrastive_loss(zj, zs, 0.3, present).total, terms["text"])
    one = gmc_contrastive_loss(zj[:1], {k: v[:1] for k, v in zs.items()}, 0.3).terms  # a batch of one
    assert all(t.item() == 0.0 for t in one.values())


def test_all_absent_loss_is_zero_with_a_graph():
    zj, zs = _latents(4, 3, 2, seed=23)
    zj.requires_grad_(True)
    value = gmc_contrastive_loss(zj, zs, 0.3, torch.zeros(4, 2, dtype=torch.bool)).total
    assert value.item() == 0.0
    value.backward()  # does not raise: the zero still has a graph
    assert torch.equal(zj.grad, torch.zeros_like(zj))


# --------------------------------------------------------------------------- module
def test_module_returns_total_equal_to_sum_of_terms():
    zj, zs = _latents(8, 6, 3, seed=24)
    present = _mask(8, 3, seed=5)
    out = GMCContrastiveLoss(temperature=0.2)(zj, zs, present)
    assert isinstance(out, GMCLossOutput)
    assert list(out.terms) == list(zs)
    torch.testing.assert_close(out.total, sum(out.terms.values()))
    torch.testing.assert_close(out.total, gmc_contrastive_loss(zj, zs, 0.2, present).total)
    for name, t in gmc_contrastive_loss(zj, zs, 0.2, present).terms.items():
        torch.testing.assert_close(out.terms[name], t)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("tau", [0.0, -0.3])
def test_non_positive_temperature_raises(tau):
    zj, zs = _latents(4, 3, 2)
    with pytest.raises(ValueError, match=r"temperature.*> 0.*found"):
        gmc_contrastive_loss(zj, zs, tau)
    with pytest.raises(ValueError, match=r"temperature.*> 0.*found"):
        GMCContrastiveLoss(tau)


def test_bad_shapes_raise():
    zj, zs = _latents(4, 3, 2)
    with pytest.raises(ValueError, match=r"z_joint.*\[B, D\].*\(4, 3, 1\)"):
        gmc_contrastive_loss(zj.unsqueeze(-1), zs)
    with pytest.raises(ValueError, match=r"'audio'.*\(4, 3\).*found \(4, 5\)"):
        gmc_contrastive_loss(zj, dict(zs, audio=torch.randn(4, 5, dtype=zj.dtype)))
    with pytest.raises(ValueError, match=r"'audio'.*\(4, 3\).*found \(3, 3\)"):
        gmc_contrastive_loss(zj, dict(zs, audio=zs["audio"][:3]))
    with pytest.raises(ValueError, match="at least one modality"):
        gmc_contrastive_loss(zj, {})
    with pytest.raises(ValueError, match=r"z_modalities: expected a dict .*found list"):
        gmc_contrastive_loss(zj, list(zs.values()))


@pytest.mark.parametrize(("present", "found"), [
    (torch.ones(4, 3, dtype=torch.bool), r"found shape \(4, 3\)"),
    (torch.ones(4, dtype=torch.bool), r"found shape \(4,\)"),
    (torch.ones(4, 2), "found dtype torch.float32"),
    (torch.ones(4, 2, dtype=torch.long), "found dtype torch.int64"),
    ({"text": torch.ones(4, dtype=torch.bool)}, "found dict"),
    ([[True, True]] * 4, "found list"),
])
def test_present_in_any_other_form_raises(present, found):
    """Only a [B, M] bool tensor: the {name: [B]} dict and non-bool / list forms are gone."""
    zj, zs = _latents(4, 3, 2)
    expected = r"present: expected a \[B, M\] = \(4, 2\) bool tensor, columns in the order of z_modalities " \
               r"\['text', 'audio'\], "
    with pytest.raises(ValueError, match=expected + found):
        gmc_contrastive_loss(zj, zs, 0.3, present)
    with pytest.raises(ValueError, match=expected + found):
        GMCContrastiveLoss(0.3)(zj, zs, present)
