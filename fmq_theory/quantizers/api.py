"""``quantize``: one entry point for every method, bit width and granularity."""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers._base import QuantizedTensor, parse_granularity
from fmq_theory.quantizers._input import as_array
from fmq_theory.quantizers.registry import check_bits, levels_from_stored, method_spec


#: Largest ``max|w|`` fitted as it is, per storage dtype; above it the group is fitted at
#: ``w * 2**-e`` (see :func:`quantize`).  float64: :math:`2^{480}`, so that squares and
#: sums of up to :math:`2^{63}` squares stay finite; float32 input is fitted in float64
#: except ``uniform_minmax``'s float32 range, hence :math:`2^{124}`.
HUGE = {np.dtype(np.float64): 2.0**480, np.dtype(np.float32): 2.0**124}


def resolve_granularity(granularity, shape: tuple, method: str, options: dict) -> tuple:
    """The grouping actually used for a tensor of ``shape``.

    ``"channel"`` on a tensor with fewer than 2 dimensions means ``"tensor"`` (the
    paper's rule for biases and norms); a group size ``g`` larger than the tensor's
    number of weights ``n`` is capped at ``n`` (one group, no padding); ``normal_float``
    then maps the result to its blocks (see :mod:`fmq_theory.quantizers.normal_float`).
    """
    parsed = parse_granularity(granularity)
    if parsed == ("channel",) and len(shape) < 2:
        parsed = ("tensor",)
    n = int(np.prod(shape, dtype=np.int64))
    if parsed[0] == "group" and parsed[1] > n:
        parsed = ("group", n)
    return method_spec(method).granularity(parsed, options)


def _power_of_two_scale(top: float, dtype: np.dtype) -> int:
    """Exponent ``e`` such that values of max-abs ``top`` times ``2**-e`` have max-abs in
    [1/2, 1), or 0 when ``top`` is below :data:`HUGE` of ``dtype`` (the values are then
    fitted as they are)."""
    if top <= HUGE[dtype]:
        return 0
    return int(np.frexp(top)[1])


def _rescaled(stored: dict, exponent: int, method: str) -> dict:
    """``stored`` (fitted at ``w * 2**-exponent``) at the scale of ``w``; ``ValueError``
    naming the weights if a stored number overflows its dtype."""
    out = {}
    for key, value in stored.items():
        with np.errstate(over="ignore"):
            out[key] = np.ldexp(value, exponent).astype(value.dtype)
        if not np.all(np.isfinite(out[key])):
            raise ValueError(
                f"w: the weights span a range too wide for {method!r}'s stored {key!r} in "
                f"{value.dtype} (max|w| near the float limit); use more bits or another method"
            )
    return out


def _groups(flat: np.ndarray, shape: tuple, granularity: tuple):
    """Split the flattened tensor into full rows and an optional shorter last row."""
    n = flat.size
    if granularity == ("tensor",):
        return flat.reshape(1, n), None, n
    if granularity == ("channel",):
        return flat.reshape(shape[0], n // shape[0]), None, n // shape[0]
    size = granularity[1]
    n_full = n // size
    rest = flat[n_full * size :]
    return flat[: n_full * size].reshape(n_full, size), (rest.reshape(1, -1) if rest.size else None), size


def quantize(w, *, method: str, bits: int, granularity="tensor", **options) -> QuantizedTensor:
    """Quantize a numpy array or torch tensor with one of :data:`METHODS`.

    Parameters
    ----------
    w : numpy.ndarray or torch.Tensor
        float16, bfloat16, float32 or float64, any shape, finite, non-empty; any
        device and memory layout (non-contiguous input is copied).  float16/bfloat16
        are computed in float32, float64 in float64.
    method : str
        One of :data:`fmq_theory.quantizers.METHODS`.
    bits : int
        Index bits per weight, ``1..16`` (``1..12`` for ``lloyd_max``); each group gets
        at most ``2**bits`` levels.
    granularity : str or tuple
        ``"tensor"``, ``"channel"`` (one group per slice along axis 0; a tensor with
        fewer than 2 dimensions is quantized per tensor) or ``("group", g)`` / ``"group:g"``
        (runs of g consecutive weights of the row-major flattened tensor; the last group
        may be shorter and is fitted on its own weights only, its codes padded with 0;
        a ``g`` larger than the tensor is capped at its number of weights).
    **options
        Method options: ``exact_limit`` (``lloyd_max``), ``block_size``
        (``normal_float``), ``reference_means`` (``equal_mass``), ``lp_norm``, ``beta``,
        ``kappa``, ``iters`` (``half_quadratic``).

    Notes
    -----
    Weights near the float limit: a tensor with ``max|w|`` above :data:`HUGE` (of its
    storage dtype) is fitted at ``w * 2**-e``, with ``2**e`` the power of two just above
    ``max|w|``, and the stored side information is scaled back by ``2**e``.  Both
    scalings are exact except for weights that become subnormal (below
    ``max|w| * 2**-1022`` in float64), which move by at most that much, so the output is
    finite and within the method's usual error.  A stored number or a level that cannot be
    represented (e.g. ``uniform_minmax``'s step at ``bits=1`` for a range above the
    largest float, or ``half_quadratic``'s top level beyond a float32 ``max|w|`` near
    3.4e38) raises ``ValueError``.

    Returns
    -------
    QuantizedTensor
        ``dequantize()`` gives back the input's type, dtype and device.

    Raises
    ------
    TypeError
        Unsupported input type or dtype, non-integer ``bits``, unknown option.
    ValueError
        Unknown method or granularity, ``bits`` out of range, empty or non-finite input,
        weights whose stored side information or levels overflow (see Notes).

    Examples
    --------
    >>> import numpy as np
    >>> qt = quantize(np.array([0.0, 1.0, 2.0, 10.0]), method="equal_mass", bits=1)
    >>> qt.dequantize()
    array([0.5, 0.5, 6. , 6. ])
    """
    spec = method_spec(method)
    bits = check_bits(bits, method)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise TypeError(
            f"option {unknown[0]!r} is not accepted by method {method!r}; accepted: {sorted(spec.options) or 'none'}"
        )
    data = as_array(w)
    shape = tuple(data.values.shape)
    used = resolve_granularity(granularity, shape, method, options)
    fit_options = {k: v for k, v in options.items() if k in spec.options}
    exponent = _power_of_two_scale(data.absmax, data.values.dtype)
    values = np.ldexp(data.values, -exponent).astype(data.storage_dtype) if exponent else data.values
    full, rest, width = _groups(values.reshape(-1), shape, used)
    parts = [p for p in (full, rest) if p is not None and p.size]
    fitted = [spec.fit(p, bits=bits, storage_dtype=data.storage_dtype, **fit_options) for p in parts]
    if len(fitted) == 1 and fitted[0][1].shape[1] == width:
        stored, codes, info = fitted[0]
    else:  # full groups plus a shorter last group: pad its codes with 0
        stored = {k: np.concatenate([f[0][k] for f in fitted]) for k in spec.stored_keys}
        codes = np.concatenate([np.pad(f[1], ((0, 0), (0, width - f[1].shape[1]))) for f in fitted])
        info = {k: np.concatenate([f[2][k] for f in fitted]) for k in fitted[0][2]}
    if exponent:
        stored = _rescaled(stored, exponent, method)
    levels = levels_from_stored(method, bits, stored)
    if not np.all(np.isfinite(levels)):
        raise ValueError(
            f"w: the weights span a range too wide for {method!r}'s levels in {levels.dtype} (a level beyond "
            "max|w| overflows, max|w| near the float limit); use more bits or another method"
        )
    return QuantizedTensor(
        method=method,
        bits=bits,
        granularity=used,
        shape=shape,
        dtype=data.dtype,
        codes=codes,
        levels=levels,
        stored=stored,
        framework=data.framework,
        device=data.device,
        info=info,
    )
