"""IEMOCAP utterance audio options on Session 4 (valid.npz): per-subset multinomial logistic
regressions (the library's specialists, l2 chosen by validation NLL) for every combination of
`audio_transform` and `speaker_norm`; prints accuracy and weighted F1 per subset.

    ROBUSTFUSION_CACHE=/work/rf-cache python experiments/iemocap_audio_options.py [DIR]
"""

from __future__ import annotations

import sys

import torch

from robustfusion.baselines import fit_logistic_specialist
from robustfusion.data import load_dataset
from robustfusion.metrics import classification_metrics


def main(path: str) -> None:
    torch.set_num_threads(1)
    for transform in ("none", "signed_log1p"):
        for speaker_norm in (False, True):
            d = load_dataset("iemocap_utterance", path, audio_transform=transform, speaker_norm=speaker_norm)
            cells = []
            for subset in (["audio"], ["text"], ["text", "audio"]):
                specialist = fit_logistic_specialist(d["train"], d["valid"], subset)
                m = classification_metrics(specialist.predict(d["valid"].full_batch()), d["valid"].targets, 4)
                cells.append(f"{'+'.join(subset)} acc {m['Acc']:.3f} wF1 {m['F1_weighted']:.3f}")
            print(f"audio_transform={transform} speaker_norm={speaker_norm} | " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/iemocap-ta")
