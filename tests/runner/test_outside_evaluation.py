"""The commands outside evaluation uses, end to end on miniature folders in the shared layouts
(``train.npz``, ``valid.npz``, ``test.npz``):

    robustfusion train configs/<mosi_utterance|iemocap_utterance>/gmc_pf.yaml data.path=DIR seed=S --out OUT
    robustfusion evaluate RUN data.split=test     # -> RUN/eval/test/robustness.csv

and the real-data grid ``robustfusion reproduce <grid> --data DIR`` (cross-fitted when DIR has no
test.npz, one grid on test.npz otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustfusion.cli import main
from robustfusion.comparisons import read_comparisons_csv
from robustfusion.results import read_rows_csv
from robustfusion.runner.data_grids import PART_SEED_STRIDE, data_parts
from tests.data.conftest import fake_embed_texts, make_iemocap_npz, make_mosi_npz

ROOT = Path(__file__).resolve().parents[2]
FAST = ["train.epochs=2", "train.progress=false", "train.num_threads=1"]
MOSI_SUBSETS = {"text", "audio", "vision", "text+audio", "text+vision", "audio+vision", "text+audio+vision"}


@pytest.fixture
def fake_text(monkeypatch):
    import robustfusion.data.text_features as tf

    monkeypatch.setattr(tf, "embed_texts", fake_embed_texts)


def _mosi_dir(root: Path, splits=("train", "valid", "test")) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    for k, s in enumerate(splits):
        make_mosi_npz(root / f"{s}.npz", rng, n_videos=8 if s == "train" else 4, per_video=4, video_prefix=s)
    return root


def _iemocap_dir(root: Path, splits=("train", "valid", "test")) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    for k, s in enumerate(splits):
        make_iemocap_npz(root / f"{s}.npz", rng, session=k + 1, n_dialogues=6 if s == "train" else 4)
    return root


def _train_then_evaluate(config: str, data: Path, out: Path, capsys) -> list[dict]:
    assert main(["train", str(ROOT / "configs" / config), f"data.path={data}", "seed=1", *FAST,
                 "--out", str(out)]) == 0
    run = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert run.is_dir() and run.name.endswith("-gmc_pf-seed1")
    assert main(["evaluate", str(run), "data.split=test"]) == 0
    csv = run / "eval" / "test" / "robustness.csv"
    assert Path(capsys.readouterr().out.strip().splitlines()[-1]) == csv
    rows = read_rows_csv(csv)
    assert {r["split"] for r in rows} == {"test"} and {r["seed"] for r in rows} == {1}
    return [r for r in rows if r["protocol"] == "subsets"]


def test_mosi_train_and_evaluate_on_test_npz(tmp_path, capsys, fake_text):
    data = _mosi_dir(tmp_path / "mosi")
    rows = _train_then_evaluate("mosi_utterance/gmc_pf.yaml", data, tmp_path / "runs", capsys)
    for metric in ("MAE", "Non0_F1_score"):
        got = {r["subset"]: r["value"] for r in rows if r["metric"] == metric}
        assert set(got) == MOSI_SUBSETS and all(np.isfinite(v) for v in got.values())


def test_iemocap_train_and_evaluate_on_test_npz(tmp_path, capsys, fake_text):
    data = _iemocap_dir(tmp_path / "iemocap")
    rows = _train_then_evaluate("iemocap_utterance/gmc_pf.yaml", data, tmp_path / "runs", capsys)
    n_test = int((np.load(data / "test.npz")["emotion4"] >= 0).sum())
    for metric in ("Acc", "F1_weighted", "happy_bin_acc", "angry_bin_F1", "sad_F1"):
        got = {r["subset"]: r["value"] for r in rows if r["metric"] == metric}
        assert set(got) == {"text", "audio", "text+audio"}
        assert all(0 <= v <= 1 for v in got.values())
    # accuracy is a multiple of 1 / (the 4-way test utterances): -1 labels are left out
    acc = [r["value"] for r in rows if r["metric"] == "Acc"]
    assert all(abs(a * n_test - round(a * n_test)) < 1e-6 for a in acc)


def test_data_parts_follow_the_directory(tmp_path):
    full = _iemocap_dir(tmp_path / "full")
    assert data_parts(full) == [("", [])]
    dev = _iemocap_dir(tmp_path / "dev", ("train", "valid"))
    assert data_parts(dev, folds=3) == [(f"fold{k}", ["data.options.crossfit_folds=3", f"data.options.crossfit_fold={k}"])
                                        for k in range(3)]
    with pytest.raises(ValueError, match=r"--folds: expected >= 2 folds"):
        data_parts(dev, folds=1)
    with pytest.raises(ValueError, match=r"expected a directory holding train.npz"):
        data_parts(tmp_path / "nowhere")


def test_reproduce_with_data_cross_fits_without_test_npz(tmp_path, capsys, fake_text):
    data = _iemocap_dir(tmp_path / "dev", ("train", "valid"))
    out = tmp_path / "grid"
    assert main(["reproduce", "iemocap_utterance", "--data", str(data), "--quick", "--out", str(out), *FAST]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    rows = read_rows_csv(out / "robustness.csv")
    assert {r["model"] for r in rows} == {"gmc_pf", "specialists_ridge", "specialists_logistic"}
    assert {r["seed"] for r in rows if r["model"] == "gmc_pf"} == {0, PART_SEED_STRIDE}
    # each fold's test dialogues are the other fold's validation dialogues: every Session-4 dialogue once
    z = np.load(data / "valid.npz")
    for k in (0, 1):
        part = read_rows_csv(out / f"fold{k}" / "robustness.csv")
        assert {r["seed"] for r in part if r["model"] == "gmc_pf"} == {0}
    assert (out / "table.md").is_file() and "specialists_logistic" in (out / "table.md").read_text()
    assert len(set(z["dialogue_id"].tolist())) == 4
    # the pooled comparisons: gmc_pf minus the logistic specialists over every validation dialogue
    comparisons = read_comparisons_csv(out / "comparisons.csv")
    text = next(r for r in comparisons if r["model"] == "gmc_pf" and r["subset"] == "text" and r["metric"] == "Acc")
    pooled = {k: read_rows_csv(out / f"fold{k}" / "robustness.csv") for k in (0, 1)}
    assert text["reference"] == "specialists_logistic" and text["ci_low"] <= text["delta"] <= text["ci_high"]
    assert all((out / f"fold{k}" / "comparisons.csv").is_file() for k in pooled)


def test_reproduce_data_errors(tmp_path, capsys):
    assert main(["reproduce", "synthetic", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "takes no data directory" in capsys.readouterr().err
    assert main(["reproduce", "iemocap_utterance", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "expected a directory holding train.npz" in capsys.readouterr().err
