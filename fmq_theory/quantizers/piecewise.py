r"""Piecewise quantizers: the paper's quantile "PWL" and Fang et al.'s PWLQ.

References
----------
.. [1] J. Fang, A. Shafiee, H. Abdel-Aziz, D. Thorsley, G. Georgiadis, J. Hassoun,
   "Post-training piecewise linear quantization for deep neural networks", ECCV 2020.
"""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers import _kernels
from fmq_theory.quantizers._common import code_dtype, nearest_codes, search_ratio


def codebook_levels(bits: int, stored) -> np.ndarray:
    """Levels stored verbatim: ``stored["codebook"]``, shape ``(r, 2**bits)``."""
    return np.asarray(stored["codebook"])


def fit_piecewise_quantile(x: np.ndarray, *, bits: int, storage_dtype: np.dtype):
    r"""The paper's "PWL": quantile breakpoints, cell midpoints, bit for bit as its code.

    Breakpoints :math:`q_k`, :math:`k = 0..K` (:math:`K = 2^b`, even when the group has
    fewer weights): the piecewise-linear interpolation of the sorted group at
    :math:`k/K`, computed as the reference code does,
    ``numpy.interp(linspace(0, 1, K + 1), linspace(0, 1, n), sorted_w)`` in float64
    (:math:`q_0 = \min`, :math:`q_K = \max`; the same numbers as numpy's default
    quantile up to the last bit).  Cell :math:`k` is left-closed, :math:`[q_k, q_{k+1})`,
    the last also holds :math:`q_K`: the reference's
    ``clip(searchsorted(q, w, side="right") - 1, 0, K - 1)``, so a weight on a
    breakpoint goes to the upper cell.  Cell :math:`k` is mapped to its midpoint
    :math:`(q_k + q_{k+1})/2` (float64, rounded once to the storage dtype).  Stored: the
    ``codebook`` of K midpoints per group.  Not idempotent (the quantiles of
    :math:`Q(w)` differ from those of :math:`w`).

    References
    ----------
    Quantized-FM/LowBit-HighFid @ 63d3f53, ``quantizerFunctions/PC-PWL-Quant.py``.
    """
    n_levels = 2**bits
    r, m = x.shape
    probs = np.linspace(0.0, 1.0, n_levels + 1)
    grid = np.linspace(0.0, 1.0, m)
    sorted_x = np.sort(x, axis=1)
    q = np.stack([np.interp(probs, grid, row) for row in sorted_x])
    codebook = (0.5 * (q[:, 1:] + q[:, :-1])).astype(storage_dtype)
    codes = np.empty(x.shape, dtype=code_dtype(bits))
    # left-closed cells: #{k >= 1 : q_k <= w} = (K - 1) - #{k : -q_k < -w}
    _kernels.assign_codes(-x, np.ascontiguousarray(-q[:, n_levels - 1 : 0 : -1]), codes)
    np.subtract(n_levels - 1, codes, out=codes)
    return {"codebook": codebook}, codes, {}


def pwlq_levels(bits: int, stored) -> np.ndarray:
    r"""PWLQ levels from the stored ``absmax`` :math:`m` and ``breakpoint`` :math:`p`.

    For :math:`K = 2^b \ge 4`: :math:`K/2` centre levels spanning :math:`[-p, p]`
    uniformly (end points included) and :math:`K/4` tail levels per side at
    :math:`\pm(p + (m - p) i / (K/4))`, :math:`i = 1..K/4`.  For :math:`K = 2`:
    :math:`\{-p, p\}`.  Shape ``(r, K)``, sorted, in the stored dtype.
    """
    m = np.asarray(stored["absmax"])
    dtype = m.dtype
    m = m.astype(np.float64)[:, None]
    p = np.asarray(stored["breakpoint"]).astype(np.float64)[:, None]
    n_levels = 2**bits
    if n_levels == 2:
        return np.concatenate([-p, p], axis=1).astype(dtype)
    n_centre, n_tail = n_levels // 2, n_levels // 4
    fraction = np.arange(n_centre, dtype=np.float64) / (n_centre - 1)
    with np.errstate(over="ignore", invalid="ignore"):
        centre = -p + (2.0 * p) * fraction
    centre = np.where(np.isfinite(centre), centre, p * (2.0 * fraction - 1.0))  # 2p overflows
    tail = p + (m - p) * (np.arange(1, n_tail + 1, dtype=np.float64) / n_tail)
    return np.concatenate([-tail[:, ::-1], centre, tail], axis=1).astype(dtype)


def fit_pwlq(x: np.ndarray, *, bits: int, storage_dtype: np.dtype):
    r"""Piecewise linear quantization (Fang et al. 2020), this package's b-bit variant.

    Symmetric range :math:`[-m, m]`, :math:`m = \max|w|`, split at a breakpoint
    :math:`p` into a dense centre :math:`[-p, p]` and sparse tails: half of the
    :math:`K = 2^b` levels are uniform on the centre, a quarter uniform on each tail
    (:func:`pwlq_levels`); every weight goes to its nearest level.  :math:`p/m` minimises
    the group's MSE (64-point grid + golden section,
    :func:`fmq_theory.quantizers._common.search_ratio`).  Bit accounting: one b-bit
    code per weight (the region is implied by the code, unlike the paper's extra
    region bit) plus the stored ``absmax`` and ``breakpoint`` per group.
    """
    absmax = np.abs(x).max(axis=1).astype(np.float64)

    def levels_at(ratio):
        return pwlq_levels(bits, {"absmax": absmax, "breakpoint": ratio * absmax})

    ratio = search_ratio(lambda r: _kernels.nearest_level_mse(x, levels_at(r)), x.shape[0])
    m = absmax.astype(storage_dtype)
    p = np.minimum((ratio * absmax).astype(storage_dtype), m)
    stored = {"absmax": m, "breakpoint": p}
    codes = nearest_codes(x, pwlq_levels(bits, stored), bits)
    return stored, codes, {}
