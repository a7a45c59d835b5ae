"""Real MNIST / FashionMNIST cache (prepared by `make data` before the tests)."""

import json
import shutil

import numpy as np
import pytest

from fmq_theory.harness import data


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_prepared_splits(name):
    test = data.load(name, "test")
    assert test.images.shape == (10000, 1, 28, 28) and test.images.dtype == np.uint8
    assert sorted(np.unique(test.labels)) == list(range(10))
    # every class is present in the standard proportions (~1000 each, min 892 in MNIST)
    assert np.bincount(test.labels).min() >= 850
    assert data.load(name, "test", limit=7).images.shape[0] == 7
    assert test.sha256 == data.array_sha256(test.images, test.labels)


def test_corrupted_cache_is_an_error(tmp_path):
    src = data.data_dir()
    manifest = json.loads((src / "manifest.json").read_text())
    shutil.copy(src / "manifest.json", tmp_path / "manifest.json")
    with np.load(src / manifest["mnist"]["file"]) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["x_test"] = arrays["x_test"].copy()
    arrays["x_test"][0, 0, 0, 0] ^= 1
    np.savez(tmp_path / manifest["mnist"]["file"], **arrays)
    with pytest.raises(data.DataUnavailableError, match="checksum"):
        data.load("mnist", "test", root=tmp_path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="dataset"):
        data.prepare("cifar")
    with pytest.raises(ValueError, match="split"):
        data.load("mnist", "val")
    with pytest.raises(ValueError, match="limit"):
        data.load("mnist", "test", limit=0)
