"""The set-up the harness's experiments share: one trained model, its noise, and the real data.

Both experiments, the quantization sweep (:mod:`fmq_theory.harness.sweep`) and the bound
check (:mod:`fmq_theory.harness.bound_check`), measure a trained flow-matching UNet against
the real test split in the features of the project's classifier, sampling every model from
the same seeded noise and balanced labels.  :func:`load_context` builds that once:

1. the checkpoint folder (:func:`fmq_theory.harness.checkpoints.load_trained_model`), then the
   classifier (:class:`fmq_theory.harness.features.classifier.ClassifierFeatures`) - in this
   order, the order in which both experiments have always drawn the global random state;
2. the noise :func:`fmq_theory.flow.solvers.make_noise` ``(samples, seed)`` and, for a
   class-conditional model, :func:`fmq_theory.flow.solvers.balanced_labels`;
3. the real test images (uint8) and their classifier features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.checkpoints import LoadedModel, load_trained_model
from fmq_theory.harness.data import DATASETS, load
from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint
from fmq_theory.harness.models.unet import UNet, unet_adapter
from fmq_theory.harness.train import to_uint8

__all__ = ["Context", "load_context"]


@dataclass(frozen=True)
class Context:
    """What every cell of an experiment on one trained model uses (see the module notes).

    Attributes
    ----------
    dataset : str
    device : torch.device
    trained : LoadedModel
        The model (eval mode, on ``device``), its card and the SHA-256 of its weights.
    classifier : ClassifierFeatures
        The feature network of the FIDs (on ``device``).
    noise : torch.Tensor, shape (samples, C, H, W)
        Initial noise of every model's samples (CPU, float32).
    labels : torch.Tensor or None, shape (samples,)
        Balanced class labels of a class-conditional model (CPU), else ``None``.
    test_images : torch.Tensor, shape (N, C, H, W)
        The real test images, uint8 (CPU).
    real_features : numpy.ndarray, shape (N, d)
        Their classifier features, float32.
    """

    dataset: str
    device: torch.device
    trained: LoadedModel
    classifier: ClassifierFeatures
    noise: torch.Tensor
    labels: torch.Tensor | None
    test_images: torch.Tensor
    real_features: np.ndarray

    @property
    def model(self) -> UNet:
        """The full-precision model."""
        return self.trained.model

    def sample_features(self, model: torch.nn.Module, *, solver: str = "midpoint", steps: int = 10,
                        batch_size: int = 500) -> torch.Tensor:
        """The classifier features of ``model``'s samples from :attr:`noise` (and :attr:`labels`), float64.

        ``model`` shares the full-precision model's architecture (a quantized copy, or the model with
        other weights loaded); it is sampled with ``solver`` and ``steps``, clipped to [-1, 1] and
        rounded to uint8 as the real images are, so that the features compare with :attr:`real_features`.
        """
        with torch.no_grad():
            x = sample(model, self.noise, adapter=unet_adapter(model, self.labels, 0.0), solver=solver, steps=steps,
                       clip=(-1.0, 1.0), batch_size=batch_size).x
        return torch.as_tensor(self.classifier.features(to_uint8(x)), dtype=torch.float64)


def load_context(*, dataset: str, samples: int, seed: int, device: str | torch.device,
                 checkpoint: str | Path | None = None, classifier: str | Path | None = None,
                 real_images: int | None = None, feature_batch_size: int = 1000) -> Context:
    """Load the shared set-up of an experiment (see the module notes).

    Parameters
    ----------
    dataset : {"mnist", "fashion_mnist"}
    samples : int
        Noise draws (samples per model).
    seed : int
        Seed of the noise.
    device : str or torch.device
    checkpoint : path-like, optional
        Checkpoint folder or flow_matching checkpoint file; default ``checkpoints/<dataset>``.
    classifier : path-like, optional
        Classifier checkpoint; default :func:`~fmq_theory.harness.features.classifier.classifier_checkpoint`.
    real_images : int, optional
        Only the first ``real_images`` test images (default: the whole split).
    feature_batch_size : int
        Batch of the classifier on the real images.

    Returns
    -------
    Context
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    device = torch.device(device)
    trained = load_trained_model(Path(checkpoint) if checkpoint else Path("checkpoints") / dataset, device=device)
    features = ClassifierFeatures(Path(classifier) if classifier else classifier_checkpoint(dataset), device=device)
    cfg = trained.model.config
    noise = make_noise(samples, (cfg.in_channels, cfg.image_size, cfg.image_size), seed=seed)
    labels = balanced_labels(samples, cfg.num_classes) if cfg.num_classes else None
    test_images = torch.as_tensor(load(dataset, "test", limit=real_images).images)
    return Context(dataset=dataset, device=device, trained=trained, classifier=features, noise=noise, labels=labels,
                   test_images=test_images,
                   real_features=features.features(test_images, batch_size=feature_batch_size))
