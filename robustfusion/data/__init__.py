"""Datasets: `MultimodalDataset`, loaders for published formats, the synthetic benchmark.

``load_dataset(name, path=None, split_seed=0, **options)`` returns
``{"train", "valid", "test": MultimodalDataset}`` for any name of ``list_datasets()``.
"""

from robustfusion.data.dataset import MultimodalDataset
from robustfusion.data.iemocap_utterance import load_iemocap_utterance
from robustfusion.data.mmsa import load_mmsa
from robustfusion.data.mosi_utterance import carve_video_splits, load_mosi_utterance
from robustfusion.data.mult import IEMOCAP_EMOTIONS, load_mult
from robustfusion.data.registry import (
    DATASETS,
    DatasetInfo,
    dataset_env_var,
    list_datasets,
    load_dataset,
    register_dataset,
)
from robustfusion.data.safe_pickle import UnsafePickleError, safe_load_pickle, safe_loads_pickle
from robustfusion.data.synthetic import (
    DEFAULT_MODALITIES,
    EMOTION_NAMES,
    ModalitySpec,
    OraclePrediction,
    SyntheticAffect,
    SyntheticOracle,
    load_synthetic,
    oracle_predict,
)
from robustfusion.data.text_features import embed_texts
from robustfusion.data.transcript_text import text_from_transcripts

__all__ = [
    "DATASETS",
    "DEFAULT_MODALITIES",
    "EMOTION_NAMES",
    "IEMOCAP_EMOTIONS",
    "DatasetInfo",
    "ModalitySpec",
    "MultimodalDataset",
    "OraclePrediction",
    "SyntheticAffect",
    "SyntheticOracle",
    "UnsafePickleError",
    "carve_video_splits",
    "dataset_env_var",
    "embed_texts",
    "list_datasets",
    "load_dataset",
    "load_iemocap_utterance",
    "load_mmsa",
    "load_mosi_utterance",
    "load_mult",
    "load_synthetic",
    "oracle_predict",
    "register_dataset",
    "safe_load_pickle",
    "safe_loads_pickle",
    "text_from_transcripts",
]
