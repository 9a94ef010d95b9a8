"""Training-split standardisation: statistics, clipping, persistence."""

from __future__ import annotations

import pytest
import torch

from robustfusion.data import MultimodalDataset
from robustfusion.data.standardize import Standardizer


def _dataset(n=64, seed=0, scale=100.0):
    g = torch.Generator().manual_seed(seed)
    seq = torch.randn(n, 5, 3, generator=g) * scale + 7.0
    mask = torch.ones(n, 5, dtype=torch.bool)
    mask[:, 3:] = False
    seq[:, 3:] = 1e6  # padding junk must not enter the statistics
    vec = torch.randn(n, 4, generator=g)
    vec[:, 0] = 2.0  # constant column
    return MultimodalDataset({"audio": seq, "text": vec}, torch.randn(n), frame_masks={"audio": mask})


def test_statistics_come_from_observed_frames_only():
    ds = _dataset()
    st = Standardizer.fit(ds)
    obs = ds.features["audio"][:, :3].reshape(-1, 3)
    torch.testing.assert_close(st.mean["audio"], obs.mean(0))
    torch.testing.assert_close(st.std["audio"], obs.std(0, unbiased=False))
    out = st.transform(ds).features["audio"][:, :3].reshape(-1, 3)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-5, rtol=0)


def test_constant_columns_are_centred_and_outliers_clipped():
    train, test = _dataset(seed=0), _dataset(seed=1)
    test.features["text"][0, 0] = 1e9
    st = Standardizer.fit(train)
    assert st.std["text"][0] == 1.0
    out = st.transform(test).features["text"]
    assert out.abs().max() <= 10.0 and out[0, 0] == 10.0
    assert Standardizer.fit(train, clip=None).transform(test).features["text"][0, 0] > 1e8


def test_save_load_roundtrip_and_bad_file(tmp_path):
    st = Standardizer.fit(_dataset())
    st.save(tmp_path / "s.json")
    back = Standardizer.load(tmp_path / "s.json")
    ds = _dataset(seed=3)
    torch.testing.assert_close(back.transform(ds).features["audio"], st.transform(ds).features["audio"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a standardizer file"):
        Standardizer.load(tmp_path / "bad.json")


def test_wrong_feature_size_is_refused():
    st = Standardizer.fit(_dataset())
    other = MultimodalDataset({"text": torch.randn(4, 7)}, torch.randn(4))
    with pytest.raises(ValueError, match="expected feature size 4, found 7"):
        st.transform(other)
