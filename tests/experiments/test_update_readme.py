"""experiments/update_readme.py: the README's generated tables come from a grid's rows, and
``--check`` fails when the committed table differs."""

from __future__ import annotations

import runpy
import statistics
from pathlib import Path

import pytest

from robustfusion.results import write_rows_csv

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = runpy.run_path(str(ROOT / "experiments" / "update_readme.py"))
SUBSETS = ("text", "audio", "text+audio")
MAE = {("a", 0): (1.0, 2.0, 0.5), ("a", 1): (1.2, 2.5, 0.7), ("b", 0): (0.9, 3.0, 0.6), ("b", 1): (1.5, 2.0, 0.8)}


def _grid(folder: Path, **grid) -> Path:
    rows = [{"dataset": "synthetic", "model": m, "seed": s, "protocol": "subsets", "level": None, "subset": sub,
             "split": "test", "metric": metric, "value": v if metric == "MAE" else 0.5}
            for (m, s), values in MAE.items() for sub, v in zip(SUBSETS, values) for metric in ("MAE", "Corr")]
    folder.mkdir(parents=True)
    write_rows_csv(rows, folder / "robustness.csv")
    grid = {"name": "synthetic", "quick": False, "overrides": [], **grid}
    (folder / "grid.yaml").write_text("".join(f"{k}: {v}\n" for k, v in grid.items()))
    return folder


def _expected_cell(model: str, i: int) -> str:
    vals = [MAE[(model, s)][i] for s in (0, 1)]
    return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def test_the_section_is_the_headline_table_of_the_rows(tmp_path):
    text = SCRIPT["section_text"](_grid(tmp_path / "g"), "synthetic")
    lines = text.splitlines()
    assert lines[0] == "| model (MAE ↓) | text | audio | text+audio |" and lines[1].startswith("|:---|")
    for line, model in zip(lines[2:], ("a", "b")):
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        assert cells == [model, *(_expected_cell(model, i) for i in range(3))]  # mean ± sample std by hand
    assert len(lines) == 4


def test_check_fails_on_a_stale_table_and_passes_after_the_rewrite(tmp_path, capsys):
    results = _grid(tmp_path / "g")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- BEGIN GENERATED: synthetic -->\n| old |\n<!-- END GENERATED -->\noutro\n")
    main = SCRIPT["main"]
    assert main(["--results", str(results), "--readme", str(readme), "--check"]) == 1
    assert "-| old |" in capsys.readouterr().out
    (tmp_path / "docs").mkdir()
    assert main(["--results", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- BEGIN GENERATED: synthetic -->\n| model (MAE ↓) |") and text.endswith(
        "<!-- END GENERATED -->\noutro\n")
    assert main(["--results", str(results), "--readme", str(readme), "--check"]) == 0


@pytest.mark.parametrize("grid, found", [({"quick": True}, "quick=True"), ({"name": "synthetic_emotion"},
                                                                           "'synthetic_emotion'"),
                                         ({"overrides": "[train.epochs=1]"}, "overrides=['train.epochs=1']")])
def test_only_the_full_grid_may_fill_the_readme(tmp_path, capsys, grid, found):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- BEGIN GENERATED: synthetic -->\n| old |\n<!-- END GENERATED -->\n")
    assert SCRIPT["main"](["--results", str(_grid(tmp_path / "g", **grid)), "--readme", str(readme)]) == 2
    err = capsys.readouterr().err
    assert "expected the full grid 'synthetic' (no --quick, no overrides)" in err and found in err
    assert readme.read_text().endswith("| old |\n<!-- END GENERATED -->\n")


def test_a_readme_without_the_markers_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"expected the markers .* for \['synthetic'\], found sections \[\]"):
        SCRIPT["render"]("no markers\n", {"synthetic": "| t |\n"})


def test_the_committed_readme_has_a_section_for_every_grid_it_shows():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [m.group(1) for m in SCRIPT["BEGIN"].finditer(text)] == ["synthetic", "mosi_utterance", "iemocap_utterance"]
    assert set(SCRIPT["SECTIONS"]) == {"synthetic", "mosi_utterance", "iemocap_utterance"}


def test_a_section_adds_the_differences_with_intervals_of_comparisons_csv(tmp_path):
    from robustfusion.comparisons import write_comparisons_csv

    folder = _grid(tmp_path / "g")
    write_comparisons_csv([{"model": "a", "reference": "b", "protocol": "subsets", "level": None, "subset": s,
                            "metric": "MAE", "delta": d, "ci_low": d - 0.1, "ci_high": d + 0.1}
                           for s, d in zip(SUBSETS, (-0.2, 0.05, 0.3))], folder / "comparisons.csv")
    text = SCRIPT["section_text"](folder, "synthetic")
    assert "MAE, model minus b, with 95% intervals" in text
    assert "| a | -0.200 [-0.300, -0.100]* | +0.050 [-0.050, +0.150] | +0.300 [+0.200, +0.400]* |" in text
