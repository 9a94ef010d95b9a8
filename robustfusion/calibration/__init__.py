"""Post-hoc calibration, one concept: per-presence-pattern calibrators fitted on validation behind
one interface (:class:`Calibrator`: ``fit(predictions, targets, present)`` / ``apply``), stored
with a run (:mod:`.store`) and applied by one wrapper (:class:`CalibratedModel`).

Built in: ``presence_affine`` (:class:`PresenceAffine`, the per-subset affine read-out),
``conformal_intervals`` (:class:`ConformalIntervals`, per-pattern split-conformal intervals) and
``temperature_sets`` (:class:`TemperatureSets`, per-pattern temperature scaling and prediction sets),
``class_bias`` (:class:`ClassBias`, per-pattern class biases for shifted class priors). Add one
with ``@register_calibrator("<name>")`` on a :class:`Calibrator` subclass (see CONTRIBUTING.md).
"""

from robustfusion.calibration.base import (
    CALIBRATORS,
    Calibrated,
    Calibrator,
    create_calibrator,
    list_calibrators,
    presence_codes,
    register_calibrator,
)
from robustfusion.calibration.class_bias import ClassBias
from robustfusion.calibration.conformal import ConformalIntervals
from robustfusion.calibration.fitting import fit_on_subsets
from robustfusion.calibration.presence_affine import PresenceAffine, fit_affine
from robustfusion.calibration.store import load_calibrators, save_calibrators, split_legacy_readout
from robustfusion.calibration.temperature import TemperatureSets
from robustfusion.calibration.wrapper import CalibratedModel

__all__ = [
    "CALIBRATORS",
    "Calibrated",
    "CalibratedModel",
    "Calibrator",
    "ClassBias",
    "ConformalIntervals",
    "PresenceAffine",
    "TemperatureSets",
    "create_calibrator",
    "fit_affine",
    "fit_on_subsets",
    "list_calibrators",
    "load_calibrators",
    "presence_codes",
    "register_calibrator",
    "save_calibrators",
    "split_legacy_readout",
]
