"""A run's calibrators on disk: ``calibration.json`` (names and constructor arguments, in order)
and ``calibration.safetensors`` (their buffers, keyed ``<index>.<buffer>``).

Runs written before calibration had a home kept the presence read-out inside the model's weights
(``readout.scale`` / ``readout.shift`` in ``model.safetensors``); :func:`split_legacy_readout`
turns those two tensors into a :class:`~robustfusion.calibration.PresenceAffine`, so such runs
load with the same predictions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from robustfusion.calibration.base import Calibrator, create_calibrator
from robustfusion.calibration.presence_affine import PresenceAffine
from robustfusion.io import atomic_write, atomic_write_json

__all__ = ["LEGACY_READOUT_KEYS", "load_calibrators", "save_calibrators", "split_legacy_readout"]

SPEC = "calibration.json"
STATE = "calibration.safetensors"
#: The model-weight keys of the read-out buffer earlier versions kept in every model.
LEGACY_READOUT_KEYS = ("readout.scale", "readout.shift")


def save_calibrators(run_dir: str | Path, calibrators: Sequence[Calibrator]) -> None:
    """Write ``calibrators`` into ``run_dir`` (nothing when there are none)."""
    if not calibrators:
        return
    run_dir = Path(run_dir)
    state = {f"{i}.{k}": v.detach().cpu().contiguous() for i, cal in enumerate(calibrators)
             for k, v in cal.state_dict().items()}
    atomic_write(run_dir / STATE, lambda tmp: save_file(state, tmp))
    atomic_write_json(run_dir / SPEC, [{"name": cal.registry_name, "params": cal.params()} for cal in calibrators])


def load_calibrators(run_dir: str | Path) -> list[Calibrator]:
    """The calibrators saved in ``run_dir`` (``[]`` when it has none); a spec without its state
    file, or a state that does not fit, is a ``ValueError`` naming the file."""
    run_dir = Path(run_dir)
    if not (run_dir / SPEC).is_file():
        return []
    spec = json.loads((run_dir / SPEC).read_text())
    if not (run_dir / STATE).is_file():
        raise ValueError(f"{run_dir / SPEC} names calibrators but {run_dir / STATE} is missing; "
                         "refit them (retrain the run) or delete calibration.json to use the uncalibrated model")
    state = load_file(run_dir / STATE)
    out = []
    for i, entry in enumerate(spec):
        cal = create_calibrator(entry["name"], **entry["params"])
        own = {k.split(".", 1)[1]: v for k, v in state.items() if k.split(".", 1)[0] == str(i)}
        try:
            cal.load_state_dict(own)
        except RuntimeError as err:
            raise ValueError(f"{run_dir / STATE}: calibrator {i} ({entry['name']}) does not fit its state "
                             f"({str(err).splitlines()[0]})") from None
        out.append(cal)
    return out


def split_legacy_readout(state: dict[str, Tensor], regression_loss: str = "l1") -> PresenceAffine | None:
    """Remove the read-out keys of an earlier version's model weights from ``state`` (in place);
    a :class:`PresenceAffine` holding them when they are not the identity, else ``None``."""
    if not all(k in state for k in LEGACY_READOUT_KEYS):
        return None
    scale, shift = (state.pop(k) for k in LEGACY_READOUT_KEYS)
    if bool((scale == 1).all()) and bool((shift == 0).all()):
        return None
    m = int(torch.tensor(scale.shape[0]).log2().round())
    cal = PresenceAffine(m, scale.shape[1], loss=regression_loss)
    cal.load_state_dict({"scale": scale, "shift": shift})
    return cal
