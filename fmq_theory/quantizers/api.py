"""``quantize``: one entry point for every method, bit width and granularity."""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers._base import QuantizedTensor, parse_granularity
from fmq_theory.quantizers._input import as_array
from fmq_theory.quantizers.registry import check_bits, levels_from_stored, method_spec


def resolve_granularity(granularity, shape: tuple, method: str, options: dict) -> tuple:
    """The grouping actually used for a tensor of ``shape``.

    ``"channel"`` on a tensor with fewer than 2 dimensions means ``"tensor"`` (the
    paper's rule for biases and norms); ``normal_float`` then maps the result to its
    blocks (see :mod:`fmq_theory.quantizers.normal_float`).
    """
    parsed = parse_granularity(granularity)
    if parsed == ("channel",) and len(shape) < 2:
        parsed = ("tensor",)
    return method_spec(method).granularity(parsed, options)


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
        may be shorter and is fitted on its own weights only, its codes padded with 0).
    **options
        Method options: ``exact_limit`` (``lloyd_max``), ``block_size``
        (``normal_float``).

    Returns
    -------
    QuantizedTensor
        ``dequantize()`` gives back the input's type, dtype and device.

    Raises
    ------
    TypeError
        Unsupported input type or dtype, non-integer ``bits``, unknown option.
    ValueError
        Unknown method or granularity, ``bits`` out of range, empty or non-finite input.

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
    full, rest, width = _groups(data.values.reshape(-1), shape, used)
    parts = [p for p in (full, rest) if p is not None and p.size]
    fitted = [spec.fit(p, bits=bits, storage_dtype=data.storage_dtype, **fit_options) for p in parts]
    if len(fitted) == 1 and fitted[0][1].shape[1] == width:
        stored, codes, info = fitted[0]
    else:  # full groups plus a shorter last group: pad its codes with 0
        stored = {k: np.concatenate([f[0][k] for f in fitted]) for k in spec.stored_keys}
        codes = np.concatenate([np.pad(f[1], ((0, 0), (0, width - f[1].shape[1]))) for f in fitted])
        info = {k: np.concatenate([f[2][k] for f in fitted]) for k in fitted[0][2]}
    levels = levels_from_stored(method, bits, stored)
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
