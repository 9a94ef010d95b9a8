"""Run configuration: structured defaults (dataclasses) < YAML file < ``key=value`` overrides.

Plain omegaconf. An unknown or misspelt key is a :class:`ConfigError` that lists the valid keys
at that level; a value of the wrong type names the key and the expected type. Shipped YAMLs
hold no machine paths: real data locations come from ``data.path=...`` (or the environment
variable that the data error names).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from robustfusion.augment import list_augmentations
from robustfusion.metrics import METRIC_DIRECTION
from robustfusion.protocols import default_protocols, get_protocol, protocol_names, sweep_protocols

__all__ = [
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "load_config",
]



class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


@dataclass
class DataConfig:
    """Which dataset, where, and which split the evaluator scores."""

    name: str = "synthetic"  # a name from robustfusion.data.list_datasets()
    path: str | None = None  # file (pickles) or directory (npz); None for synthetic
    split: str = "test"  # split scored by `robustfusion evaluate`
    split_seed: int = 0  # seed of the video-grouped carving of missing splits
    options: dict[str, Any] = field(default_factory=dict)  # extra loader options
    standardize: bool = True  # scale features with training-split statistics (saved in the run)


@dataclass
class ModelConfig:
    """A registered model and its constructor arguments (modality dims/task come from the data)."""

    name: str = "gmc"
    params: dict[str, Any] = field(default_factory=dict)
    ensemble: int = 1  # > 1: that many copies from their own random initialisations, averaged (models/ensemble.py)


@dataclass
class TrainConfig:
    """Optimisation. ``selection``: which epoch's weights the run keeps: ``"last"`` (what GMC
    did) or ``"best"`` (best validation ``monitor``); ``patience`` > 0 also stops early."""

    epochs: int = 30
    batch_size: int = 64  # the global batch under torchrun (each rank trains on its shard)
    optimizer: str = "adamw"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = "cosine"  # none | cosine | step | plateau
    step_size: int = 10  # for scheduler=step
    gamma: float = 0.5  # for scheduler=step
    plateau_patience: int = 20  # for scheduler=plateau: epochs without a lower validation loss before the lr drops
    plateau_factor: float = 0.1  # for scheduler=plateau: the lr's multiplier at each drop
    grad_clip: float = 1.0  # max gradient norm; 0 disables
    selection: str = "best"  # best | last
    monitor: str = ""  # validation metric; "" = the task's primary metric
    patience: int = 0  # epochs without improvement before stopping; 0 = never stop early
    monitor_subsets: bool = False  # select on the monitor averaged over every modality subset of valid
    modality_dropout: float = 0.0  # train-time probability of dropping each modality
    random_rate_frame_dropout: bool = False  # LNLN: frames dropped at a rate ~U(0,1) per sample and modality, half kept
    augment: list[dict[str, Any]] = field(default_factory=list)  # more, by name: [{name: missing_rate_dropout, rate: 0.3}]
    calibrate_fusion: bool = False  # after training, fit the model's partial_fusion weights on valid
    calibrate_subsets: bool = False  # then fit an affine read-out per presence pattern on valid (regression)
    calibrators: list[dict[str, Any]] = field(default_factory=list)  # more post-hoc calibrators by name, in order
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: int = 0  # torch intra-op CPU threads for the run; 0 = min(4, cores // 2), at least 1
    progress: bool = True  # tqdm bars on a terminal, one line per epoch on stderr otherwise; false = neither
    tensorboard: bool = False  # also write losses, validation metrics, lr per epoch to RUN/tensorboard/ (rank 0);
    # needs pip install "robustfusion[tensorboard]"


def _default_levels() -> dict[str, list[float]]:
    return {p: list(get_protocol(p).default_levels) for p in sweep_protocols()}


@dataclass
class EvalConfig:
    """Robustness evaluation: protocols, levels, batch size, and the oracle row.

    ``levels`` is ``{sweep protocol: rates}`` (default: each protocol's registry default); a key
    set in a YAML or override replaces that protocol's rates only
    (``eval.levels.missing_rate=[0.3]``). A plain list (``eval.levels=[0.0,0.5,1.0]``, the form
    configs of earlier versions wrote) sets every protocol with
    :attr:`~robustfusion.protocols.Protocol.takes_plain_levels` (``sample_rate``, ``frame_rate``).
    """

    protocols: list[str] = field(default_factory=lambda: list(default_protocols()))
    levels: dict[str, list[float]] = field(default_factory=_default_levels)
    batch_size: int = 256
    keep_at_least_one: bool = False  # sample_rate: never drop every modality of a sample


@dataclass
class RunConfig:
    seed: int = 0
    name: str = ""  # method label in result rows ("" = the model name); run dirs: <dataset>-<name>-seed<seed>
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _valid_keys(schema: Any, dotted: str) -> list[str]:
    """Valid keys at the level of ``dotted`` (e.g. ``train.lrr`` -> fields of TrainConfig)."""
    node = schema
    for part in dotted.split(".")[:-1]:
        if dataclasses.is_dataclass(node):
            node = {f.name: f for f in dataclasses.fields(node)}.get(part)
            node = None if node is None else (node.default_factory() if node.default_factory is not dataclasses.MISSING else node.default)
        else:
            return []
    return [f.name for f in dataclasses.fields(node)] if dataclasses.is_dataclass(node) else []


def _explain(err: OmegaConfBaseException, source: str) -> ConfigError:
    key = getattr(err, "full_key", None) or getattr(err, "key", "?")
    if isinstance(err, ConfigKeyError):
        valid = _valid_keys(RunConfig(), str(key))
        hint = str(err).splitlines()[0]
        return ConfigError(f"{source}: unknown config key {key!r} ({hint}); valid keys here: {valid}")
    if isinstance(err, ValidationError):
        return ConfigError(f"{source}: wrong type for config key {key!r}: {str(err).splitlines()[0]}")
    return ConfigError(f"{source}: {str(err).splitlines()[0]}")


def _plain_levels(other: Any) -> Any:
    """``other`` with a plain-list ``eval.levels`` (earlier versions' form) turned into
    ``{protocol: levels}`` for every protocol that takes plain levels."""
    levels = OmegaConf.select(other, "eval.levels") if isinstance(other, DictConfig) else None
    if levels is None or isinstance(levels, DictConfig):
        return other
    rates = OmegaConf.to_container(levels) if OmegaConf.is_list(levels) else levels
    if not isinstance(rates, list):
        raise ConfigError(f"config key 'eval.levels': expected {{protocol: rates}} or a list of rates, found {rates!r}")
    plain = [p for p in protocol_names() if get_protocol(p).takes_plain_levels]
    other = other.copy()
    other.eval.levels = {p: list(rates) for p in plain}
    return other


def _merge(base: DictConfig, other: Any, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, _plain_levels(other))
    except OmegaConfBaseException as err:
        raise _explain(err, source) from None


def load_config(path: str | Path | None = None, overrides: Sequence[str] = (),
                base: dict[str, Any] | None = None) -> DictConfig:
    """Resolve a run config: defaults < ``base`` dict < YAML ``path`` < ``overrides``.

    Raises:
        FileNotFoundError: the YAML file does not exist.
        ConfigError: an unknown key, a wrong type, or a malformed ``key=value``.
    """
    cfg = OmegaConf.structured(RunConfig)
    if base:
        cfg = _merge(cfg, OmegaConf.create(base), "preset")
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path} (expected a YAML file such as "
                                    "configs/synthetic/gmc.yaml)")
        try:
            loaded = OmegaConf.load(path)
        except (yaml.YAMLError, UnicodeDecodeError, ValueError) as err:
            raise ConfigError(f"{path}: not a valid YAML config ({err})") from None
        if not isinstance(loaded, DictConfig):
            raise ConfigError(f"{path}: expected a YAML mapping of config keys (data:, model:, train:, ...) at the "
                              f"top level, found a {type(loaded).__name__.replace('Config', '').lower() or 'value'}")
        cfg = _merge(cfg, loaded, str(path))
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides: expected key=value, found {bad}")
    if overrides:
        cfg = _merge(cfg, OmegaConf.from_dotlist(list(overrides)), "override")
    _check_choices(cfg)
    return cfg


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _check_choices(cfg: DictConfig) -> None:
    choices = {"train.optimizer": ("adam", "adamw"), "train.scheduler": ("none", "cosine", "step", "plateau"),
               "train.selection": ("best", "last")}
    for key, allowed in choices.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            raise ConfigError(f"config key {key!r}: expected one of {allowed}, found {value!r}")
    device = str(cfg.train.device)
    if not _DEVICE.fullmatch(device):
        raise ConfigError(f"config key 'train.device': expected auto, cpu, cuda, cuda:N or mps, found {device!r}")
    monitor = str(cfg.train.monitor)
    if monitor and monitor not in METRIC_DIRECTION and not monitor.endswith(("_acc", "_F1")):
        raise ConfigError(f"config key 'train.monitor': unknown metric {monitor!r}; expected '' (the task's primary "
                          f"metric), one of {sorted(METRIC_DIRECTION)} or a per-emotion name such as 'Happy_F1'")
    checks = [("train.lr", cfg.train.lr > 0, "> 0"), ("train.weight_decay", cfg.train.weight_decay >= 0, ">= 0"),
              ("train.grad_clip", cfg.train.grad_clip >= 0, ">= 0 (0 disables)"),
              ("train.patience", cfg.train.patience >= 0, ">= 0 (0 never stops early)"),
              ("train.plateau_patience", cfg.train.plateau_patience >= 0, ">= 0"),
              ("train.plateau_factor", 0 < cfg.train.plateau_factor < 1, "a factor in (0, 1)"),
              ("train.num_threads", cfg.train.num_threads >= 0, ">= 0 (0 chooses from the machine's cores)"),
              ("train.modality_dropout", 0 <= cfg.train.modality_dropout <= 1, "a rate in [0, 1]"),
              ("eval.batch_size", cfg.eval.batch_size >= 1, ">= 1")]
    for key, ok, expected in checks:
        if not ok:
            raise ConfigError(f"config key {key!r}: expected {expected}, found {OmegaConf.select(cfg, key)!r}")
    _check_eval(cfg)
    _check_augment(cfg)
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1:
        raise ConfigError(f"train.epochs and train.batch_size must be >= 1, found {cfg.train.epochs}, {cfg.train.batch_size}")


def _check_augment(cfg: DictConfig) -> None:
    """Every ``train.augment`` entry names a registered augmentation."""
    for i, spec in enumerate(OmegaConf.to_container(cfg.train.augment)):
        if "name" not in spec or spec["name"] not in list_augmentations():
            raise ConfigError(f"config key 'train.augment[{i}]': expected {{name: one of {list_augmentations()}, "
                              f"<param>: <value>, ...}}, found {spec}")


def _check_eval(cfg: DictConfig) -> None:
    """``eval.protocols`` are registered protocols; ``eval.levels`` names sweeps with rates in [0, 1]."""
    protocols = list(cfg.eval.protocols)
    unknown = [p for p in protocols if p not in protocol_names()]
    if unknown or not protocols:
        raise ConfigError(f"config key 'eval.protocols': expected a non-empty list of {list(protocol_names())}, "
                          f"found {protocols}")
    levels = OmegaConf.to_container(cfg.eval.levels)
    not_sweeps = sorted(set(levels) - set(sweep_protocols()))
    if not_sweeps:
        raise ConfigError(f"config key 'eval.levels': keys {not_sweeps} are not sweep protocols; expected some of "
                          f"{list(sweep_protocols())}")
    for p, rates in levels.items():
        if not rates or any(not 0.0 <= lv <= 1.0 for lv in rates):
            raise ConfigError(f"config key 'eval.levels.{p}': expected rates in [0, 1], found {rates}")
