"""The shape of the code, read with ``ast``: each protocol's name is a string literal in at most two
modules (its registry entry, and the dropping function it wraps), so adding or renaming a protocol
touches one place."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from robustfusion.protocols import protocol_names

PACKAGE = Path(__file__).resolve().parents[1] / "robustfusion"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _string_literals(path: Path) -> set[str]:
    """Every plain string constant of the module (docstrings and f-string pieces included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_each_protocol_name_is_a_literal_in_at_most_two_modules():
    where: dict[str, list[str]] = defaultdict(list)
    for path in MODULES:
        literals = _string_literals(path)
        for name in protocol_names():
            if name in literals:
                where[name].append(str(path.relative_to(PACKAGE)))
    assert set(where) == set(protocol_names())  # the registry entry itself names each
    spread = {name: files for name, files in where.items() if len(files) > 2}
    assert not spread, f"protocol names written as literals in more than two modules: {spread}"
