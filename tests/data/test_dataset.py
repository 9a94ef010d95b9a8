"""MultimodalDataset: batching covers every sample once, seeded shuffling, subsets, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustfusion import MultimodalBatch
from robustfusion.data import MultimodalDataset

N, T = 23, 4


def _arrays(seed: int = 0):
    rng = np.random.default_rng(seed)
    features = {"text": rng.normal(size=(N, T, 3)), "audio": rng.normal(size=(N, 2)).astype(np.float32)}
    frame_masks = {"text": np.arange(T)[None, :] < rng.integers(1, T + 1, size=(N, 1))}
    targets = rng.normal(size=N)
    return features, frame_masks, targets


def _dataset(**kw) -> MultimodalDataset:
    features, frame_masks, targets = _arrays()
    kw = {"frame_masks": frame_masks, "name": "toy", **kw}
    return MultimodalDataset(features, kw.pop("targets", targets), **kw)


def test_description():
    ds = _dataset()
    assert len(ds) == N and ds.modalities == ("text", "audio")
    assert ds.modality_dims == {"text": 3, "audio": 2}
    assert ds.task == "regression" and ds.num_outputs == 1
    assert all(v.dtype == torch.float32 for v in ds.features.values())
    assert ds.ids == [str(i) for i in range(N)]
    assert "toy" in repr(ds) and "n=23" in repr(ds)


@pytest.mark.parametrize("batch_size", [1, 5, 23, 64])
def test_batches_cover_every_sample_exactly_once(batch_size):
    ds = _dataset(ids=[f"s{i}" for i in range(N)])
    for shuffle in (False, True):
        seen = []
        for batch in ds.batches(batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(0)):
            assert isinstance(batch, MultimodalBatch) and 1 <= batch.batch_size <= batch_size
            # rows of the batch are the dataset rows they claim to be
            rows = [int(torch.nonzero(ds.targets == t).flatten()[0]) for t in batch.targets]
            torch.testing.assert_close(batch.inputs["text"], ds.features["text"][rows])
            torch.testing.assert_close(batch.frame_mask("text"), ds.frame_masks["text"][rows])
            seen += rows
        assert sorted(seen) == list(range(N))
        if not shuffle:
            assert seen == list(range(N))
    drop = list(ds.batches(5, drop_last=True))
    assert [b.batch_size for b in drop] == [5, 5, 5, 5]


def test_shuffle_is_seeded():
    ds = _dataset()
    order = lambda seed: torch.cat([b.targets for b in ds.batches(4, True, torch.Generator().manual_seed(seed))])
    assert torch.equal(order(0), order(0))
    assert not torch.equal(order(0), order(1))
    assert not torch.equal(order(0), ds.targets)
    with pytest.raises(ValueError, match=r"batch_size.*>= 1.*found 0"):
        next(ds.batches(0))


def test_get_batch_full_batch_and_collate_are_valid_batches():
    present = np.ones((N, 2), dtype=bool)
    present[3, 1] = False
    ds = _dataset(present=present)
    full = ds.full_batch()
    assert full.batch_size == N and torch.equal(full.present, torch.as_tensor(present))
    b = ds.get_batch([3, 0], validate=True)
    assert b.present.tolist() == [[True, False], [True, True]]
    assert torch.equal(ds.collate([3, 0]).targets, b.targets)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=ds.collate)
    assert sum(batch.batch_size for batch in loader) == N


def test_subset_keeps_everything_aligned():
    present = np.random.default_rng(1).random((N, 2)) < 0.7
    ds = _dataset(present=present, ids=[f"s{i}" for i in range(N)], meta={"source": "toy"})
    idx = [7, 2, 19]
    sub = ds.subset(idx, name="toy-sub")
    assert len(sub) == 3 and sub.name == "toy-sub" and sub.meta == {"source": "toy"}
    assert sub.ids == ["s7", "s2", "s19"]
    for m in ds.modalities:
        assert torch.equal(sub.features[m], ds.features[m][idx])
    assert torch.equal(sub.targets, ds.targets[idx])
    assert torch.equal(sub.frame_masks["text"], ds.frame_masks["text"][idx])
    assert torch.equal(sub.present, ds.present[idx])
    assert sub.num_outputs == ds.num_outputs and sub.task == ds.task
    assert ds.subset(idx).name == "toy"


def test_classification_and_multilabel_targets():
    features, _, _ = _arrays()
    clf = MultimodalDataset(features, np.arange(N) % 4, task="classification")
    assert clf.num_outputs == 4 and clf.targets.dtype == torch.long
    assert MultimodalDataset(features, np.arange(N) % 4, task="classification", num_outputs=6).num_outputs == 6
    ml = MultimodalDataset(features, (np.arange(N * 3).reshape(N, 3) % 2).astype(np.float32), task="multilabel")
    assert ml.num_outputs == 3 and ml.targets.shape == (N, 3)


def test_bad_input_raises():
    features, frame_masks, targets = _arrays()
    with pytest.raises(ValueError, match="at least one modality"):
        MultimodalDataset({}, targets)
    with pytest.raises(ValueError, match=r"'audio': expected 23 samples, found shape \(22, 2\)"):
        MultimodalDataset(dict(features, audio=features["audio"][:-1]), targets)
    with pytest.raises(ValueError, match=r"'audio': expected \[N, D\] or \[N, T, D\], found shape \(23,\)"):
        MultimodalDataset(dict(features, audio=features["audio"][:, 0]), targets)
    with pytest.raises(ValueError, match=r"'text': expected \[N, D\] or \[N, T, D\], found shape \(23, 4, 3, 1\)"):
        MultimodalDataset(dict(features, text=features["text"][..., None]), targets)
    bad = features["audio"].copy()
    bad[4, 1] = -np.inf
    with pytest.raises(ValueError, match=r"'audio': expected finite features.*replace_nonfinite"):
        MultimodalDataset(dict(features, audio=bad), targets)
    with pytest.raises(ValueError, match=r"targets: expected 23 samples, found shape \(22,\)"):
        MultimodalDataset(features, targets[:-1])
    with pytest.raises(ValueError, match=r"targets: expected finite"):
        MultimodalDataset(features, np.where(np.arange(N) == 3, np.nan, targets))
    with pytest.raises(ValueError, match=r"task: expected one of .*found 'ranking'"):
        MultimodalDataset(features, targets, task="ranking")
    with pytest.raises(ValueError, match=r"classification targets: expected integer"):
        MultimodalDataset(features, np.full(N, 0.5), task="classification")
    with pytest.raises(ValueError, match=r"classes in \[0, 2\], found 3"):
        MultimodalDataset(features, np.arange(N) % 4, task="classification", num_outputs=3)
    with pytest.raises(ValueError, match=r"classes >= 0, found -1"):
        MultimodalDataset(features, np.arange(N) % 4 - 1, task="classification")
    with pytest.raises(ValueError, match=r"frame mask of 'text': expected shape \(23, 4\), found \(23, 3\)"):
        MultimodalDataset(features, targets, frame_masks={"text": frame_masks["text"][:, :3]})
    with pytest.raises(ValueError, match=r"frame mask of 'audio': modality is not a sequence"):
        MultimodalDataset(features, targets, frame_masks={"audio": np.ones((N, 2), dtype=bool)})
    with pytest.raises(ValueError, match=r"unknown modality 'vision'"):
        MultimodalDataset(features, targets, frame_masks={"vision": np.ones((N, 2), dtype=bool)})
    with pytest.raises(ValueError, match=r"present: expected shape \(23, 2\).*found \(23, 3\)"):
        MultimodalDataset(features, targets, present=np.ones((N, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"ids: expected 23 identifiers, found 2"):
        MultimodalDataset(features, targets, ids=["a", "b"])


def test_empty_sequences_and_zero_width_features_are_refused():
    """Issue 14: T = 0 or D = 0 gave a raw RNN/matmul traceback at the first forward."""
    with pytest.raises(ValueError, match=r"modality 'text': expected sequences of at least one frame \(T >= 1\)"):
        MultimodalDataset({"text": torch.randn(4, 0, 3)}, torch.randn(4))
    with pytest.raises(ValueError, match=r"modality 'text': expected a feature size >= 1, found shape \(4, 0\)"):
        MultimodalDataset({"text": torch.randn(4, 0)}, torch.randn(4))
    # float64 / float16 features are stored as float32
    assert MultimodalDataset({"text": torch.randn(4, 3).half()}, torch.randn(4)).features["text"].dtype == torch.float32


def test_label_names_and_oracle_are_declared_fields():
    import torch

    from robustfusion.data import MultimodalDataset

    ds = MultimodalDataset({"a": torch.zeros(4, 2)}, torch.tensor([0, 1, 2, 1]), task="classification",
                           meta={"label_names": ("x", "y", "z")})
    assert ds.label_names == ["x", "y", "z"] and ds.oracle is None  # real data has no oracle
    plain = MultimodalDataset({"a": torch.zeros(4, 2)}, torch.zeros(4))
    assert plain.label_names is None
