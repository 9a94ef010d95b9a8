"""The API reference (mkdocs + mkdocstrings, ``mkdocs.yml``) builds with no warning; skipped where
the ``docs`` extra is not installed (``pip install -e ".[docs]"``; CI installs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_reference_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra is not installed")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stderr
    page = (tmp_path / "site" / "api" / "models" / "index.html").read_text(encoding="utf-8")
    assert "create_model" in page and "set_fallback" in page and "UnknownKeywordError" in page
