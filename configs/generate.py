"""Write configs/<dataset>/<method>.yaml from the presets in robustfusion/runner/presets.py.

    python configs/generate.py

The YAMLs are plain files: edit a copy freely. tests/runner/test_configs.py checks that the
shipped ones still equal the presets, so `robustfusion train configs/X/Y.yaml` and
`robustfusion reproduce` train the same thing.
"""

from __future__ import annotations

from pathlib import Path

from robustfusion.runner.presets import DATASET_DEFAULTS, METHODS, preset_yaml

HERE = Path(__file__).resolve().parent


def main() -> None:
    for dataset in DATASET_DEFAULTS:
        for method in METHODS.ordered():
            path = HERE / dataset / f"{method}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(preset_yaml(dataset, method))
    print(f"wrote {len(DATASET_DEFAULTS) * len(METHODS.names())} configs under {HERE}")


if __name__ == "__main__":
    main()
