"""The unclear and silent cases of issue 25, each a one-line error on stderr with exit code 2
(no traceback), through ``robustfusion.cli.main`` and, where the process matters, a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robustfusion.cli import main
from robustfusion.models import create_model
from robustfusion.models.registry import UnknownKeywordError
from robustfusion.runner import api
from robustfusion.runner.api import resume_run, train_run
from robustfusion.runner.config import load_config
from robustfusion.runner.diverged import TrainingDivergedError
from robustfusion.runner.epoch_log import read_metrics
from tests.data.conftest import make_mosi_npz

ROOT = Path(__file__).resolve().parents[1]
GMC_SYNTH = str(ROOT / "configs" / "synthetic" / "gmc.yaml")
TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=48", "train.epochs=3",
        "train.batch_size=32", "model.params.hidden_dim=8", "train.progress=false"]


def _error(capsys, argv: list[str]) -> str:
    """Run the command; it must fail with code 2 and one stderr line; returns that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"robustfusion {argv[0]}: error: "), err
    return err


@pytest.mark.parametrize("lr", ["1e30", "inf"])
def test_a_diverging_run_is_one_line_naming_the_epoch_and_leaves_no_half_run(tmp_path, capsys, lr):
    err = _error(capsys, ["train", GMC_SYNTH, *TINY, f"train.lr={lr}", "--out", str(tmp_path)])
    assert "training diverged at epoch 1" in err and "lower train.lr" in err and "train.grad_clip" in err
    assert "was removed" in err and list(tmp_path.iterdir()) == []  # no epoch finished: nothing to resume


def test_a_run_diverging_after_a_good_epoch_stays_resumable_from_it(tmp_path, monkeypatch):
    real_fit = api.fit

    def fit_that_breaks(model, *args, on_epoch_end=None, **kwargs):
        def poison(epoch):
            if epoch == 1:  # after epoch 1's checkpoint: the weights go non-finite
                with torch.no_grad():
                    for p in model.parameters():
                        p.fill_(float("nan"))
        return real_fit(model, *args, on_epoch_end=poison, **kwargs)

    monkeypatch.setattr(api, "fit", fit_that_breaks)
    with pytest.raises(TrainingDivergedError) as err:
        train_run(load_config(GMC_SYNTH, TINY), run_dir=tmp_path / "run")
    assert err.value.epoch == 2 and err.value.last_good == 1 and err.value.run_dir == tmp_path / "run"
    assert "kept at its last good checkpoint (epoch 1)" in str(err.value) and "--resume" in str(err.value)
    assert [r["epoch"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1]
    monkeypatch.setattr(api, "fit", real_fit)
    run = resume_run(tmp_path / "run")  # resumable from the last good epoch
    assert run.final["epochs_run"] == 3
    assert [r["epoch"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3]


def _mosi(tmp_path: Path, rng, valid_rows: int | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    make_mosi_npz(tmp_path / "train.npz", rng, n_videos=12)
    if valid_rows is not None:
        v = make_mosi_npz(tmp_path / "valid.npz", rng, n_videos=2, video_prefix="w")
        np.savez(v, **{k: a[:valid_rows] for k, a in np.load(v).items()})
    return tmp_path


MOSI = [str(ROOT / "configs" / "mosi_utterance" / "gmc.yaml"), "train.epochs=1", "train.progress=false"]


def test_a_zero_row_valid_file_is_one_line_not_stop_iteration(tmp_path, capsys):
    data = _mosi(tmp_path / "d", np.random.default_rng(0), valid_rows=0)
    err = _error(capsys, ["train", *MOSI, f"data.path={data}", "--out", str(tmp_path / "runs")])
    assert "valid.npz: split 'valid' has 0 samples" in err


def test_a_train_npz_file_given_as_data_path_names_its_folder(tmp_path, capsys):
    data = _mosi(tmp_path / "d", np.random.default_rng(0))
    err = _error(capsys, ["train", *MOSI, f"data.path={data / 'train.npz'}", "--out", str(tmp_path / "runs")])
    assert f"found a file; pass its folder {data}" in err


def test_an_npz_folder_given_to_the_mult_loader_says_it_is_a_folder(tmp_path, capsys):
    data = _mosi(tmp_path / "d", np.random.default_rng(0))
    err = _error(capsys, ["train", str(ROOT / "configs" / "mosi_mult" / "gmc.yaml"), f"data.path={data}",
                          "--out", str(tmp_path / "runs")])
    assert "found a directory" in err and "train.npz" in err and "mosi_utterance" in err


def test_a_non_zip_npz_is_one_line_without_the_pickle_advice(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.npz").write_bytes(b"\x80\x04\x95 not an archive")
    err = _error(capsys, ["train", *MOSI, f"data.path={tmp_path / 'd'}", "--out", str(tmp_path / "runs")])
    assert "not a zip archive" in err and "allow_pickle" not in err


def test_carving_from_too_few_videos_names_the_file_and_the_minimum(tmp_path, capsys):
    make_mosi_npz(tmp_path / "train.npz", np.random.default_rng(0), n_videos=2)
    err = _error(capsys, ["train", *MOSI, f"data.path={tmp_path}", "--out", str(tmp_path / "runs")])
    assert f"{tmp_path / 'train.npz'}: cannot carve" in err and "need at least" in err


@pytest.mark.parametrize(("override", "key"), [("data.options.n_valid=0", "data.options.n_valid"),
                                               ("data.split_seed=-1", "data.split_seed")])
def test_bad_sizes_and_seeds_name_the_key(tmp_path, capsys, override, key):
    err = _error(capsys, ["train", GMC_SYNTH, *TINY, override, "--out", str(tmp_path)])
    assert key in err


def test_a_symlink_loop_as_out_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    err = _error(capsys, ["train", GMC_SYNTH, *TINY, "--out", str(loop)])
    assert "symlink loop" in err and "Errno" not in err


def test_create_model_lists_the_valid_names_of_a_misspelt_argument():
    with pytest.raises(ValueError) as err:
        create_model("gmc", modality_dims={"text": 4}, task="regression", num_outputs=1, hiden_dim=3)
    msg = str(err.value)
    assert "['hiden_dim']" in msg and "'hidden_dim'" in msg  # the valid keywords are listed
    assert isinstance(err.value, TypeError) and isinstance(err.value, UnknownKeywordError)


def test_a_misspelt_model_param_on_the_command_line_is_one_line(tmp_path, capsys):
    err = _error(capsys, ["train", GMC_SYNTH, *TINY, "model.params.hiden_dim=3", "--out", str(tmp_path)])
    assert "hiden_dim" in err and "hidden_dim" in err


def test_evaluate_oracle_on_a_dataset_without_one_is_refused(tmp_path, capsys):
    data = _mosi(tmp_path / "d", np.random.default_rng(0))
    assert main(["train", *MOSI, f"data.path={data}", "--out", str(tmp_path / "runs")]) == 0
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    err = _error(capsys, ["evaluate", run_dir, "--oracle"])
    assert "has no Bayes-optimal oracle" in err and "drop --oracle" in err
    assert not (Path(run_dir) / "eval").exists()


def test_a_concurrent_resume_is_refused_by_the_real_command(tmp_path):
    """The refusal as the user sees it: a second process, exit code 2, one line naming the holder."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(Path(ROOT / "configs" / "synthetic" / "gmc.yaml").read_text())
    hold = ("import sys\nfrom robustfusion.runner.lock import run_lock\n"
            "with run_lock(sys.argv[1], 'robustfusion train --resume elsewhere'):\n"
            "    print('held', flush=True)\n    sys.stdin.read()\n")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen([sys.executable, "-c", hold, str(run_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = subprocess.run([sys.executable, "-m", "robustfusion", "train", "--resume", str(run_dir)],
                             capture_output=True, text=True, env=env, check=False)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert f"in use by pid {holder.pid}" in res.stderr and "train --resume elsewhere" in res.stderr
