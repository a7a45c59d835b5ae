r"""The paper's logarithmic quantizer, bit for bit as its reference code.

For a group of :math:`n` weights let :math:`K = \min(2^b, n)`.  The positive weights get
:math:`K_+` levels :math:`2^{\mathrm{linspace}(\log_2 \min w_+,\, \log_2 \max w_+,\, K_+)}`
and the negative weights :math:`K_-` levels :math:`-2^{\mathrm{linspace}(\log_2 \min|w_-|,\,
\log_2 \max|w_-|,\, K_-)}`, with :math:`K_- = \lfloor K/2 \rfloor` always and
:math:`K_+ = \lfloor K/2 \rfloor` when negative weights occur, :math:`K_+ = K` when they do
not (so an all-positive group, e.g. a GroupNorm gain, uses all K levels; an all-negative
group uses :math:`\lfloor K/2 \rfloor`).  A sign whose weights are all equal gets that
value as its one level; a group of one weight is left as it is.  Every weight goes to the
nearest level of its own sign (distance :math:`|w - c|` in float64; a tie goes to the
level of smaller magnitude); a zero weight takes the smallest-magnitude level given to
any non-zero weight of its group (the first such weight in row-major order if a positive
and a negative level tie); an all-zero group stays 0.

The arithmetic is the reference's: :math:`\log_2 m` is ``numpy.log`` of the float32
(storage-dtype) scalar :math:`m`, divided by ``numpy.log(2.0)``; the levels are
``2.0 ** numpy.linspace(...)`` in float64, rounded once to the storage dtype (so the end
levels are within a few ulps of :math:`\min|w|` and :math:`\max|w|`, and the quantizer
is idempotent only to that precision).  Stored: the
``codebook`` of :math:`2^b` levels per group, sorted, unused slots repeating the largest
level.

References
----------
Quantized-FM/LowBit-HighFid @ 63d3f53, ``quantizerFunctions/PC-Log-ECQ-Quant.py``
(``quantize_tensor_log`` with its default base 2).
"""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers._common import code_dtype

_LN2 = np.log(2.0)


def _sign_levels(mag: np.ndarray, count: int) -> np.ndarray:
    """Float64 levels of one sign from its magnitudes ``mag`` (storage dtype), ascending."""
    lo, hi = mag.min(), mag.max()
    if lo == hi:
        return np.array([lo], dtype=np.float64)
    return 2.0 ** np.linspace(np.log(lo) / _LN2, np.log(hi) / _LN2, count)


def _nearest(mag: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the nearest of the ascending ``levels`` for every magnitude; a tie goes to
    the lower index (the smaller magnitude), as ``argmin`` over the distances does."""
    m = mag.astype(np.float64)
    upper = np.clip(np.searchsorted(levels, m, side="left"), 1, max(levels.size - 1, 1))
    lower = upper - 1
    if levels.size == 1:
        return np.zeros(m.size, dtype=np.int64)
    go_up = np.abs(m - levels[upper]) < np.abs(m - levels[lower])
    return np.where(go_up, upper, lower)


def _fit_row(row: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Codebook (float64, ``n_levels``, sorted) and codes of one group."""
    k = min(n_levels, row.size)
    pos, neg = row > 0, row < 0
    if k <= 1 or not (pos.any() or neg.any()):
        value = np.float64(row[0]) if k <= 1 else 0.0
        return np.full(n_levels, value), np.zeros(row.size, dtype=np.int64)
    neg_levels = _sign_levels(-row[neg], k // 2) if neg.any() else np.empty(0)
    pos_levels = _sign_levels(row[pos], k // 2 if neg.any() else k) if pos.any() else np.empty(0)
    used = np.concatenate([-neg_levels[::-1], pos_levels])
    codes = np.empty(row.size, dtype=np.int64)
    n_neg = neg_levels.size
    if neg.any():
        codes[neg] = n_neg - 1 - _nearest(-row[neg], neg_levels)
    if pos.any():
        codes[pos] = n_neg + _nearest(row[pos], pos_levels)
    zero = ~(pos | neg)
    if zero.any():
        nonzero = np.flatnonzero(~zero)
        closest = nonzero[np.argmin(np.abs(used.astype(row.dtype)[codes[nonzero]]))]
        codes[zero] = codes[closest]
    codebook = np.concatenate([used, np.full(n_levels - used.size, used[-1])])
    return codebook, codes


def fit_log2(x: np.ndarray, *, bits: int, storage_dtype: np.dtype):
    """Fit the logarithmic quantizer to every row of ``x``; returns ``(stored, codes, info)``."""
    n_levels = 2**bits
    codebook = np.empty((x.shape[0], n_levels), dtype=storage_dtype)
    codes = np.empty(x.shape, dtype=code_dtype(bits))
    for i, row in enumerate(x):
        levels, codes[i] = _fit_row(row, n_levels)
        codebook[i] = levels
    return {"codebook": codebook}, codes, {}
