"""The per-process memo of prepared datasets (robustfusion.runner.data_memo)."""

from __future__ import annotations

from robustfusion.runner.config import load_config
from robustfusion.runner.data_memo import PreparedDataMemo, data_key


def test_each_data_config_is_prepared_once_until_cleared():
    calls = []

    def prepare(cfg):
        calls.append(data_key(cfg))
        return object()

    memo = PreparedDataMemo(prepare)
    a, a_other_seed = load_config(None, ["seed=0"]), load_config(None, ["seed=1", "train.epochs=2"])
    b = load_config(None, ["data.options.n_train=64"])
    first = memo.get(a)
    assert memo.get(a_other_seed) is first  # only cfg.data matters
    assert memo.get(b) is not first and len(memo) == 2 and len(calls) == 2
    memo.clear()
    assert len(memo) == 0 and memo.get(a) is not first and len(calls) == 3
