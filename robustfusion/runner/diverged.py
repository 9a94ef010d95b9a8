"""A training run whose loss stops being finite: one clear error, and a run directory left usable.

:func:`robustfusion.runner.fit.fit` raises ``FloatingPointError`` as soon as a batch's training
loss is NaN or infinite (``train.lr=1e30``, ``train.lr=inf``, features with extreme values).
:func:`handle_divergence` turns that into a :class:`TrainingDivergedError` (a ``ValueError``, so
the command prints it as one line) naming the run, the epoch and what to change, and leaves the
run directory in one of two states:

* it has a checkpoint (an epoch finished before the divergence): kept as it is, resumable with
  ``robustfusion train --resume RUN_DIR`` from that last good epoch (``metrics.jsonl`` and
  ``train.log`` end with it: the failing epoch wrote nothing);
* it has none and this call created it: removed, since it holds start-up files only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from robustfusion.runner.checkpoint import latest_epoch

__all__ = ["TrainingDivergedError", "handle_divergence"]


class TrainingDivergedError(ValueError):
    """Training produced a non-finite loss; ``epoch`` failed, ``last_good`` is the last checkpointed
    epoch (0: none), ``run_dir`` is the kept run directory or ``None`` when it was removed."""

    def __init__(self, message: str, epoch: int, last_good: int, run_dir: Path | None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.last_good = last_good
        self.run_dir = run_dir


def handle_divergence(err: FloatingPointError, run_dir: str | Path, lr: float, created: bool) -> TrainingDivergedError:
    """The error to raise for ``err`` (raised by ``fit`` in ``run_dir``); removes ``run_dir`` when
    it has no checkpoint and ``created`` (this call made it).

    Args:
        err: the ``FloatingPointError`` from the training loop.
        run_dir: the run directory being trained.
        lr: the run's ``train.lr`` (quoted in the suggestion).
        created: the directory was created by this call (a fresh run, not a resume).
    """
    run_dir = Path(run_dir)
    last_good = latest_epoch(run_dir) if run_dir.is_dir() else 0
    epoch = last_good + 1  # a checkpoint is written after every epoch: the failing one is the next
    detail = str(err).split(": ", 1)[-1] if str(err).startswith("epoch ") else str(err)
    advice = (f"lower train.lr (now {lr:g}), set train.grad_clip (e.g. 1.0) or check the data for extreme values")
    if last_good > 0:
        where = (f"the run is kept at its last good checkpoint (epoch {last_good}); `robustfusion train --resume "
                 f"{run_dir}` continues it with the same settings, so to change them start a new run")
        kept: Path | None = run_dir
    elif created:
        shutil.rmtree(run_dir, ignore_errors=True)
        where = f"no epoch finished, so the run directory {run_dir} was removed"
        kept = None
    else:
        where = f"no epoch had finished; the run directory {run_dir} is left as it was"
        kept = run_dir
    return TrainingDivergedError(f"{run_dir.name}: training diverged at epoch {epoch} ({detail.split(';')[0]}); "
                                 f"{advice}; {where}", epoch, last_good, kept)
