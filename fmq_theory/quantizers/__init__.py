"""Weight quantizers: one entry point, ten methods, honest bit accounting.

``quantize(w, method=..., bits=..., granularity=...)`` returns a
:class:`QuantizedTensor` (codes, levels, the side information a checkpoint stores, and
``bits_per_weight`` counting it); ``quantize_state_dict`` applies it to a model the way
the paper does.  Method definitions: :mod:`.uniform`, :mod:`.half_quadratic`, :mod:`.piecewise`, :mod:`.log2`,
:mod:`.equal_mass`, :mod:`.lloyd_max`, :mod:`.normal_float`; what each stores:
:mod:`.registry`; hot loops: :mod:`._kernels` (numba, with numpy twins).
"""

from fmq_theory.quantizers._base import QuantizedTensor, format_granularity, parse_granularity
from fmq_theory.quantizers._kernels import serial_kernels
from fmq_theory.quantizers.api import quantize
from fmq_theory.quantizers.registry import METHODS, levels_from_stored
from fmq_theory.quantizers.state_dict import QuantizedStateDict, TensorReport, quantize_state_dict

__all__ = [
    "METHODS",
    "QuantizedStateDict",
    "QuantizedTensor",
    "TensorReport",
    "format_granularity",
    "levels_from_stored",
    "parse_granularity",
    "quantize",
    "quantize_state_dict",
    "serial_kernels",
]
