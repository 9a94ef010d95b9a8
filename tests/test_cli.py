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


# ---------------------------------------------------------------- issue 14
def _one_line_error(capsys, argv, *needles) -> str:
    """Exit 2 with one line ``robustfusion <cmd>: error: ...`` holding every needle, no traceback."""
    err = _error(capsys, argv)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"robustfusion {argv[0]}: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_version_from_package_metadata(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"robustfusion {metadata.version('robustfusion')}"
    import robustfusion

    assert robustfusion.__version__ == metadata.version("robustfusion")


def test_resume_refuses_a_config_file_and_overrides_instead_of_ignoring_them(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _one_line_error(capsys, ["train", "--resume", str(run_dir), "train.epochs=40"],
                    "overrides ['train.epochs=40'] are not applied to a resumed run")
    _one_line_error(capsys, ["train", GMC_SYNTH, "--resume", str(run_dir)], "found a config file too", "gmc.yaml")
    assert "refused" in build_parser_help("train")


def build_parser_help(cmd: str) -> str:
    from robustfusion.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[cmd]
    return sub.format_help()


def test_config_errors_are_one_line_and_come_before_training(tmp_path, capsys):
    listed = tmp_path / "list.yaml"
    listed.write_text("- train\n- epochs\n")
    _one_line_error(capsys, ["train", str(listed), "--out", str(tmp_path)], "list.yaml", "expected a YAML mapping",
                    "found a list")
    _one_line_error(capsys, ["train", GMC_SYNTH, "train.device=tpu", "--out", str(tmp_path)],
                    "train.device", "'tpu'", "cuda:N")
    _one_line_error(capsys, ["train", GMC_SYNTH, "train.monitor=MEA", "--out", str(tmp_path)],
                    "train.monitor", "'MEA'", "'MAE'")
    # a real metric of another task: refused before the run directory is made, not after epoch 1
    _one_line_error(capsys, ["train", GMC_SYNTH, *TINY, "train.monitor=Acc", "--out", str(tmp_path / "runs")],
                    "train.monitor='Acc'", "regression task", "'MAE'")
    assert not (tmp_path / "runs").exists()
    _one_line_error(capsys, ["train", GMC_SYNTH, *TINY, "model.params.hidden_dim=0", "--out", str(tmp_path)],
                    "hidden_dim: expected a size >= 1, found 0")
    _one_line_error(capsys, ["train", GMC_SYNTH, "train.lr=-1", "--out", str(tmp_path)], "'train.lr'", "> 0", "-1.0")
    _one_line_error(capsys, ["train", GMC_SYNTH, "eval.batch_size=0", "--out", str(tmp_path)], "'eval.batch_size'")
    _one_line_error(capsys, ["train", GMC_SYNTH, "eval.protocols=[subset]", "--out", str(tmp_path)],
                    "'eval.protocols'", "['subset']")
    assert not list(tmp_path.glob("*/config.yaml"))  # nothing was trained


def test_unwritable_output_folders_fail_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    where = str(blocker / "sub")
    _one_line_error(capsys, ["train", GMC_SYNTH, *TINY, "--out", where], "--out", "is not a directory")
    _one_line_error(capsys, ["reproduce", "--quick", "--out", where], "--out", "is not a directory")
    _one_line_error(capsys, ["report", str(tmp_path), "--out", where], "--out", "is not a directory")
    fake_run = tmp_path / "run"
    fake_run.mkdir()
    (fake_run / "config.yaml").write_text("seed: 0\n")
    (fake_run / "eval").write_text("a file where the eval folder goes")
    _one_line_error(capsys, ["evaluate", str(fake_run)], "run directory", "is not a directory")
    _one_line_error(capsys, ["evaluate", str(fake_run), "--out", where], "--out", "is not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folders_fail_before_any_work(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _one_line_error(capsys, ["train", GMC_SYNTH, *TINY, "--out", str(ro / "runs")], "cannot write into")
        _one_line_error(capsys, ["reproduce", "--quick", "--out", str(ro)], "cannot write into")
    finally:
        ro.chmod(0o755)


def test_evaluate_out_writes_elsewhere(tmp_path, capsys):
    assert main(["train", GMC_SYNTH, *TINY, "--out", str(tmp_path / "runs")]) == 0
    run_dir = Path(_last_line(capsys.readouterr().out))
    out = tmp_path / "elsewhere"
    assert main(["evaluate", str(run_dir), *FAST_EVAL, "eval.protocols=[subsets]", "--out", str(out)]) == 0
    assert Path(_last_line(capsys.readouterr().out)) == out / "robustness.csv"
    assert (out / "robustness.csv").is_file() and not (run_dir / "eval").exists()


def test_headline_table_is_the_primary_metric_subsets_table():
    from robustfusion.reporting.headline import headline_table

    lines = ["# Robustness report", "", "intro", "", "## synthetic (test)", "",
             "### MAE: modality subset", "", "| model (MAE ↓) | text |", "|:---|---:|", "| gmc | 0.9 |", "",
             "![MAE subsets](plots/x.png)", "", "### MAE: modality drop rate", "", "| a |"]
    md = "\n".join(lines)
    head = headline_table(md, [{"metric": "MAE"}, {"metric": "Corr"}])
    assert head.splitlines()[0] == "### MAE: modality subset" and "| gmc | 0.9 |" in head
    assert "drop rate" not in head and "png" not in head
