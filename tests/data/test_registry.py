"""`load_dataset` / `list_datasets`: names, path resolution, env vars, options."""

import pytest

from robustfusion.data import (
    DATASETS,
    DatasetInfo,
    dataset_env_var,
    list_datasets,
    load_dataset,
    load_synthetic,
    register_dataset,
)

REAL = ["npz", "mosi_utterance", "iemocap_utterance", "mosi_mult", "mosei_mult", "iemocap_mult", "mosi_mmsa", "mosei_mmsa",
        "sims_mmsa"]


def test_names():
    assert set(list_datasets()) == {"synthetic", *REAL}


@pytest.mark.parametrize("name", REAL)
def test_missing_path_says_how_to_give_it(name, monkeypatch):
    var = dataset_env_var(name)
    monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("ROBUSTFUSION_MOSI_DIR", raising=False)
    with pytest.raises(ValueError, match=rf"data\.path=.*{var}"):
        load_dataset(name)


def test_env_var_supplies_path(tmp_path, rng, build, monkeypatch):
    path = build.pickle(tmp_path / "mosi_data.pkl", build.mult(rng, frames=(5, 5, 5)))
    monkeypatch.setenv("ROBUSTFUSION_DATA_MOSI_MULT", str(path))
    data = load_dataset("mosi_mult")
    assert set(data) == {"train", "valid", "test"} and all(d.name == "mosi_mult" for d in data.values())
    assert dataset_env_var("mosi_mult") == "ROBUSTFUSION_DATA_MOSI_MULT"


def test_unknown_name_and_option(tmp_path, rng, build):
    with pytest.raises(ValueError, match=r"unknown dataset 'mosi'.*synthetic"):
        load_dataset("mosi")
    path = build.pickle(tmp_path / "m.pkl", build.mult(rng, frames=(5, 5, 5)))
    with pytest.raises(ValueError, match=r"unknown options \['nonfinte'\].*nonfinite"):
        load_dataset("mosi_mult", path, nonfinte="zero")
    with pytest.raises(ValueError, match=r"unknown options \['n_trian'\].*n_train"):
        load_dataset("synthetic", n_trian=10)
    with pytest.raises(ValueError, match=r"takes no path"):
        load_dataset("synthetic", "/some/file")


def test_synthetic_through_registry():
    data = load_dataset("synthetic", n_train=40, n_valid=20, n_test=30, seed=1, target="emotion")
    assert {k: len(v) for k, v in data.items()} == {"train": 40, "valid": 20, "test": 30}
    ds = data["test"]
    assert ds.name == "synthetic" and ds.task == "classification" and ds.num_outputs == 6
    oracle = ds.meta["oracle"]
    assert oracle.predict(ds.full_batch()).shape == (30, 6)
    assert ds.meta["generator"].seed == 1


def test_register_dataset_adds_a_registry_entry_and_refuses_a_taken_name():
    info = DatasetInfo("tiny_synthetic", load_synthetic, False, "a test's own dataset",
                       defaults={"n_train": 12, "n_valid": 6, "n_test": 6})
    try:
        assert register_dataset(info) is info
        assert DATASETS.get("tiny_synthetic") is info and "tiny_synthetic" in list_datasets()
        assert {k: len(v) for k, v in load_dataset("tiny_synthetic").items()} == {"train": 12, "valid": 6, "test": 6}
        with pytest.raises(ValueError, match="dataset 'synthetic' is already registered"):
            register_dataset(DatasetInfo("synthetic", load_synthetic, False, "another"))
    finally:
        DATASETS.remove("tiny_synthetic")
    assert "tiny_synthetic" not in list_datasets()
