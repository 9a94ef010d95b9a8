"""The experiment runner: configs, presets and grids, the training loop, run directories, and
the functions behind the ``robustfusion`` command.

    from robustfusion.runner import load_config, train_run, evaluate_run, reproduce
    run = train_run(load_config("configs/synthetic/gmc_pf.yaml", ["train.epochs=5"]))
    run.dir, run.final["test"]["MAE"], run.model
"""

from robustfusion.runner.api import (
    PreparedData,
    Run,
    build_model,
    evaluate_model,
    evaluate_run,
    load_data,
    load_run,
    oracle_rows,
    prepare_data,
    resume_run,
    train_run,
)
from robustfusion.runner.baselines import train_model_specialists, train_subset_model
from robustfusion.runner.config import ConfigError, RunConfig, load_config
from robustfusion.runner.fit import FitResult, fit
from robustfusion.runner.presets import (
    DATASET_DEFAULTS,
    GRIDS,
    METHODS,
    Grid,
    MethodPreset,
    method_config,
    preset_yaml,
)
from robustfusion.runner.report import report_dirs
from robustfusion.runner.reproduce import reproduce

__all__ = [
    "DATASET_DEFAULTS",
    "GRIDS",
    "METHODS",
    "ConfigError",
    "FitResult",
    "Grid",
    "MethodPreset",
    "PreparedData",
    "Run",
    "RunConfig",
    "build_model",
    "evaluate_model",
    "evaluate_run",
    "fit",
    "load_config",
    "load_data",
    "load_run",
    "method_config",
    "oracle_rows",
    "prepare_data",
    "preset_yaml",
    "report_dirs",
    "reproduce",
    "resume_run",
    "train_model_specialists",
    "train_run",
    "train_subset_model",
]
