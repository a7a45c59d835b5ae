"""Published reference numbers, kept as data with their provenance.

The book labels every such number with whose it is, and the tests compare the book's pages
and the library against them.

* :data:`MAX_1960` -- J. Max, "Quantizing for minimum distortion", IRE Trans. Inf. Theory
  6(1):7-12, 1960, Table II: the mean squared error of the optimal (Lloyd-Max) quantizer of a
  unit Gaussian with ``K = 2**b`` levels, printed to four significant digits.
* :data:`PAPER_FID_FP` -- arXiv 2511.11418 (Varam et al., 2025), its reference code's
  full-precision FIDs: 50k samples, torchmetrics ``FrechetInceptionDistance(normalize=True)``
  (Inception features), real statistics from the training loader.
* :data:`PAPER_SETUP` -- the same reference code's MNIST set-up: training length and batch,
  sampler, FID protocol (its ``README.md`` and ``args/MNIST-args.json``).

Examples
--------
>>> MAX_1960[2]
0.1175
>>> PAPER_FID_FP["cifar10"]
3.204
"""

from __future__ import annotations

#: Max (1960), Table II: Lloyd-Max MSE of a unit Gaussian by bits b (K = 2**b levels).
MAX_1960 = {1: 0.3634, 2: 0.1175, 3: 0.03454, 4: 0.009497}
#: How :data:`MAX_1960` was obtained, for labels.
MAX_1960_SOURCE = "Max (1960), Table II, unit Gaussian, printed to 4 significant digits"

#: The paper's full-precision FID by data set (see the module docstring for the protocol).
PAPER_FID_FP = {"mnist": 0.671, "fashion_mnist": 2.891, "cifar10": 3.204, "celeba": 4.318,
                "imagenet64": 14.437}
#: How :data:`PAPER_FID_FP` was obtained, for labels.
PAPER_FID_FP_PROTOCOL = "Inception-feature FID, 50k samples, real statistics from the training set"

#: The paper's MNIST / FashionMNIST set-up: epochs and batch of the training, the ODE solver
#: and its step, and the FID protocol (samples, real statistics, image conversion).
PAPER_SETUP = {"epochs": 500, "batch_size": 32, "solver": "midpoint", "step_size": 0.01, "fid_samples": 50_000,
               "fid_real": "training set", "fid_features": "Inception",
               "fid_uint8": "torchmetrics FrechetInceptionDistance(normalize=True): (x * 255).byte(), truncation"}
#: Where :data:`PAPER_SETUP` comes from, for labels.
PAPER_SETUP_SOURCE = ("Quantized-FM/LowBit-HighFid @ 63d3f53: README.md (500 epochs, FID @50,000 samples), "
                      "args/MNIST-args.json (batch_size 32, ode_method midpoint, step_size 0.01, fid_samples 50000), "
                      "its FID code (torchmetrics, normalize=True, real images from the training loader)")

__all__ = ["MAX_1960", "MAX_1960_SOURCE", "PAPER_FID_FP", "PAPER_FID_FP_PROTOCOL", "PAPER_SETUP", "PAPER_SETUP_SOURCE"]
