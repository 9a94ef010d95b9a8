"""Beyond one terminal and one thread: ``train.num_threads``, per-epoch log lines (stderr and
``RUN/train.log``, cut back on resume like ``metrics.jsonl``), and ``reproduce --jobs N``
(a local process pool whose ``robustness.csv`` is byte-identical to a serial run's)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import torch

from robustfusion.cli import main
from robustfusion.runner.api import resume_run, train_run
from robustfusion.runner.config import ConfigError, load_config
from robustfusion.runner.epoch_log import epoch_line, read_metrics
from robustfusion.runner.reproduce import _finished_with
from robustfusion.runner.resources import auto_num_threads, torch_threads

resources_mod = importlib.import_module("robustfusion.runner.resources")  # where auto_num_threads reads the cores
ROOT = Path(__file__).resolve().parents[2]
GMC_SYNTH = str(ROOT / "configs" / "synthetic" / "gmc.yaml")
TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=48", "train.epochs=3",
        "train.batch_size=32", "model.params.hidden_dim=8", "train.modality_dropout=0.2"]
LINE = re.compile(r"^(\S+) epoch (\d+)/(\d+) train/loss=\S+ valid/MAE=\S+ valid/subset_mean/MAE=\S+ \d+\.\d\ds$")


class _Kill(Exception):
    pass


def _cfg(extra=()):
    return load_config(GMC_SYNTH, [*TINY, *extra])


def _without_time(line: str) -> str:
    return line.rsplit(" ", 1)[0]


# ------------------------------------------------------------------ threads

def test_auto_num_threads_leaves_half_the_cores_and_shares_them_between_jobs(monkeypatch):
    for cores, one, two in [(1, 1, 1), (2, 1, 1), (4, 2, 2), (16, 4, 8), (64, 4, 32)]:
        monkeypatch.setattr(resources_mod, "available_cores", lambda c=cores: c)
        assert (auto_num_threads(), auto_num_threads(2)) == (one, two), cores


def test_torch_threads_sets_the_count_and_restores_it():
    before = torch.get_num_threads()
    with torch_threads(3) as n:
        assert n == 3 and torch.get_num_threads() == 3
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(2):
        raise RuntimeError
    assert torch.get_num_threads() == before


def test_a_run_uses_train_num_threads_and_restores_the_callers_count(tmp_path):
    seen = []
    with torch_threads(2):  # the caller's count; the run itself uses 1 (more would be slow on a busy CI box)
        train_run(_cfg(["train.num_threads=1", "train.progress=false"]), run_dir=tmp_path / "run",
                  on_epoch_end=lambda e: seen.append(torch.get_num_threads()))
        assert torch.get_num_threads() == 2
    assert seen == [1, 1, 1]


def test_a_negative_num_threads_is_refused():
    with pytest.raises(ConfigError, match="train.num_threads"):
        _cfg(["train.num_threads=-1"])


def test_a_finished_run_is_reused_whatever_its_thread_count(tmp_path):
    run = train_run(_cfg(["train.progress=false"]), run_dir=tmp_path / "run")
    assert _finished_with(run.dir, _cfg(["train.progress=false", "train.num_threads=2"]))
    assert not _finished_with(run.dir, _cfg(["train.progress=false", "train.lr=0.01"]))


# ------------------------------------------------------------------ logging

def test_one_line_per_epoch_on_stderr_without_a_terminal_and_in_train_log(tmp_path, capsys):
    run = train_run(_cfg(), run_dir=tmp_path / "run")
    err = [ln for ln in capsys.readouterr().err.splitlines() if " epoch " in ln]
    log = (run.dir / "train.log").read_text().splitlines()
    assert err == log
    assert [LINE.match(ln).group(1, 2, 3) for ln in log] == [("run", str(e), "3") for e in (1, 2, 3)]
    rows = read_metrics(run.dir / "metrics.jsonl")
    assert log == [epoch_line(r, 3, "MAE", "run") for r in rows]


def test_progress_false_keeps_stderr_quiet_but_still_writes_train_log(tmp_path, capsys):
    run = train_run(_cfg(["train.progress=false"]), run_dir=tmp_path / "run")
    assert " epoch " not in capsys.readouterr().err
    assert len((run.dir / "train.log").read_text().splitlines()) == 3


def test_resume_cuts_train_log_back_to_the_checkpointed_epochs(tmp_path):
    ref = train_run(_cfg(["train.progress=false"]), run_dir=tmp_path / "ref" / "run")
    run_dir = tmp_path / "killed" / "run"

    def kill(epoch):
        if epoch == 2:
            raise _Kill
    with pytest.raises(_Kill):
        train_run(_cfg(["train.progress=false"]), run_dir=run_dir, on_epoch_end=kill)
    lines = (run_dir / "train.log").read_text().splitlines()
    # as if killed after epoch 3's line but before its checkpoint, then torn in the middle of another
    with open(run_dir / "train.log", "a") as fh:
        fh.write(lines[-1].replace("epoch 2/3", "epoch 3/3") + "\n" + lines[-1][:20])
    resume_run(run_dir)
    log = (run_dir / "train.log").read_text().splitlines()
    assert [_without_time(ln) for ln in log] == [_without_time(ln) for ln in (ref.dir / "train.log").read_text().splitlines()]
    assert log[:2] == lines  # the lines written before the kill are kept as they were
    assert (run_dir / "final.json").read_bytes() == (ref.dir / "final.json").read_bytes()
    assert (run_dir / "model.safetensors").read_bytes() == (ref.dir / "model.safetensors").read_bytes()


# ------------------------------------------------------------------ reproduce --jobs

def test_reproduce_jobs_2_writes_the_same_robustness_csv_as_jobs_1_and_runs_are_reused(tmp_path, capsys):
    assert main(["reproduce", "--quick", "--out", str(tmp_path / "serial")]) == 0
    serial_err = capsys.readouterr().err
    assert main(["reproduce", "--quick", "--jobs", "2", "--out", str(tmp_path / "pool")]) == 0
    pool_err = capsys.readouterr().err
    serial = (tmp_path / "serial" / "robustness.csv").read_bytes()
    assert (tmp_path / "pool" / "robustness.csv").read_bytes() == serial
    for err in (serial_err, pool_err):
        progress = re.findall(r"run (\d)/3 \(synthetic, (\w+), seed 0\)", err)
        assert [k for k, _ in progress] == ["1", "2", "3"], err
        assert sorted(m for _, m in progress) == ["gmc", "gmc_pf", "late_fusion"], err
    assert "left" in serial_err
    for method in ("gmc", "gmc_pf", "late_fusion"):
        run = tmp_path / "pool" / "runs" / f"synthetic-{method}-seed0"
        assert len((run / "train.log").read_text().splitlines()) == 3
        assert json.loads((run / "final.json").read_text()) == \
            json.loads((tmp_path / "serial" / "runs" / f"synthetic-{method}-seed0" / "final.json").read_text())
    # the pool's finished runs are reused by a serial rerun, with the same table
    assert main(["reproduce", "--quick", "--out", str(tmp_path / "pool")]) == 0
    assert capsys.readouterr().err.count("reused finished run") == 3
    assert (tmp_path / "pool" / "robustness.csv").read_bytes() == serial


def test_reproduce_jobs_below_1_is_refused(tmp_path, capsys):
    assert main(["reproduce", "--quick", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert "--jobs 0" in capsys.readouterr().err
