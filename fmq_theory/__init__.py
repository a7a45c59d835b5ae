"""fmq_theory: optimal-transport weight quantization of flow-matching models, checked.

The package turns the claims of arXiv 2511.11418 ("Low-Bit, High-Fidelity: Optimal
Transport Quantization for Flow Matching") into exact computations (quantizers, 1-D
Wasserstein distances, distortion of weight laws, the FID bound chain) and measured
evidence (trained flow-matching models, quantized and sampled).
"""

import importlib
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("fmq_theory")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"

# Public names resolved lazily so that ``import fmq_theory`` stays light (no torch, no numba
# compilation) and the law-level theory can be used without the quantizer stack.
_LAZY = {
    "quantize": "fmq_theory.quantizers",
    "quantize_state_dict": "fmq_theory.quantizers",
    "QuantizedTensor": "fmq_theory.quantizers",
    "METHODS": "fmq_theory.vocab",
    "save_quantized": "fmq_theory.io.quantized_file",
    "load_quantized": "fmq_theory.io.quantized_file",
    "plan_quantization": "fmq_theory.plan",
    "load_quantized_model": "fmq_theory.plan",
    "QuantizationPlan": "fmq_theory.plan",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fmq_theory' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
