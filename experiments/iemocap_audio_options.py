"""IEMOCAP utterance audio options on Session 4 (valid.npz): per-subset logistic regressions (the
library's specialists, l2 chosen by validation NLL) for audio_transform x speaker_norm.

    ROBUSTFUSION_CACHE=/work/rf-cache python experiments/iemocap_audio_options.py [DIR]
"""
import sys
import time, torch
torch.set_num_threads(1)
from robustfusion.data import load_dataset
from robustfusion.baselines import fit_logistic_specialist
from robustfusion.metrics import classification_metrics
for tr in ("none","signed_log1p"):
    for sn in (False, True):
        t=time.time()
        d=load_dataset("iemocap_utterance", sys.argv[1] if len(sys.argv) > 1 else "../shared/data/iemocap-ta", audio_transform=tr, speaker_norm=sn)
        res=[]
        for sub in (["audio"],["text"],["text","audio"]):
            sp=fit_logistic_specialist(d["train"], d["valid"], sub, l2s=(1e-4,1e-3,1e-2,1e-1))
            v=d["valid"]; b=next(iter(v.batches(len(v))))
            m=classification_metrics(sp.predict(b), v.targets, 4)
            res.append(f"{'+'.join(sub)} acc {m['Acc']:.3f} wF1 {m['F1_weighted']:.3f}")
        print(tr, sn, "|", "; ".join(res), f"{time.time()-t:.1f}s", flush=True)
