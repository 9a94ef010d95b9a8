"""The README's usage example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _usage_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Usage", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_usage_example_is_short_and_runs(capsys):
    code = _usage_block()
    assert len([line for line in code.splitlines() if line.strip()]) <= 15
    exec(compile(code, str(README), "exec"), {"__name__": "readme_usage"})  # noqa: S102 - the README's own code
    assert "torch.Size([8, 1])" in capsys.readouterr().out


def test_readme_has_exactly_the_two_setup_commands():
    text = README.read_text(encoding="utf-8")
    setup = text.split("## Set up", 1)[1].split("##", 1)[0]
    commands = re.search(r"```bash\n(.*?)```", setup, re.DOTALL).group(1).strip().splitlines()
    assert commands == ['pip install -e ".[dev]"', "python -m pytest -q"]


def test_layout_example_runs(tmp_path, monkeypatch):
    """The Layout section's runner example (the run goes to a temporary folder; tiny data)."""
    text = README.read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text.split("## Layout", 1)[1], re.DOTALL).group(1)
    assert 'out="runs"' in code
    code = code.replace('out="runs"', f'out=r"{tmp_path}"').replace(
        '["train.epochs=5"]', '["train.epochs=1", "data.options.n_train=64", "data.options.n_valid=32", '
        '"data.options.n_test=32", "train.progress=false"]')
    monkeypatch.chdir(README.parent)
    scope: dict = {"__name__": "readme_layout"}
    exec(compile(code, str(README), "exec"), scope)  # noqa: S102 - the README's own code
    assert scope["run"].dir.parent == tmp_path and any(r["protocol"] == "subsets" for r in scope["rows"])
