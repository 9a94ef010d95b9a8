"""The datasets a process has prepared during one ``reproduce`` call, by data config.

Scope: one :class:`PreparedDataMemo` per process (:data:`PROCESS_DATA`). The process that runs
``reproduce`` and every worker process a launcher starts load and standardise each dataset config
once, however many runs they train on it; ``reproduce`` empties the memo of its own process when
it returns (a worker's goes with the worker). Nothing else keeps datasets between calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from robustfusion.runner.api import PreparedData, prepare_data

__all__ = ["PROCESS_DATA", "PreparedDataMemo", "data_key"]


def data_key(cfg: DictConfig) -> str:
    """The identity of ``cfg.data``: runs with equal keys train on the same prepared data."""
    return json.dumps(OmegaConf.to_container(cfg.data, resolve=True), sort_keys=True, default=str)


class PreparedDataMemo:
    """``cfg -> PreparedData``, each data config prepared once (by ``prepare``, default
    :func:`robustfusion.runner.api.prepare_data`) until :meth:`clear`."""

    def __init__(self, prepare: Callable[[DictConfig], PreparedData] = prepare_data) -> None:
        self._prepare = prepare
        self._data: dict[str, PreparedData] = {}

    def get(self, cfg: DictConfig) -> PreparedData:
        """The prepared data of ``cfg.data`` (prepared now if this memo has not seen it)."""
        key = data_key(cfg)
        if key not in self._data:
            self._data[key] = self._prepare(cfg)
        return self._data[key]

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        """Forget every prepared dataset."""
        self._data.clear()


#: This process's memo (see the module docstring for its scope).
PROCESS_DATA = PreparedDataMemo()
