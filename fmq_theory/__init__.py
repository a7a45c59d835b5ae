"""fmq_theory: optimal-transport weight quantization of flow-matching models, checked.

The package turns the claims of arXiv 2511.11418 ("Low-Bit, High-Fidelity: Optimal
Transport Quantization for Flow Matching") into exact computations (quantizers, 1-D
Wasserstein distances, distortion of weight laws, the FID bound chain) and measured
evidence (trained flow-matching models, quantized and sampled).
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("fmq_theory")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"
