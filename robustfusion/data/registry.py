"""Dataset registry: ``load_dataset(name, path=None, split_seed=0, **options)``.

Every loader returns ``{"train", "valid", "test": MultimodalDataset}`` with ``.name`` = the
registry name. ``path`` is the ``.pkl`` file (MulT / MMSA formats) or the directory
(``mosi_utterance``, ``iemocap_utterance``); when it is ``None`` for a real dataset, the environment variable
``ROBUSTFUSION_DATA_<NAME>`` (e.g. ``ROBUSTFUSION_DATA_MOSEI_MULT``) is used; for
``mosi_utterance`` also ``ROBUSTFUSION_MOSI_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from robustfusion.data._common import check_feature_widths
from robustfusion.data.checks import check_nonempty
from robustfusion.data.dataset import MultimodalDataset
from robustfusion.data.iemocap_utterance import load_iemocap_utterance
from robustfusion.data.mmsa import load_mmsa
from robustfusion.data.mosi_utterance import load_mosi_utterance
from robustfusion.data.mult import load_mult
from robustfusion.data.npz_format import load_npz_folder
from robustfusion.data.synthetic import load_synthetic
from robustfusion.registry import Registry

__all__ = ["DATASETS", "DatasetInfo", "dataset_env_var", "list_datasets", "load_dataset", "register_dataset"]


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset: its loader, whether it needs a path, defaults and a description."""

    name: str
    loader: Callable[..., dict[str, MultimodalDataset]]
    needs_path: bool
    description: str
    defaults: dict = field(default_factory=dict)
    path_kind: str = "file"
    extra_env: tuple[str, ...] = ()


#: Every dataset ``load_dataset`` knows, by name (the built-ins are added at the end of this module).
DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset under ``info.name`` (a ``ValueError`` if another one holds the name); returns ``info``.

    ``info.loader(path, name=..., **options)`` (or ``loader(name=..., **options)`` when
    ``needs_path`` is False) must return ``{"train", "valid", "test": MultimodalDataset}``; its
    keyword parameters are the dataset's ``data.options``. For features of your own, no code is
    needed: write them in the ``npz`` format (:mod:`robustfusion.data.npz_format`).
    """
    return DATASETS.add(info.name, info)


def dataset_env_var(name: str) -> str:
    """``ROBUSTFUSION_DATA_<NAME>`` (upper case, non-alphanumerics as ``_``)."""
    return "ROBUSTFUSION_DATA_" + "".join(c if c.isalnum() else "_" for c in name.upper())


def list_datasets() -> list[str]:
    """Registered dataset names."""
    return DATASETS.names()


def load_dataset(name: str, path: str | Path | None = None, split_seed: int = 0,
                 **options) -> dict[str, MultimodalDataset]:
    """Load the registered dataset ``name`` into ``{"train", "valid", "test": MultimodalDataset}``.

    Args:
        name: one of :func:`list_datasets` (``"synthetic"``, ``"mosi_utterance"``,
            ``"mosi_mult"``, ``"mosei_mult"``, ``"iemocap_mult"``, ``"mosi_mmsa"``,
            ``"mosei_mmsa"``, ``"sims_mmsa"``).
        path: the ``.pkl`` file or the ``mosi_utterance`` directory; ``None`` reads
            ``ROBUSTFUSION_DATA_<NAME>``. Unused (must be ``None``) for ``"synthetic"``.
        split_seed: seed of the video-grouped carving of absent splits (``mosi_utterance``).
        **options: loader options (``nonfinite``, ``text_features``, synthetic ``n_train``,
            ``seed``, ``target`` ...); an unknown option is a ``ValueError`` naming the valid ones.
    """
    import inspect

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list_datasets()}")
    info = DATASETS.get(name)
    if info.needs_path and path is None:
        for var in (dataset_env_var(name), *info.extra_env):
            if os.environ.get(var):
                path = os.environ[var]
                break
        else:
            raise ValueError(
                f"dataset {name!r} needs the {info.path_kind} of its data: pass data.path=... (config) / "
                f"path=... (Python) or set the environment variable {dataset_env_var(name)}"
            )
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
        raise ValueError(f"data.split_seed: expected an integer >= 0 (the seed of the split carving), "
                         f"found {split_seed!r}")
    kwargs = {**info.defaults, **options}
    params = inspect.signature(info.loader).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        valid = sorted(p for p in params if p not in ("path", "split_seed", "name"))
        unknown = sorted(k for k in options if k not in params or k in ("path", "split_seed"))
        if unknown:
            raise ValueError(f"dataset {name!r}: unknown options {unknown}; valid options {valid}")
    kwargs.setdefault("name", name)
    if "split_seed" in params:
        kwargs["split_seed"] = split_seed
    if info.needs_path:
        data = info.loader(path, **kwargs)
    else:
        if path is not None:
            raise ValueError(f"dataset {name!r} takes no path (it is generated), found path={str(path)!r}; "
                             "remove data.path")
        data = info.loader(**kwargs)
    for split, ds in data.items():
        ds.name = kwargs["name"]
        source = ds.meta.get("source", name) if isinstance(ds.meta, dict) else name
        check_nonempty(source, split, len(ds))
    check_feature_widths(data)
    return data


# ---------------------------------------------------------------------------- built-ins
def _register_builtins() -> None:
    """The datasets this package ships, each loader imported by name at the top of this module."""
    register_dataset(DatasetInfo("npz", load_npz_folder, True, "your own features: DIR/{train,valid,test}.npz in "
                                 "the documented format (robustfusion.data.npz_format; robustfusion data check DIR)",
                                 path_kind="directory"))
    register_dataset(DatasetInfo("synthetic", load_synthetic, False,
                                 "embedded synthetic affect benchmark with a Bayes-optimal oracle"))
    register_dataset(DatasetInfo("mosi_utterance", load_mosi_utterance, True,
                                 "CMU-MOSI utterance-level bc-LSTM features (<split>.npz directory)",
                                 path_kind="directory", extra_env=("ROBUSTFUSION_MOSI_DIR",)))
    register_dataset(DatasetInfo("iemocap_utterance", load_iemocap_utterance, True,
                                 "IEMOCAP utterances: transcripts + 8 acoustic features (<split>.npz directory)",
                                 path_kind="directory"))
    for ds, fname in (("mosi", "mosi_data.pkl"), ("mosei", "mosei_senti_data.pkl"), ("iemocap", "iemocap_data.pkl")):
        register_dataset(DatasetInfo(f"{ds}_mult", load_mult, True, f"MulT pickle ({fname} or *_noalign.pkl)",
                                     path_kind=f".pkl file ({fname})"))
    for ds, rng in (("mosi", (-3.0, 3.0)), ("mosei", (-3.0, 3.0)), ("sims", (-1.0, 1.0))):
        fname = "unaligned_39.pkl" if ds == "sims" else "aligned_50.pkl / unaligned_50.pkl"
        register_dataset(DatasetInfo(f"{ds}_mmsa", load_mmsa, True, f"MMSA pickle ({fname})",
                                     defaults={"label_range": rng}, path_kind=f".pkl file ({fname})"))


_register_builtins()
