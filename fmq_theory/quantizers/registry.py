"""The table of quantization methods and the reconstruction of levels from storage.

Every method is a :class:`MethodSpec`: a ``fit`` function that maps a batch of groups
(``(r, m)`` array, one group per row) to ``(stored, codes, info)``, a ``levels``
function that rebuilds the ``(r, 2**bits)`` reconstruction levels from ``stored``
alone, the names of the stored arrays and the method's options with their defaults.

What a checkpoint stores per group (besides the b-bit codes), at the storage dtype
(float32 for float16/bfloat16/float32 input, float64 for float64 input); each array has
shape ``(n_groups,)``, or ``(n_groups, K)`` where marked (K):

================== ============================== =========================
method             stored arrays                  size per group
================== ============================== =========================
uniform_minmax     ``scale``, ``offset``          2 floats
uniform_absmax     ``scale``                      1 float
uniform_mse        ``scale``, ``offset``          2 floats
half_quadratic     ``scale``, ``offset``          2 floats
piecewise_quantile ``codebook`` (K)               K floats
pwlq               ``absmax``, ``breakpoint``     2 floats
log2               ``codebook`` (K)               K floats
equal_mass         ``codebook`` (K)               K floats
lloyd_max          ``codebook`` (K)               K floats
normal_float       ``absmax``                     1 float (codebook is a function of b)
================== ============================== =========================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from fmq_theory.quantizers import equal_mass, half_quadratic, lloyd_max, log2, normal_float, piecewise, uniform
from fmq_theory.vocab import LAW_BITS, METHODS, QUANTIZER_BITS

#: Smallest and largest supported bit widths (codes are uint8 up to 8 bits, uint16 above).
MIN_BITS, MAX_BITS = QUANTIZER_BITS


def _same_granularity(granularity: tuple, options: dict) -> tuple:
    return granularity


@dataclass(frozen=True)
class MethodSpec:
    """How one method fits, what it stores and how its levels are rebuilt.

    Attributes
    ----------
    fit : callable
        ``fit(x, *, bits, storage_dtype, **options) -> (stored, codes, info)`` for
        ``x`` of shape ``(r, m)``; ``codes`` has shape ``(r, m)``, every stored array
        and every ``info`` array has ``r`` as its first axis.
    levels : callable
        ``levels(bits, stored) -> (r, 2**bits)`` array in the stored dtype.
    stored_keys : tuple of str
        Names of the arrays in ``stored``.
    options : mapping
        Option names accepted by ``fit`` and their defaults.
    max_bits : int
        Largest supported bit width.
    granularity : callable
        ``granularity(parsed, options) -> parsed``: the grouping actually used.
    """

    fit: Callable
    levels: Callable
    stored_keys: tuple
    options: Mapping = field(default_factory=dict)
    max_bits: int = MAX_BITS
    granularity: Callable = _same_granularity


SPECS: Mapping[str, MethodSpec] = {
    "uniform_minmax": MethodSpec(uniform.fit_uniform_minmax, uniform.affine_levels, ("scale", "offset")),
    "uniform_absmax": MethodSpec(uniform.fit_uniform_absmax, uniform.absmax_levels, ("scale",)),
    "uniform_mse": MethodSpec(uniform.fit_uniform_mse, uniform.affine_levels, ("scale", "offset")),
    "half_quadratic": MethodSpec(
        half_quadratic.fit_half_quadratic,
        uniform.affine_levels,
        ("scale", "offset"),
        options=half_quadratic.DEFAULT_OPTIONS,
    ),
    "piecewise_quantile": MethodSpec(
        piecewise.fit_piecewise_quantile, piecewise.codebook_levels, ("codebook",)
    ),
    "pwlq": MethodSpec(piecewise.fit_pwlq, piecewise.pwlq_levels, ("absmax", "breakpoint")),
    "log2": MethodSpec(log2.fit_log2, piecewise.codebook_levels, ("codebook",)),
    "equal_mass": MethodSpec(
        equal_mass.fit_equal_mass, piecewise.codebook_levels, ("codebook",), options={"reference_means": False}
    ),
    "lloyd_max": MethodSpec(
        lloyd_max.fit_lloyd_max,
        piecewise.codebook_levels,
        ("codebook",),
        options={"exact_limit": lloyd_max.DEFAULT_EXACT_LIMIT},
        max_bits=LAW_BITS[1],
    ),
    "normal_float": MethodSpec(
        normal_float.fit_normal_float,
        normal_float.nf_levels,
        ("absmax",),
        options={"block_size": normal_float.DEFAULT_BLOCK_SIZE},
        granularity=normal_float.nf_granularity,
    ),
}



def method_spec(method) -> MethodSpec:
    """The :class:`MethodSpec` of ``method``; ``ValueError`` naming it if unknown."""
    if not isinstance(method, str) or method not in SPECS:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")
    return SPECS[method]


def check_bits(bits, method: str) -> int:
    """Validate ``bits`` for ``method``; return it as an int."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits={bits!r} must be an integer")
    top = method_spec(method).max_bits
    if not MIN_BITS <= bits <= top:
        raise ValueError(f"bits={bits!r} is out of range for method {method!r}: must be in {MIN_BITS}..{top}")
    return int(bits)


def levels_from_stored(method: str, bits: int, stored: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rebuild the reconstruction levels of every group from the stored side information.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    bits : int
        Bit width.
    stored : mapping of str to numpy.ndarray
        Exactly the arrays named in the table of this module's docstring.

    Returns
    -------
    numpy.ndarray, shape (n_groups, 2**bits)
        Sorted levels of every group, in the stored dtype; equal bit for bit to the
        ``levels`` of the :class:`~fmq_theory.quantizers.QuantizedTensor` that produced
        ``stored``.
    """
    spec = method_spec(method)
    bits = check_bits(bits, method)
    missing = [k for k in spec.stored_keys if k not in stored]
    extra = [k for k in stored if k not in spec.stored_keys]
    if missing or extra:
        raise ValueError(
            f"stored has keys {sorted(stored)}; method {method!r} needs exactly {list(spec.stored_keys)}"
        )
    return spec.levels(bits, {k: np.asarray(v) for k, v in stored.items()})
