"""Reference predictors scored by the same evaluator as the models: per-subset specialists
(ridge regression, or any registered model trained on one subset) behind a router that sends each
sample to the specialist of its presence pattern."""

from robustfusion.baselines.logistic import DEFAULT_L2, fit_logistic_specialist
from robustfusion.baselines.ridge import (
    DEFAULT_ALPHAS,
    FEATURE_MODES,
    RidgeSpecialist,
    fit_ridge_specialist,
    pooled_features,
)
from robustfusion.baselines.router import (
    Predictor,
    SubsetRouter,
    fit_logistic_specialists,
    fit_ridge_specialists,
)
from robustfusion.baselines.subset_model import ModelSpecialist

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_L2",
    "FEATURE_MODES",
    "ModelSpecialist",
    "Predictor",
    "RidgeSpecialist",
    "SubsetRouter",
    "fit_logistic_specialist",
    "fit_logistic_specialists",
    "fit_ridge_specialist",
    "fit_ridge_specialists",
    "pooled_features",
]
