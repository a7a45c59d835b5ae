r"""The paper's OT quantizer: equal-mass cells of the sorted data, each at its mean.

Definition (paper, reference code): sort the :math:`n` weights of a group, split the
sorted values into :math:`K = 2^b` consecutive chunks with the sizes of
``numpy.array_split`` (the first :math:`n \bmod K` chunks one longer), replace every
weight by the mean of its chunk.  A group with :math:`n < K` weights is left as it is
(each weight is its own chunk; the codebook holds the sorted values, padded by repeating
the largest).  This is the conditional-mean quantizer of the empirical law on
equal-mass quantile cells; among all K-point measures with the chunk masses it is the
W2-closest to the data.

Tie rule (so that :math:`Q` is a function of the value, order preserving and
idempotent): with :math:`t_k` the largest value of chunk :math:`k` in sorted order,
cell :math:`k` is :math:`(t_{k-1}, t_k]`: a run of equal values that straddles a chunk
boundary goes entirely to the lower cell, and the levels are the means of the cells so
formed.  A cell emptied that way repeats the level below it (unused).  Without ties the
cells are exactly the chunks, so on tie-free input this equals the paper's definition to
floating-point rounding (means are accumulated in float64 and rounded once to the
storage dtype).

Speed: the rows are sorted block by block on every core (float32 rows of up to 65,536
weights by a radix sort of their monotone 32-bit keys, about twice as fast as numpy's
vectorised sort on rows of 4,096), and while a block is still in the cache its
chunk-end values :math:`t_k`, its cell sums (contiguous ranges of the sorted rows) and
the cell of every weight in the original order (a vectorised counting pass) are read
off (:func:`fmq_theory.quantizers._kernels.chunk_stats_rows`).  No
argsort, no per-row Python loop, no sorted copy of the whole tensor, one read of the
input; the sort is most of the time (``make bench`` prints the ratio).  A
single float32 group of at least :data:`SELECT_MIN` weights is not sorted at all: its
:math:`t_k` are exact order statistics found by radix selection, and one fused pass
assigns the codes and sums the cells (:func:`_fit_by_selection`; on 1e8 float32 about
0.5 s in all against 0.6-1.1 s for ``numpy.sort`` alone, while ``numpy.partition`` at
the K-1 chunk ends is 4-17x slower than the sort).  Stored: the ``codebook`` of K
means per group.
"""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers import _kernels
from fmq_theory.quantizers._common import cell_means, code_dtype


def chunk_ends(n: int, n_chunks: int) -> np.ndarray:
    """Index of the last element of every ``numpy.array_split(range(n), n_chunks)`` chunk.

    Returns
    -------
    numpy.ndarray, shape (n_chunks,), int64
    """
    base, extra = divmod(n, n_chunks)
    sizes = np.full(n_chunks, base, dtype=np.int64)
    sizes[:extra] += 1
    return np.cumsum(sizes) - 1


#: Shortest float32 group quantized by selection instead of a sort (see :func:`fit_equal_mass`).
SELECT_MIN = 1 << 22


def _fit_by_selection(x: np.ndarray, ends: np.ndarray, codes: np.ndarray):
    """Cell statistics ``(refs, shifted, counts)`` (shape ``(1, K)`` each) of one long
    float32 group without sorting it, writing its codes; ``None`` when selection does not
    pay (data concentrated in a few radix bins; the caller sorts).

    The chunk-end values :math:`t_k` and the maximum are exact order statistics found by
    radix selection (:func:`fmq_theory.quantizers._kernels.order_statistics`); one pass
    (:func:`fmq_theory.quantizers._kernels.assign_cell_sums`) assigns the codes by the
    same "left" rule and sums every cell relative to its largest value (:math:`t_k`, the
    maximum for the last cell), so a cell of equal values again has mean exactly that value.
    """
    values = _kernels.order_statistics(x[0], ends)
    if values is None:
        return None
    refs = values.astype(np.float64)[None, :]
    shifted, counts = _kernels.assign_cell_sums(x, values[None, :-1], refs, codes)
    return refs, shifted, counts


def _reference_means(sorted_x: np.ndarray, thresholds: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """``codebook`` with every non-empty cell's level replaced by ``numpy.mean`` of the
    cell's sorted values in their own dtype (the reference code's ``chunk.mean()``:
    numpy's pairwise summation); empty cells repeat the level below as before."""
    out = codebook.copy()
    for i, row in enumerate(sorted_x):
        bounds = np.concatenate([[0], np.searchsorted(row, thresholds[i], side="right"), [row.size]])
        bounds = np.minimum(bounds, row.size)
        last = None
        for k in range(thresholds.shape[1] + 1):
            a, b = bounds[k], bounds[k + 1]
            if b > a:
                last = row[a:b].mean()
                out[i, k] = last
            elif last is not None:
                out[i, k] = last
    return out


def fit_equal_mass(x: np.ndarray, *, bits: int, storage_dtype: np.dtype, reference_means: bool = False):
    """Fit the equal-mass quantizer to every row of ``x``; returns ``(stored, codes, info)``.

    ``reference_means=True`` computes every level as the paper's reference code does,
    ``numpy.mean`` of the cell's sorted weights in the storage dtype (float32 pairwise
    summation, up to a few ulp from the exact mean) instead of the mean accumulated in
    float64 and rounded once; the cells are the same.  It sorts every group (no
    selection path) and loops over the cells in Python.
    """
    if not isinstance(reference_means, (bool, np.bool_)):
        raise TypeError(f"reference_means={reference_means!r} must be a bool")
    n_levels = 2**bits
    r, m = x.shape
    n_chunks = min(n_levels, m)
    ends = chunk_ends(m, n_chunks)
    codes = np.empty(x.shape, dtype=code_dtype(bits))
    stats = None
    if r == 1 and x.dtype == np.float32 and m >= SELECT_MIN and n_chunks == n_levels and not reference_means:
        stats = _fit_by_selection(x, ends, codes)
    if stats is None and n_chunks == n_levels and not reference_means:
        _, *stats = _kernels.chunk_stats_rows(x, ends, codes)
    if stats is None:
        sorted_x = np.sort(x, axis=1)
        thresholds = np.full((r, n_levels - 1), np.inf)
        thresholds[:, : n_chunks - 1] = sorted_x[:, ends[:-1]]
        stats = _kernels.sorted_cell_stats(sorted_x, thresholds)
        _kernels.assign_codes(x, thresholds, codes)
    codebook = cell_means(*stats).astype(storage_dtype)
    if reference_means:
        codebook = _reference_means(sorted_x, thresholds, codebook)
    return {"codebook": codebook}, codes, {}
