r"""Lloyd-Max: the exact MSE/W2-optimal K-level quantizer of the data (1-D k-means).

Cost limit: the dynamic programme takes time and memory proportional to :math:`K n`
(its split table), so a group is solved exactly only when :math:`n \le` ``exact_limit``
and :math:`K n \le` :data:`WORK_LIMIT` (:math:`2^{26}`, about 0.5 GB of tables and a
second or two; every group of up to :math:`2^{18}` weights at 8 bits); otherwise it
takes the histogram mode below with :math:`\min(\text{exact\_limit}, 2^{26}/K)` bins
(e.g. :math:`2^{14}` bins at 12 bits), and its excess over the optimum is bounded and
reported.

Exact mode (group length :math:`n \le` ``exact_limit``, default :math:`2^{18}`): the
distinct values of the group with their multiplicities are partitioned into
:math:`\min(K, \#\text{distinct})` contiguous cells minimising the within-cell sum of
squares, by dynamic programming on prefix sums with the divide-and-conquer
optimisation (the optimal split point is monotone), :math:`O(K N \log N)` for
:math:`N` distinct values (Wang & Song's Ckmeans.1d.dp; [1]_, [2]_).  Each cell is
replaced by its mean.  With :math:`\le K` distinct values the quantizer is exact.

Histogram mode (:math:`n >` ``exact_limit``): the group is binned into ``exact_limit``
equal-width bins; each non-empty bin becomes one point at its mean with its count as
weight, and the same DP finds the optimal quantizer that keeps bins whole.  Its MSE is
:math:`D_H = D^*(\tilde\mu) + W`, where :math:`\tilde\mu` is the law of the bin means
and :math:`W` the mean within-bin squared deviation (:math:`\le h^2/4` for bin width
:math:`h`).  Since :math:`D^*(\nu) = \min_{\pi\ K\text{-point}} W_2^2(\nu, \pi)` and
:math:`W_2^2(\tilde\mu, \mu) \le W`, the triangle inequality gives
:math:`\sqrt{D^*(\tilde\mu)} \le \sqrt{W} + \sqrt{D^*(\mu)}`, hence the excess over the
exact optimum :math:`D^*(\mu)` is at most

.. math:: D_H - D^*(\mu) \le 2\sqrt{W D_H} + 2W ,

which is computed and reported per group in ``info["excess_mse_bound"]`` (0 in exact
mode).  Stored: the ``codebook`` of K cell means per group (a row with fewer used
cells repeats its largest level).

References
----------
.. [1] H. Wang, M. Song, "Ckmeans.1d.dp: optimal k-means clustering in one dimension
   by dynamic programming", The R Journal 3(2), 2011.
.. [2] J. Max, "Quantizing for minimum distortion", IRE Trans. Inf. Theory 6, 1960.
"""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers import _kernels
from fmq_theory.quantizers._common import cell_means, code_dtype

#: Default largest group length solved exactly (also the number of histogram bins).
DEFAULT_EXACT_LIMIT = 1 << 18

#: Largest product of levels and points (group length, or histogram bins) solved by the DP.
WORK_LIMIT = 1 << 26


def _histogram_thresholds(row: np.ndarray, n_levels: int, n_bins: int):
    """Thresholds of the optimal bin-respecting quantizer of one row, and ``W``."""
    lo = float(row.min())
    hi = float(row.max())
    thresholds = np.full(n_levels - 1, np.inf)
    if hi == lo:
        return thresholds, 0.0
    width = (hi - lo) / n_bins
    counts, sum_u, sumsq_u, vmax = _kernels.histogram_stats(row, lo, width, n_bins)
    full = counts > 0
    c = counts[full].astype(np.float64)
    su = sum_u[full]
    means = lo + np.flatnonzero(full) * width + su / c
    within = float(np.sum(np.maximum(sumsq_u[full] - su * su / c, 0.0)))
    n_cells = min(n_levels, means.size)
    ends, _ = _kernels.lloyd_dp(means, c, n_cells)
    thresholds[: n_cells - 1] = vmax[full][ends[:-1] - 1]
    return thresholds, within / row.size


def fit_lloyd_max(x: np.ndarray, *, bits: int, storage_dtype: np.dtype, exact_limit: int = DEFAULT_EXACT_LIMIT):
    """Fit the optimal quantizer to every row of ``x``; returns ``(stored, codes, info)``."""
    if isinstance(exact_limit, bool) or not isinstance(exact_limit, (int, np.integer)) or exact_limit < 2:
        raise ValueError(f"exact_limit={exact_limit!r} must be an integer >= 2")
    n_levels = 2**bits
    r, m = x.shape
    within = np.zeros(r)
    sorted_x = np.sort(x, axis=1)
    histogram = m > exact_limit or m * n_levels > WORK_LIMIT
    if not histogram:
        thresholds = _kernels.lloyd_rows(sorted_x, n_levels)
    else:
        n_bins = int(min(exact_limit, WORK_LIMIT // n_levels))
        thresholds = np.empty((r, n_levels - 1))
        for i in range(r):
            thresholds[i], within[i] = _histogram_thresholds(x[i], n_levels, n_bins)
    stats = _kernels.sorted_cell_stats(sorted_x, thresholds)
    del sorted_x
    codes = np.empty(x.shape, dtype=code_dtype(bits))
    _kernels.assign_codes(x, thresholds, codes)
    codebook = cell_means(*stats).astype(storage_dtype)
    bound = np.zeros(r)
    if histogram:
        fitted = np.take_along_axis(codebook, codes.astype(np.intp), axis=1).astype(np.float64)
        mse = np.mean((x - fitted) ** 2, axis=1)
        bound = 2.0 * np.sqrt(within * mse) + 2.0 * within
    info = {"excess_mse_bound": bound, "histogram": np.full(r, histogram)}
    return {"codebook": codebook}, codes, info
