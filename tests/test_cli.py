"""The `robustfusion` command end to end (train -> evaluate -> report, list) and its errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robustfusion.cli import main

ROOT = Path(__file__).resolve().parents[1]
GMC_SYNTH = str(ROOT / "configs" / "synthetic" / "gmc.yaml")
TINY = ["data.options.n_train=96", "data.options.n_valid=48", "data.options.n_test=48", "train.epochs=2",
        "train.batch_size=32", "model.params.hidden_dim=8", "train.progress=false"]
FAST_EVAL = ["eval.levels=[0.0,0.5,1.0]"]


def _last_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_list_names_every_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("models:", "gmc_pf", "late_fusion", "datasets:", "mosi_utterance", "protocols:", "frame_rate"):
        assert word in out


def test_train_evaluate_report_end_to_end(tmp_path, capsys):
    assert main(["train", GMC_SYNTH, *TINY, "--out", str(tmp_path / "runs")]) == 0
    run_dir = Path(_last_line(capsys.readouterr().out))
    assert run_dir.parent == tmp_path / "runs"
    for name in ("config.yaml", "env.json", "model.json", "metrics.jsonl", "model.safetensors",
                 "trainer_state.pt", "final.json", "standardizer.json"):
        assert (run_dir / name).is_file(), name
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2

    assert main(["evaluate", str(run_dir), *FAST_EVAL, "--oracle"]) == 0
    csv = run_dir / "eval" / "test" / "robustness.csv"
    assert Path(_last_line(capsys.readouterr().out)) == csv
    text = csv.read_text()
    assert "oracle" in text and "subsets" in text and "frame_rate" in text and "text+audio" in text
    # the model rebuilt from the run directory is the trained one: its full-modality score in the
    # robustness table equals the one measured right after training (modality order survives)
    from robustfusion.results import read_rows_csv

    final = json.loads((run_dir / "final.json").read_text())
    full = [r for r in read_rows_csv(csv) if r["model"] == "gmc" and r["protocol"] == "subsets"
            and r["subset"] == "text+audio+vision" and r["metric"] == "MAE"]
    assert full and full[0]["value"] == pytest.approx(final["test"]["MAE"], abs=1e-6)

    assert main(["evaluate", str(run_dir), "data.split=valid", "eval.protocols=[subsets]"]) == 0
    assert (run_dir / "eval" / "valid" / "robustness.csv").is_file()

    assert main(["report", str(run_dir), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "table.md").is_file() and (tmp_path / "report" / "table.tex").is_file()
    assert list((tmp_path / "report").rglob("*.png"))


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_missing_config_file_is_a_clear_error(tmp_path, capsys):
    err = _error(capsys, ["train", str(tmp_path / "nope.yaml")])
    assert "config file not found" in err and "nope.yaml" in err


def test_typo_in_a_key_lists_the_valid_keys(capsys):
    err = _error(capsys, ["train", GMC_SYNTH, "train.epoch=3"])
    assert "train.epoch" in err and "epochs" in err and "valid keys" in err


def test_wrong_type_names_the_key(capsys):
    err = _error(capsys, ["train", GMC_SYNTH, "train.lr=fast"])
    assert "train.lr" in err and "Float" in err


def test_unknown_model_parameter_lists_valid_ones(capsys, tmp_path):
    err = _error(capsys, ["train", GMC_SYNTH, *TINY, "model.params.hidden=3", "--out", str(tmp_path)])
    assert "hidden" in err and "hidden_dim" in err


def test_missing_data_path_names_the_option_and_env_var(capsys, monkeypatch):
    monkeypatch.delenv("ROBUSTFUSION_DATA_MOSI_MULT", raising=False)
    err = _error(capsys, ["train", str(ROOT / "configs" / "mosi_mult" / "gmc.yaml")])
    assert "data.path" in err and "ROBUSTFUSION_DATA_MOSI_MULT" in err


def test_run_directory_without_weights_is_a_clear_error(tmp_path, capsys):
    assert main(["train", GMC_SYNTH, *TINY, "--out", str(tmp_path / "runs")]) == 0
    run_dir = Path(_last_line(capsys.readouterr().out))
    (run_dir / "model.safetensors").unlink()
    err = _error(capsys, ["evaluate", str(run_dir)])
    assert "model.safetensors" in err and "--resume" in err
    err = _error(capsys, ["evaluate", str(tmp_path)])
    assert "not a run directory" in err


@pytest.mark.slow
def test_a_killed_training_process_resumes_to_the_same_result(tmp_path):
    """SIGKILL a real `robustfusion train` after its second epoch, resume it, and compare with an
    uninterrupted run of the same seed."""
    args = [sys.executable, "-m", "robustfusion", "train", GMC_SYNTH, *TINY, "train.epochs=6",
            "train.modality_dropout=0.2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = subprocess.run([*args, "--out", str(tmp_path / "ref")], capture_output=True, text=True, env=env, check=True)
    ref_final = json.loads((Path(_last_line(ref.stdout)) / "final.json").read_text())

    out = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    latest = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list(out.glob("*/checkpoints/LATEST"))
        if found and found[0].read_text().strip() >= "epoch-0002":
            latest = found[0]
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest is not None, "the run never reached its second checkpoint"
    run_dir = latest.parents[1]
    if (run_dir / "final.json").exists():
        pytest.skip("the run finished before it could be killed")
    res = subprocess.run([sys.executable, "-m", "robustfusion", "train", "--resume", str(run_dir)],
                         capture_output=True, text=True, env=env, check=True)
    assert Path(_last_line(res.stdout)) == run_dir
    final = json.loads((run_dir / "final.json").read_text())
    assert final["test"] == ref_final["test"] and final["valid"] == ref_final["valid"]
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5, 6]
