"""Classifier features for FID: a small CNN trained on the flow models' own data.

A small CNN (:class:`SmallCNN`: three 3x3 conv + max-pool stages, a 128-unit penultimate
layer, 10 logits) is trained by :func:`train_classifier` on the same data as the flow models;
FID in its penultimate (post-ReLU) 128-d features is the usual honest alternative to
Inception for MNIST-like data [1]_, and ``predict`` gives class labels for mode-switch rates.
Checkpoints are safetensors next to a JSON model card (:class:`ClassifierCard`: config, data
checksums, steps, test accuracy), whose SHA-256 of the weights :class:`ClassifierFeatures`
checks on load.  :func:`real_data_fid` is the noise floor: the FID between two real sets.

Examples
--------
>>> import torch
>>> net = SmallCNN()
>>> x = torch.zeros(2, 1, 28, 28)
>>> net.features(x).shape, net(x).shape
(torch.Size([2, 128]), torch.Size([2, 10]))

References
----------
.. [1] M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler and S. Hochreiter, "GANs trained
   by a two time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017
   (FID); the feature network is a free choice of the metric.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from fmq_theory._util import check_positive_int, file_sha256, repo_root, write_atomic
from fmq_theory.io.float_checkpoint import load_state_dict_file
from fmq_theory.harness.data import DATASETS, load
from fmq_theory.harness.features._common import check_uint8_images, full_fp32, with_progress
from fmq_theory.harness.metrics import bootstrap_fid

__all__ = [
    "CLASSIFIER_FEATURE_DIM",
    "ClassifierCard",
    "ClassifierFeatures",
    "SmallCNN",
    "TrainedClassifier",
    "classifier_checkpoint",
    "real_data_fid",
    "save_classifier",
    "train_classifier",
]

CLASSIFIER_FEATURE_DIM = 128


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
    epochs = check_positive_int(epochs, name="epochs")
    batch_size = check_positive_int(batch_size, name="batch_size")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if not (isinstance(lr, float) and lr > 0):
        raise ValueError(f"lr must be a positive float, got {lr!r}")
    device = torch.device(device)
    limit = check_positive_int(limit, name="limit", allow_none=True)
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
    with full_fp32():
        _fit(net, opt, x_train, y_train, order_gen=gen, batch_size=batch_size, total=total,
             device=device, bar=with_progress(range(total), progress, f"classifier {dataset}"))
    wall = time.perf_counter() - t0
    with full_fp32():
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


def classifier_checkpoint(dataset: str) -> Path:
    """Path of the committed classifier checkpoint for ``dataset``
    (``checkpoints/classifier_<dataset>.safetensors`` at the repository root)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    return repo_root() / "checkpoints" / f"classifier_{dataset}.safetensors"


def _card_path(checkpoint: Path) -> Path:
    return checkpoint.with_suffix(".json")


def save_classifier(trained: TrainedClassifier, path) -> Path:
    """Write the weights (safetensors) and the card (same stem, ``.json``), each atomically."""
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
        path = Path(path)
        card_path = _card_path(path)
        if not path.is_file() or not card_path.is_file():
            raise FileNotFoundError(
                f"classifier checkpoint {path} or its card {card_path} is missing; train one with "
                f"`fmq features train-classifier --dataset <name>`")
        self.card = json.loads(card_path.read_text())
        digest = file_sha256(path)
        if digest != self.card["checkpoint_sha256"]:
            raise ValueError(f"{path} has sha256 {digest}, its card says {self.card['checkpoint_sha256']}")
        self.device = torch.device(device)
        self.net = SmallCNN(**self.card["config"])
        self.net.load_state_dict(load_state_dict_file(path, argument="classifier checkpoint"))
        self.net.to(self.device).eval()
        self.name = f"classifier-{self.card['dataset']}-cnn(acc={self.card['test_accuracy']:.4f})"

    def _run(self, images, batch_size: int, fn) -> np.ndarray:
        imgs = check_uint8_images(images)
        batch_size = check_positive_int(batch_size, name="batch_size")
        cfg = self.card["config"]
        expected = (cfg["in_channels"], cfg["image_size"], cfg["image_size"])
        if tuple(imgs.shape[1:]) != expected:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, expected))}), got {tuple(imgs.shape)}")
        outs = []
        with torch.inference_mode(), full_fp32():
            for start in range(0, imgs.shape[0], batch_size):
                outs.append(fn(_to_input(imgs[start : start + batch_size], self.device)).cpu())
        return torch.cat(outs).numpy()

    def features(self, images, *, batch_size: int = 1000) -> np.ndarray:
        """Penultimate features, shape (N, 128), float32, of uint8 images (N, 1, 28, 28)."""
        return self._run(images, batch_size, self.net.features)

    def predict(self, images, *, batch_size: int = 1000) -> np.ndarray:
        """Predicted class labels, shape (N,), int64."""
        return self._run(images, batch_size, lambda x: self.net(x).argmax(dim=1))


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
    test = load(dataset, "test")
    train = load(dataset, "train")
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= min(len(test.images), len(train.images)):
        raise ValueError(f"n must be an int in [2, {min(len(test.images), len(train.images))}], got {n!r}")
    idx = np.sort(np.random.default_rng(seed).choice(len(train.images), n, replace=False))
    feats_test = torch.from_numpy(extractor.features(test.images[:n]))
    feats_train = torch.from_numpy(extractor.features(train.images[idx]))
    device = getattr(extractor, "device", torch.device("cpu"))
    return bootstrap_fid(feats_test.to(device), feats_train.to(device), n_boot=n_boot, seed=seed)
