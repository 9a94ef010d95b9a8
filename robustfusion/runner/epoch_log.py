"""The per-epoch record of a run: one ``metrics.jsonl`` row and one log line per epoch.

Every epoch gives one line (:func:`epoch_line`: epoch, training loss, the validation monitor,
seconds): appended to ``RUN_DIR/train.log`` when there is a run directory, and printed on stderr
when stderr is not a terminal (nohup, SLURM, a pipe; on a terminal tqdm shows the progress
instead); ``train.progress=false`` silences stderr. A resume cuts ``train.log`` back to the
checkpointed epochs, as it does ``metrics.jsonl``, so both always describe the same epochs.
``train.tensorboard=true`` also writes every row's scalars (training losses, validation metrics,
learning rate; step = epoch) to ``RUN_DIR/tensorboard/``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from robustfusion.io import atomic_write_text
from robustfusion.runner.tensorboard import tensorboard_writer

__all__ = ["EpochLog", "epoch_line", "read_metrics"]


def read_metrics(path: str | Path, before_epoch: int | None = None) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` (those of epochs ``< before_epoch`` when given). A torn
    last line, left by a kill while it was being appended, is skipped; an unreadable line
    elsewhere is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            epoch = int(row["epoch"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if i == last:
                break
            raise ValueError(f"{path}: line {i + 1} is not a metrics row (expected a JSON object with an "
                             f"'epoch'), found {line[:60]!r}") from None
        if before_epoch is None or epoch < before_epoch:
            rows.append(row)
    return rows


def epoch_line(row: dict[str, Any], epochs: int, monitor: str, name: str = "") -> str:
    """The log line of one ``metrics.jsonl`` row: epoch, training loss, validation monitor (and its
    subset mean when selected on it), seconds; ``name`` (the run directory's) is put first."""
    parts = [name] if name else []
    parts.append(f"epoch {row['epoch']}/{epochs}")
    if "train/loss" in row:
        parts.append(f"train/loss={row['train/loss']:.4f}")
    for key in (f"valid/{monitor}", f"valid/subset_mean/{monitor}"):
        if key in row:
            parts.append(f"{key}={row[key]:.4f}")
    parts.append(f"{row.get('time_s', 0.0):.2f}s")
    return " ".join(parts)


class EpochLog:
    """Where the epochs of one rank's run are recorded (rank 0 writes; ``run_dir=None``: nothing
    is written, lines may still be echoed).

    Args:
        run_dir: the run directory or ``None``.
        main: this rank writes.
        epochs, monitor: for :func:`epoch_line`.
        progress: ``train.progress``.
        tensorboard: ``train.tensorboard``.
    """

    def __init__(self, run_dir: Path | None, main: bool, epochs: int, monitor: str, progress: bool,
                 tensorboard: bool) -> None:
        self.run_dir, self.epochs, self.monitor = run_dir, epochs, monitor
        self.write = run_dir is not None and main
        self.show = bool(progress) and main and sys.stderr.isatty()  # tqdm bars
        self.echo = bool(progress) and main and not sys.stderr.isatty()
        self.name = run_dir.name if run_dir is not None else ""
        self.writer = tensorboard_writer(run_dir / "tensorboard") if tensorboard and self.write else None

    def rewind(self, start: int) -> list[dict[str, Any]]:
        """Before resuming at epoch ``start``: the rows of the earlier epochs, with ``metrics.jsonl``
        and ``train.log`` cut back to them (a kill between an epoch's metrics line and its
        checkpoint must not leave that epoch twice, nor a torn last line)."""
        metrics_path = self.run_dir / "metrics.jsonl"
        history = read_metrics(metrics_path, before_epoch=start)
        if self.write:
            if metrics_path.exists():
                atomic_write_text(metrics_path, "".join(json.dumps(h) + "\n" for h in history))
            # train.log: the same epochs, each line rebuilt from its metrics row (identical to the one written)
            atomic_write_text(self.run_dir / "train.log", "".join(self.line(h) + "\n" for h in history))
        return history

    def line(self, row: dict[str, Any]) -> str:
        return epoch_line(row, self.epochs, self.monitor, self.name)

    def add_row(self, row: dict[str, Any]) -> None:
        """Append ``row`` to ``metrics.jsonl`` (before the epoch's checkpoint)."""
        if self.write:
            with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    def add_line(self, row: dict[str, Any]) -> None:
        """Append the epoch's line to ``train.log`` (append-only: a kill tears at most the line being
        written), its scalars to TensorBoard, and echo it on stderr."""
        line = self.line(row)
        if self.write:
            with open(self.run_dir / "train.log", "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        if self.writer is not None:
            for k, v in row.items():
                if k not in ("epoch", "time_s") and isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, row["epoch"])
            self.writer.flush()
        if self.echo:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
