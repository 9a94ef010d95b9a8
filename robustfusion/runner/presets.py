"""Named presets: per-method model settings, per-dataset defaults, and the experiment grids
(methods x seeds on one dataset) that :func:`robustfusion.runner.reproduce.reproduce` runs.

``configs/<dataset>/<method>.yaml`` are generated from these (``configs/generate.py``; a test
keeps them in sync).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robustfusion.protocols import default_protocols, get_protocol
from robustfusion.registry import Registry
from robustfusion.runner.config import load_config

__all__ = ["DATASET_DEFAULTS", "GRIDS", "METHODS", "Grid", "MethodPreset", "dataset_base", "deep_merge",
           "method_config", "preset_yaml"]


def deep_merge(a: dict, b: dict) -> dict:
    """``a`` updated recursively with ``b`` (nested dicts merged, everything else replaced); copies."""
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


@dataclass(frozen=True)
class MethodPreset:
    """A method's model + training settings, shared by every dataset (the grid merges in the dataset's
    encoder choices). ``own_params``: the model has its own architecture knobs, so the dataset's
    ``model.params`` (``encoder``, ``hidden_dim`` ...) are dropped before ``settings`` is merged in."""

    settings: dict[str, Any]
    own_params: bool = False


#: Method presets by name; registration order is the order of ``synthetic_extended`` and of the
#: generated ``configs/<dataset>/``. `late_fusion_dropout` is late fusion trained with modality
#: dropout, the strongest simple robust baseline: a configuration, not a class.
METHODS: Registry[MethodPreset] = Registry("method")
METHODS.add("gmc", MethodPreset({"model": {"name": "gmc"}}))
METHODS.add("gmc_pf", MethodPreset({"model": {"name": "gmc_pf"}}))
METHODS.add("late_fusion", MethodPreset({"model": {"name": "late_fusion"}}))
METHODS.add("late_fusion_dropout", MethodPreset({"model": {"name": "late_fusion"}, "train": {"modality_dropout": 0.3}}))
METHODS.add("early_fusion", MethodPreset({"model": {"name": "early_fusion"}}))
METHODS.add("tfn", MethodPreset({"model": {"name": "tfn"}}))
METHODS.add("lmf", MethodPreset({"model": {"name": "lmf"}}))
# MulT has its own architecture knobs (no `encoder` / `hidden_dim`): the dataset's encoder settings do not apply
METHODS.add("mult", MethodPreset({"model": {"name": "mult", "params": {"d_model": 32}}}, own_params=True))


def _with_method(base: dict[str, Any], method: str) -> dict[str, Any]:
    """``base`` (dataset settings) merged with ``METHODS`` entry ``method`` and then with the
    dataset's ``per_method`` settings for that method."""
    base = copy.deepcopy(base)
    per_method = copy.deepcopy(base.pop("per_method", {}).get(method, {}))
    per_method.pop("note", None)  # the preset YAML's comment (preset_yaml), not a setting
    preset = METHODS.get(method)
    if preset.own_params:
        base.setdefault("model", {})["params"] = {}
    return deep_merge(deep_merge(base, preset.settings), per_method)


@dataclass
class Grid:
    """One reproducible experiment: a base config, methods, seeds, reference rows."""

    base: dict[str, Any]
    methods: list[str]
    seeds: list[int]
    oracle: bool = False
    specialists: bool = False
    quick: dict[str, Any] = field(default_factory=dict)  # overrides of --quick: methods/seeds/base
    description: str = ""


# Per-dataset base settings (encoders that fit the data's shape, optimisation that fits its size).
# `configs/<dataset>/<method>.yaml` are these merged with METHODS (tests keep them in sync).
_MULT_TRAIN = {"epochs": 40, "batch_size": 40, "lr": 1e-3, "selection": "last"}  # GMC kept the last epoch
_MMSA_TRAIN = {"epochs": 30, "batch_size": 32, "lr": 5e-4, "selection": "best"}
_MOSI_GMC_PARAMS = {"unimodal_weight": 2.0, "head_dropout": 0.5, "partial_fusion": "weighted_mean"}
#: The default protocols that do not drop frames (for utterance-level data, one vector per sample).
_WITHOUT_FRAMES = [p for p in default_protocols() if not get_protocol(p).needs_frames]
# uncertainty per presence pattern, fitted on the validation split after every other calibration
# (robustfusion.calibration): 90% conformal intervals (regression) or per-pattern temperatures and 90%
# prediction sets (classification), monotone so confidence never rises when a modality is removed
_INTERVALS = {"calibrators": [{"name": "conformal_intervals", "level": 0.9, "monotone": True}]}
_SETS = {"calibrators": [{"name": "temperature_sets", "level": 0.9, "monotone": True}]}
_MOSI_GMC_TRAIN = {"modality_dropout": 0.3, "calibrate_fusion": True, "calibrate_subsets": True}
_SYNTHETIC_GMC_PARAMS = {"encoder": "mlp", "encoder_kwargs": {"layers": 0}, "hidden_dim": 64, "unimodal_weight": 1.0,
                         "head_dropout": 0.5, "partial_fusion": "weighted_mean"}
_SYNTHETIC_GMC_TRAIN = {"epochs": 50, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-3, "monitor_subsets": True,
                        **_MOSI_GMC_TRAIN}
# GMC's affect model and schedule (Poklukar et al., ICML 2022; miguelsvasco/gmc, gmc_code/supervised:
# AffectGMC, its AffectJointProcessor and the affect experiment ingredients), for MulT's aligned
# MOSI/MOSEI pickles (T = 50): 1,411,081 parameters on MOSEI, 1,401,001 on MOSI.
_GMC_AFFECT_PARAMS = {
    "encoder": "gru", "encoder_kwargs": {"hidden_dim": 30, "pooling": "flatten", "seq_len": 50},
    "hidden_dim": 60, "latent_dim": 60, "temperature": 0.3,
    "joint_encoder": "crossmodal",
    "joint_kwargs": {"d_model": 30, "num_heads": 5, "num_layers": 5, "dropout": 0.1, "attn_dropout": {"text": 0.1},
                     "memory_attn_dropout": 0.1, "embed_dropout": 0.25, "input_dropout": {"text": 0.25},
                     "causal": True, "residual_projection": True},
}
_GMC_AFFECT_TRAIN = {"epochs": 40, "batch_size": 24, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
                     "scheduler": "plateau", "plateau_patience": 20, "plateau_factor": 0.1, "grad_clip": 0.8,
                     "selection": "last"}
_GMC_AFFECT_NOTE = """\
GMC's published affect configuration (Poklukar et al., ICML 2022; code miguelsvasco/gmc):
per modality a GRU (hidden 30) over all 50 frames, flattened, Linear to 60; a joint encoder of
MulT crossmodal transformers (embedding 30, 5 heads, 5 layers; attention dropout 0.1 where text
is the source, i.e. keys and values, as in GMC's code; ReLU/residual dropout 0.1; embedding
dropout 0.25; text input dropout 0.25; causal masks; memory transformers of width 60 with
attention dropout 0.1), last frames concatenated, a residual two-layer projection, Linear to 60;
one shared head Linear(60, 60) + L2 normalisation; temperature 0.3; Adam 1e-3, batch 24,
40 epochs, ReduceLROnPlateau(patience 20, factor 0.1) on the validation loss, gradient
clipping 0.8, the last epoch kept.
Deviations: dropout rates are applied as multiples of 2^-16 (0.1 -> 0.1000061); frame t gets
position t + 1 (GMC's MulT code gives position 0 to frames whose first feature is exactly 0);
missing modalities are zero-filled and unobserved frames masked (GMC's code has no missing data);
the validation loss is averaged over samples (Lightning averages over batches).
"""
_GMC_AFFECT_NOTES = {"gmc": _GMC_AFFECT_NOTE,
                     "gmc_pf": _GMC_AFFECT_NOTE + "gmc_pf adds progressive-fusion back-connections (Shankar et al., "
                                                  "arXiv 2209.00302) to\nthis model: not part of GMC.\n"}
_GMC_AFFECT_PER_METHOD = {method: {"model": {"params": _GMC_AFFECT_PARAMS}, "train": _GMC_AFFECT_TRAIN,
                                   "note": _GMC_AFFECT_NOTES[method]} for method in ("gmc", "gmc_pf")}
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    # GMC models: mean-pooled linear base encoders, the unimodal term, modality dropout, subset-averaged
    # selection and both validation calibrations, 50 epochs (chosen on the validation split: gmc_pf's
    # MAE averaged over the 7 subsets 1.07 -> 0.96; GRU, transformer and one hidden layer were worse).
    "synthetic": {"model": {"params": {"encoder": "gru", "hidden_dim": 32}},
                  "train": {"epochs": 20, "batch_size": 64, "lr": 3e-3, "selection": "best", **_INTERVALS},
                  "per_method": {
                      "gmc": {"model": {"params": _SYNTHETIC_GMC_PARAMS}, "train": _SYNTHETIC_GMC_TRAIN},
                      "gmc_pf": {"model": {"params": {**_SYNTHETIC_GMC_PARAMS, "predict_from": "modalities"}},
                                 "train": _SYNTHETIC_GMC_TRAIN}}},
    # one model must serve all 7 subsets: modality dropout, a unimodal supervision term (GMC
    # models) and epoch selection on the validation MAE averaged over every subset. ~1000
    # utterance vectors: linear base encoders (`layers: 0`) and a dropout-regularised head
    # (measured better than one hidden layer on the held-out videos; see CHANGELOG). GMC models
    # fuse incomplete samples with per-modality weights fitted on the validation videos
    # (audio, overfitted in training, gets little say); gmc_pf also uses them for complete ones.
    # Then an affine read-out per presence pattern is fitted on the validation videos
    # (`calibrate_subsets`): features of unseen speakers are noisier than the training ones, and
    # by a different amount for every subset. Chosen by cross-fitting on valid.npz (README).
    # Text: MiniLM embeddings of the transcripts (`text_features: minilm`): gmc_pf cross-fitted over the
    # valid.npz videos (2 folds x 3 seeds, experiments/gmc_pf_text_options.py), MAE / Non0 F1 bc-LSTM vector
    # -> MiniLM: text .937/.764 -> .893/.782, text+audio .918/.781 -> .897/.791, all three .935/.784 ->
    # .897/.795 (the bc-LSTM text extractor was trained on the training videos; MiniLM never saw MOSI).
    "mosi_utterance": {"data": {"options": {"text_features": "minilm"}},
                       "model": {"params": {"encoder": "mlp", "hidden_dim": 64, "encoder_kwargs": {"layers": 0}}},
                       "train": {"epochs": 30, "batch_size": 32, "lr": 1e-3, "selection": "best",
                                 "weight_decay": 1e-3, "monitor_subsets": True, **_INTERVALS},
                       "per_method": {
                           "gmc": {"model": {"params": _MOSI_GMC_PARAMS}, "train": _MOSI_GMC_TRAIN},
                           # a seed ensemble of 3 (model.ensemble): cross-fitted as above, MAE / Non0 F1 one model ->
                           # ensemble: text .893/.782 -> .850/.803 (lower MAE in 6 of 6 fold-seed pairs), text+audio
                           # .897/.791 -> .852/.810 (6 of 6), all three .897/.795 -> .868/.798 (5 of 6); 3x the training
                           "gmc_pf": {"model": {"params": {**_MOSI_GMC_PARAMS, "predict_from": "modalities"}, "ensemble": 3},
                                      "train": _MOSI_GMC_TRAIN}},
                       "eval": {"protocols": _WITHOUT_FRAMES}},
    # IEMOCAP utterances (text from transcripts, 8 audio features, 4-way): the MOSI utterance
    # settings, less the per-subset affine read-out (regression only); selection on the validation
    # weighted F1 averaged over the 3 subsets. Chosen on Session 4 (README, "Real data").
    "iemocap_utterance": {"model": {"params": {"encoder": "mlp", "hidden_dim": 64, "encoder_kwargs": {"layers": 0}}},
                          "train": {"epochs": 30, "batch_size": 32, "lr": 1e-3, "selection": "best",
                                    "weight_decay": 1e-3, "monitor_subsets": True, "monitor": "F1_weighted", **_SETS},
                          "per_method": {
                              "gmc": {"model": {"params": _MOSI_GMC_PARAMS},
                                      "train": {"modality_dropout": 0.3, "calibrate_fusion": True}},
                              # GMC's prediction rule (z_joint for complete samples), not MOSI's `modalities`:
                              # Session 4 cross-fitted, 3 seeds, Acc / weighted F1 text .580/.585 -> .590/.594,
                              # audio .449/.434 -> .454/.438, text+audio .672/.673 -> .699/.700
                              "gmc_pf": {"model": {"params": {**_MOSI_GMC_PARAMS, "predict_from": "gmc"}},
                                         "train": {"modality_dropout": 0.3, "calibrate_fusion": True}}},
                          "eval": {"protocols": _WITHOUT_FRAMES}},
    "mosi_mult": {"model": {"params": {"encoder": "gru", "hidden_dim": 64}}, "train": _MULT_TRAIN,
                  "per_method": _GMC_AFFECT_PER_METHOD},
    "mosei_mult": {"model": {"params": {"encoder": "gru", "hidden_dim": 64}}, "train": _MULT_TRAIN,
                   "per_method": _GMC_AFFECT_PER_METHOD},
    "iemocap_mult": {"model": {"params": {"encoder": "gru", "hidden_dim": 64}}, "train": _MULT_TRAIN},
    "mosi_mmsa": {"model": {"params": {"encoder": "transformer", "hidden_dim": 64}}, "train": _MMSA_TRAIN},
    "mosei_mmsa": {"model": {"params": {"encoder": "transformer", "hidden_dim": 64}}, "train": _MMSA_TRAIN},
    "sims_mmsa": {"model": {"params": {"encoder": "transformer", "hidden_dim": 64}}, "train": _MMSA_TRAIN},
    # your own features (robustfusion.data.npz_format): GRU base encoders (vectors or sequences) and epoch
    # selection on the validation primary metric averaged over every subset; a starting point, not tuned
    "npz": {"model": {"params": {"encoder": "gru", "hidden_dim": 64}},
            "train": {"epochs": 30, "batch_size": 32, "lr": 1e-3, "selection": "best", "monitor_subsets": True}},
}


def dataset_base(name: str) -> dict[str, Any]:
    """``{"data": {"name": name}}`` merged with the dataset's defaults."""
    if name not in DATASET_DEFAULTS:
        raise ValueError(f"no defaults for dataset {name!r}; known: {sorted(DATASET_DEFAULTS)}")
    return deep_merge({"data": {"name": name}}, DATASET_DEFAULTS[name])


#: The experiment grids of ``robustfusion reproduce NAME`` (the built-ins are added just below).
GRIDS: Registry[Grid] = Registry("grid")


def _register_grids() -> None:
    GRIDS.add("synthetic", Grid(
        base=dataset_base("synthetic"),
        methods=["gmc", "gmc_pf", "late_fusion", "late_fusion_dropout", "early_fusion", "tfn", "lmf"],
        seeds=[0, 1, 2], oracle=True, specialists=True,
        quick={"methods": ["gmc", "gmc_pf", "late_fusion"], "seeds": [0],
               "base": {"train": {"epochs": 3}, "eval": {"levels": [0.0, 0.25, 0.5, 0.75, 1.0]}}},
        description="the embedded synthetic affect benchmark with its Bayes-optimal oracle"))
    # the same benchmark's 6-class emotion target: the synthetic settings, without the per-subset
    # affine read-out of the GMC models (`calibrate_subsets` is regression only)
    no_readout = {"train": {"calibrate_subsets": False}}
    emotion = deep_merge(dataset_base("synthetic"), {"data": {"options": {"target": "emotion"}}, "train": _SETS,
                                                     "per_method": {"gmc": no_readout, "gmc_pf": no_readout}})
    # gmc_pf: twice the unimodal term and a lighter contrastive term (0.3), chosen on the validation
    # split only (3 seeds, valid weighted F1 averaged over the 7 subsets 0.463 -> 0.472, accuracy
    # with all three 0.590 -> 0.607; head dropout 0.2, modality dropout 0.5 and GRU encoders were not better)
    emotion["per_method"]["gmc_pf"]["model"]["params"].update({"unimodal_weight": 2.0, "contrastive_weight": 0.3})
    GRIDS.add("synthetic_emotion", Grid(
        base=emotion,
        methods=["gmc", "gmc_pf", "late_fusion", "late_fusion_dropout", "early_fusion", "tfn", "lmf"],
        seeds=[0, 1, 2], oracle=True, specialists=True,
        quick={"methods": ["gmc", "gmc_pf", "late_fusion"], "seeds": [0],
               "base": {"train": {"epochs": 3}, "eval": {"levels": [0.0, 0.25, 0.5, 0.75, 1.0]}}},
        description="the synthetic benchmark's 6-class emotion target with its Bayes-optimal oracle "
                    "(specialists: per-subset ridge on one-hot targets and multinomial logistic regression)"))
    GRIDS.add("synthetic_extended", Grid(
        base=dataset_base("synthetic"), methods=METHODS.ordered(), seeds=[0, 1, 2], oracle=True, specialists=True,
        description="the synthetic benchmark with every method, MulT included (slower)"))
    # real-data grids (`robustfusion reproduce <name> --data DIR`, robustfusion.runner.data_grids): every
    # default method but tfn (its 65^3-wide outer product: about 45 s per MOSI epoch on one core)
    real_methods = ["gmc_pf", "gmc", "late_fusion", "late_fusion_dropout", "early_fusion", "lmf"]
    GRIDS.add("mosi_utterance", Grid(
        base=dataset_base("mosi_utterance"), methods=real_methods,
        seeds=[0, 1, 2], specialists=True,
        quick={"seeds": [0], "methods": ["gmc_pf"], "base": {"train": {"epochs": 5}}},
        description="CMU-MOSI utterance features (npz); needs --data DIR (or data.path)"))
    GRIDS.add("iemocap_utterance", Grid(
        base=dataset_base("iemocap_utterance"), methods=real_methods,
        seeds=[0, 1, 2], specialists=True,
        quick={"seeds": [0], "methods": ["gmc_pf"], "base": {"train": {"epochs": 5}}},
        description="IEMOCAP utterances, text from transcripts + audio, 4-way (npz); needs --data DIR (or data.path)"))


_register_grids()


def method_config(grid: Grid, method: str, seed: int, quick: bool = False,
                  overrides: Sequence[str] = ()) -> DictConfig:
    """The resolved run config of ``method`` / ``seed`` in ``grid``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {METHODS.names()}")
    base = _with_method(grid.base, method)
    if quick:
        base = deep_merge(base, grid.quick.get("base", {}))
    base = deep_merge(base, {"seed": seed, "name": method})
    return load_config(None, overrides, base=base)


def preset_yaml(dataset: str, method: str) -> str:
    """The YAML text of ``configs/<dataset>/<method>.yaml``: dataset defaults + method preset, with
    ``data.path: null`` (pass ``data.path=...``; configs never hold machine paths)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {METHODS.names()}")
    body = deep_merge(_with_method(dataset_base(dataset), method), {"name": method})
    body["data"].setdefault("path", None)
    header = (f"# {method} on {dataset}; generated by configs/generate.py from robustfusion/runner/presets.py\n"
              f"# usage: robustfusion train configs/{dataset}/{method}.yaml"
              + (" data.path=..." if dataset != "synthetic" else "") + " [key=value ...]\n")
    note = DATASET_DEFAULTS[dataset].get("per_method", {}).get(method, {}).get("note")
    if note:
        header += "#\n" + "".join(f"# {line}\n" for line in note.splitlines())
    return header + OmegaConf.to_yaml(OmegaConf.create(body))
