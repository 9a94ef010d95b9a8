"""Imports run one way, down the layers written in CONTRIBUTING.md ("Layers"); read with ``ast``,
function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "robustfusion"

#: Lower number = lower layer. A module may import its own layer and the layers below it.
LAYERS: dict[str, int] = {
    # core: no knowledge of any model, dataset or experiment
    "robustfusion.batch": 0, "robustfusion.io": 0, "robustfusion.registry": 0, "robustfusion.seeding": 0,
    "robustfusion.masking": 0, "robustfusion.tasks": 0, "robustfusion.dropping": 0, "robustfusion.metrics": 0,
    "robustfusion.protocols": 0, "robustfusion.augment": 0, "robustfusion.uncertainty": 0,
    # layers a user drops into their own model
    "robustfusion.encoders": 1, "robustfusion.fusion": 1, "robustfusion.heads": 1, "robustfusion.losses": 1,
    "robustfusion.data": 2,
    "robustfusion.models": 3,
    # evaluation: result rows, evaluators, reference predictors, tables and plots
    "robustfusion.results": 4, "robustfusion.robustness": 4, "robustfusion.calibration": 4, "robustfusion.uncertainty_scores": 4, "robustfusion.comparisons": 4, "robustfusion.baselines": 4, "robustfusion.reporting": 4,
    "robustfusion.runner": 5,
    "robustfusion.cli": 6, "robustfusion.__main__": 6, "robustfusion": 6,  # the package's public face
}

#: Narrower rules inside a layer: (importer prefix, imported prefix) pairs that must not occur.
FORBIDDEN = [
    ("robustfusion.fusion", "robustfusion.encoders"),  # fusion layers use core helpers only
    ("robustfusion.encoders", "robustfusion.fusion"),
    ("robustfusion.reporting", "robustfusion.robustness"),  # reports read rows (results), not the evaluator
    ("robustfusion.results", "robustfusion.robustness"),
    ("robustfusion.baselines", "robustfusion.robustness"),
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> tuple[str, int]:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return best, LAYERS[best]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m == "robustfusion" or m.startswith("robustfusion.")}


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    missing = [_module_name(p) for p in MODULES if _layer(_module_name(p))[0] == "robustfusion"
               and _module_name(p) not in ("robustfusion",)]
    assert not missing, f"add these modules to LAYERS (and CONTRIBUTING.md): {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_run_down_the_layers(path):
    me = _module_name(path)
    _, mine = _layer(me)
    upward = [f"{m} (layer {_layer(m)[1]})" for m in _imports(path) if _layer(m)[1] > mine]
    assert not upward, f"{me} (layer {mine}) imports a higher layer: {upward}"
    crossing = [m for m in _imports(path) for a, b in FORBIDDEN
                if (me == a or me.startswith(a + ".")) and (m == b or m.startswith(b + "."))]
    assert not crossing, f"{me} must not import {crossing}"
