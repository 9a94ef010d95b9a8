"""Checkpoints of a run directory: weights as safetensors, trainer state as a weights-only
``torch.save`` file, and a ``LATEST`` pointer replaced atomically after both are written.

Layout::

    RUN_DIR/checkpoints/epoch-0007/model.safetensors
    RUN_DIR/checkpoints/epoch-0007/trainer_state.pt
    RUN_DIR/checkpoints/LATEST          # "epoch-0007"
    RUN_DIR/checkpoints/best.safetensors  # weights of the best validation epoch

A run killed at any point leaves either the previous complete checkpoint or the new one behind
``LATEST``, never a mix of the two.
"""

from __future__ import annotations

import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from torch import nn

from robustfusion.calibration.store import LEGACY_READOUT_KEYS
from robustfusion.io import atomic_write, atomic_write_text

__all__ = ["latest_epoch", "load_latest_checkpoint", "load_weights", "rng_state", "save_checkpoint", "save_weights",
           "set_rng_state", "tidy_checkpoints"]


def save_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model``'s parameters and buffers to ``path`` (safetensors, atomic)."""
    return atomic_write(path, lambda tmp: save_model(model, tmp, metadata=metadata))


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load safetensors weights into ``model``; a missing or mismatched file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}: expected a model.safetensors written by `robustfusion train`")
    try:
        missing, unexpected = load_model(model, path, strict=False)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"{path}: not a readable safetensors checkpoint for {type(model).__name__} ({err})") from None
    # the presence read-out earlier versions kept in every model now lives in robustfusion.calibration
    # (build_model_from_run turns a fitted one into a calibrator); here it is ignored
    unexpected = [k for k in unexpected if k not in LEGACY_READOUT_KEYS]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match {type(model).__name__}: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")
    return model


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states in types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | Path, epoch: int, model: nn.Module, trainer_state: dict[str, Any]) -> Path:
    """Write the checkpoint of a finished ``epoch`` and point ``LATEST`` at it (older ones removed)."""
    root = Path(run_dir) / "checkpoints"
    name = f"epoch-{epoch:04d}"
    target = root / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    save_weights(model, target / "model.safetensors", {"epoch": str(epoch)})
    atomic_write(target / "trainer_state.pt", lambda tmp: torch.save({**trainer_state, "epoch": epoch}, tmp))
    atomic_write_text(root / "LATEST", name + "\n")
    for old in root.glob("epoch-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return target


def load_latest_checkpoint(run_dir: str | Path, model: nn.Module) -> dict[str, Any] | None:
    """Load the latest checkpoint's weights into ``model``; returns its trainer state (None if none)."""
    root = Path(run_dir) / "checkpoints"
    latest = root / "LATEST"
    if not latest.is_file():
        return None
    target = root / latest.read_text().strip()
    load_weights(model, target / "model.safetensors")
    try:
        return torch.load(target / "trainer_state.pt", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise ValueError(f"{target / 'trainer_state.pt'}: unreadable trainer state ({err})") from None


def latest_epoch(run_dir: str | Path) -> int:
    """The epoch ``LATEST`` points at (0 when there is no checkpoint yet)."""
    latest = Path(run_dir) / "checkpoints" / "LATEST"
    if not latest.is_file():
        return 0
    name = latest.read_text().strip()
    try:
        return int(name.removeprefix("epoch-"))
    except ValueError:
        raise ValueError(f"{latest}: expected a name like 'epoch-0007', found {name!r}") from None


def tidy_checkpoints(run_dir: str | Path) -> None:
    """Remove checkpoint folders ``LATEST`` does not name (a kill during :func:`save_checkpoint`
    can leave the next, unfinished one or the previous one behind)."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return
    keep = (root / "LATEST").read_text().strip() if (root / "LATEST").is_file() else None
    for old in root.glob("epoch-*"):
        if old.name != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
