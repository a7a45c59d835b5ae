r"""Sensitivity-weighted exact 1-D k-means: the codebook that minimises :math:`\sum_i s_i (w_i - q(w_i))^2`.

For weights :math:`w_1..w_n` with sensitivities :math:`s_i \ge 0` (the diagonal of the
sample-level Fisher / noise gain, :mod:`fmq_theory.plan.sensitivity`) the first-order
predicted displacement of the samples is :math:`\sum_i s_i e_i^2` for the weight errors
:math:`e_i`.  The K-level quantizer that minimises it is an exact weighted k-means:

* for fixed levels, each weight goes to its *nearest* level whatever its sensitivity
  (:math:`s_i \ge 0` scales the cost of each choice equally), so the cells are intervals
  of the sorted values and equal values share a cell;
* for a fixed partition into intervals the best level of a cell is its
  :math:`s`-weighted mean;

so merging equal values (summing their sensitivities) and partitioning the sorted distinct
values into K contiguous cells of minimal weighted within-cell sum of squares is exact.
That partition is the weighted dynamic programme of Wang & Song [1]_, already in the
package (:func:`fmq_theory.quantizers._kernels.lloyd_dp`; its weights are the point masses,
the divide-and-conquer split monotonicity holds for any positive masses because the
weighted within-cell cost satisfies the quadrangle inequality [2]_).  The optimum does not
change when a group's sensitivities are scaled, so each group's are divided by their mean
(a group without any sensitivity weighs its values alike), and a floor
``SENSITIVITY_FLOOR = 1e-6`` on these relative masses keeps every cell's mass positive, so
weights with zero estimated sensitivity still get a level (their error then counts with that
tiny mass).  The floor is large enough that a cell of floored values keeps a non-zero mass
after the DP's prefix sums cancel (a group's relative masses add up to its size); at
``1e-12`` a 55.7M-parameter network's near-zero cells cancelled to zero mass.

The stored form is the ``lloyd_max`` one: a ``codebook`` of K levels per group, so a
weighted codebook is written, read and dequantized exactly like ``lloyd_max``.

References
----------
.. [1] H. Wang, M. Song, "Ckmeans.1d.dp: optimal k-means clustering in one dimension by
   dynamic programming", The R Journal 3(2), 2011.
.. [2] X. Wu, "Optimal quantization by matrix searching", J. Algorithms 12, 1991.

Examples
--------
>>> import numpy as np
>>> x = np.array([[0.0, 1.0, 10.0, 11.0]])
>>> codebook, codes = weighted_codebook(x, np.array([[1.0, 3.0, 1.0, 1.0]]), bits=1)
>>> codebook.tolist(), codes.tolist()
([[0.75, 10.5]], [[0, 0, 1, 1]])
"""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers import _kernels

__all__ = ["weighted_codebook", "weighted_codebooks", "weighted_cost"]

#: Floor on a sensitivity relative to its group's mean (see the module docstring).
SENSITIVITY_FLOOR = 1e-6


def _row_codebooks(values: np.ndarray, weights: np.ndarray, level_counts: np.ndarray, nested) -> list:
    """The optimal weighted codebook of one row for each count of ``level_counts``, from one DP run."""
    order = np.argsort(values, kind="stable")
    v, s = values[order], weights[order]
    distinct, start = np.unique(v, return_index=True)
    mass = np.add.reduceat(s, start)
    cells = np.minimum(level_counts, distinct.size)
    all_ends, _ = nested(distinct, mass, cells)
    out = []
    for n_levels, n_cells, ends in zip(level_counts, cells, all_ends):
        ends = ends[:n_cells]
        begins = np.concatenate(([0], ends[:-1]))
        levels = np.add.reduceat(mass * distinct, begins) / np.add.reduceat(mass, begins)
        # a weighted mean lies in its cell; the rounded quotient can leave it by an ulp (one value)
        levels = np.clip(levels, distinct[begins], distinct[ends - 1])
        out.append(np.concatenate([levels, np.full(n_levels - n_cells, levels[-1])]))
    return out


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 12:
        raise ValueError(f"bits={bits!r} must be an integer in 1..12")
    return int(bits)


def _checked_pair(x, s) -> tuple:
    """``x`` and ``s`` as float64 arrays; ``ValueError`` naming them unless both are real, of one
    non-empty 2-D shape, ``x`` finite and ``s`` finite and ``>= 0``."""
    if np.iscomplexobj(x) or np.iscomplexobj(s):
        raise ValueError("x and s must be real arrays")
    x = np.asarray(x, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if x.ndim != 2 or s.shape != x.shape or x.size == 0:
        raise ValueError(f"x and s must be non-empty 2-D arrays of one shape, got {x.shape} and {s.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite (it holds NaN or Inf)")
    if not (np.all(np.isfinite(s)) and np.all(s >= 0)):
        raise ValueError("s must be finite and >= 0")
    return x, s


def weighted_codebooks(x: np.ndarray, s: np.ndarray, *, bits, exact_twin: bool = False) -> dict:
    """The optimal weighted codebooks of every row of ``x`` at each bit width of ``bits``.

    One sort and one run of the DP's layers per row serve every width: layer ``k`` of the
    DP does not depend on how many layers follow, so the ``2**b``-cell partition for each
    ``b`` is read back from the largest width's run
    (:func:`fmq_theory.quantizers._kernels.lloyd_dp_nested`).  Each codebook equals
    :func:`weighted_codebook`'s at that width, bit for bit.

    Parameters
    ----------
    x, s, exact_twin
        As in :func:`weighted_codebook`.
    bits : sequence of int
        Distinct widths, each ``1..12``.

    Returns
    -------
    dict of int to numpy.ndarray
        ``{b: codebook of shape (r, 2**b)}``.
    """
    x, s = _checked_pair(x, s)
    if isinstance(bits, (int, np.integer)):
        raise ValueError(f"bits={bits!r} must be a sequence of widths (weighted_codebook takes one)")
    widths = [_check_bits(b) for b in bits]
    if not widths or len(set(widths)) != len(widths):
        raise ValueError(f"bits={bits!r} must be one or more distinct widths")
    level_counts = np.array([1 << b for b in widths], dtype=np.int64)
    nested = _kernels.lloyd_dp_nested_numpy if exact_twin else _kernels.lloyd_dp_nested
    mean = s.mean(axis=1, keepdims=True)
    relative = np.divide(s, mean, out=np.ones_like(s), where=mean > 0)
    mass = np.maximum(relative, SENSITIVITY_FLOOR)
    rows = [_row_codebooks(x[i], mass[i], level_counts, nested) for i in range(x.shape[0])]
    return {b: np.stack([row[j] for row in rows]) for j, b in enumerate(widths)}


def weighted_codebook(x: np.ndarray, s: np.ndarray, *, bits: int, exact_twin: bool = False):
    """The optimal ``2**bits``-level weighted codebook of every row of ``x``, and the codes.

    Parameters
    ----------
    x : numpy.ndarray, shape (r, m), float
        One group per row.
    s : numpy.ndarray, shape (r, m), float
        Sensitivities, finite and ``>= 0``.
    bits : int
        ``1..12``.
    exact_twin : bool
        Use the plain-numpy O(K N^2) DP instead of the numba kernel (the test oracle).

    Returns
    -------
    codebook : numpy.ndarray, shape (r, 2**bits), float64
        Sorted levels (a row with fewer distinct values than levels repeats its largest).
    codes : numpy.ndarray, shape (r, m), uint8 or uint16
        Index of the nearest level (the lower one on a tie).
    """
    codebook = weighted_codebooks(x, s, bits=(_check_bits(bits),), exact_twin=exact_twin)[int(bits)]
    return codebook, nearest_codes(np.asarray(x, dtype=np.float64), codebook)


def nearest_codes(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted ``levels`` (``(r, K)``) for each entry of ``x`` (``(r, m)``).

    A value half-way between two levels goes to the lower one; uint8 codes for ``K <= 256``.
    The code is the number of mid-points below the value
    (:func:`fmq_theory.quantizers._kernels.assign_codes`, parallel over rows and runs of a row).
    """
    lev = np.asarray(levels, dtype=np.float64)
    mids = np.ascontiguousarray(0.5 * (lev[:, 1:] + lev[:, :-1]))
    codes = np.empty(np.shape(x), dtype=np.uint8 if lev.shape[1] <= 256 else np.uint16)
    _kernels.assign_codes(np.ascontiguousarray(x, dtype=np.float64), mids, codes)
    return codes


def weighted_cost(x: np.ndarray, s: np.ndarray, levels: np.ndarray, codes: np.ndarray) -> float:
    r""":math:`\sum_i s_i (x_i - \mathrm{levels}[\mathrm{code}_i])^2` over all rows.

    Parameters
    ----------
    x, s : numpy.ndarray, shape (r, m)
        As in :func:`weighted_codebook`.
    levels : numpy.ndarray, shape (r, K)
        Finite levels of every row.
    codes : numpy.ndarray, shape (r, m), integer
        Indices into the row's levels, ``0..K-1``.

    Returns
    -------
    float
        The weighted squared error; ``ValueError`` naming the argument for bad input or a sum
        that overflows float64.
    """
    x, s = _checked_pair(x, s)
    if np.iscomplexobj(levels):
        raise ValueError("levels must be a real array")
    levels = np.asarray(levels, dtype=np.float64)
    codes = np.asarray(codes)
    if levels.ndim != 2 or levels.shape[0] != x.shape[0] or levels.shape[1] == 0:
        raise ValueError(f"levels must have shape (r, K) with r = {x.shape[0]} rows and K >= 1, got {levels.shape}")
    if not np.all(np.isfinite(levels)):
        raise ValueError("levels must be finite (they hold NaN or Inf)")
    if codes.shape != x.shape or codes.dtype == np.bool_ or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be an integer array of x's shape {x.shape}, got {codes.dtype} {codes.shape}")
    if codes.min() < 0 or codes.max() >= levels.shape[1]:
        raise ValueError(f"codes must lie in 0..{levels.shape[1] - 1}, got {codes.min()}..{codes.max()}")
    fitted = np.take_along_axis(levels, codes.astype(np.intp), axis=1)
    with np.errstate(over="ignore"):
        cost = float(np.sum(s * (x - fitted) ** 2))
    if not np.isfinite(cost):
        raise ValueError("x, s and levels give a weighted cost that overflows float64")
    return cost
