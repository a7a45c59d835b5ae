"""Small helpers shared by the quantizer families (no public API)."""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers import _kernels


def code_dtype(bits: int) -> np.dtype:
    """Unsigned integer dtype of the codes: uint8 up to 8 bits, uint16 up to 16."""
    return np.dtype(np.uint8) if bits <= 8 else np.dtype(np.uint16)


def cell_means(first: np.ndarray, shifted: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean ``first + shifted / count`` of every cell (the output of
    :func:`fmq_theory.quantizers._kernels.sorted_cell_stats`), shape ``(r, K)`` float64.

    A cell of equal values gets exactly that value.  An empty cell takes the mean of the
    nearest non-empty cell below it (above it if there is none below), so the levels
    stay sorted and unused levels duplicate used ones."""
    k_len = first.shape[1]
    filled = counts > 0
    means = first + np.divide(shifted, counts, out=np.zeros_like(shifted), where=filled)
    idx = np.where(filled, np.arange(k_len), -1)
    below = np.maximum.accumulate(idx, axis=1)
    first = np.argmax(filled, axis=1)
    below = np.where(below < 0, first[:, None], below)
    return np.take_along_axis(means, below, axis=1)


def nearest_codes(x: np.ndarray, levels: np.ndarray, bits: int) -> np.ndarray:
    """Index of the nearest of the sorted ``levels`` (shape ``(r, K)``) for every entry of
    ``x`` (shape ``(r, m)``); a value exactly half-way goes to the lower level."""
    lev = levels.astype(np.float64)
    mids = np.ascontiguousarray(0.5 * (lev[:, 1:] + lev[:, :-1]))
    codes = np.empty(x.shape, dtype=code_dtype(bits))
    _kernels.assign_codes(x, mids, codes)
    return codes


def search_ratio(objective, n_rows: int, *, n_grid: int = 64, n_golden: int = 40, grid_objective=None) -> np.ndarray:
    """Minimise ``objective(ratio) -> mse`` (both shape ``(n_rows,)``) over ratio in [0, 1].

    A grid of ``n_grid`` ratios ``j / n_grid`` (``j = 1..n_grid``, so the ratio 1 is
    always tried) locates the best grid point of every row; a golden-section search
    in the bracket of its two neighbours then refines it for ``n_golden`` steps
    (bracket width ``2 / n_grid * 0.618**n_golden``, about 1e-10 for the defaults;
    one objective evaluation per step).
    The objective is not unimodal in general, so the result is the best local minimum
    around the best grid point; the value returned is never worse than the best grid
    point (the best ratio seen is kept).

    ``grid_objective(ratios) -> mse``, if given, evaluates every grid ratio at once (``ratios``
    of shape ``(n_grid,)``, the result ``(n_rows, n_grid)``); it must equal ``objective`` at
    each ratio, as a one-pass kernel over the data does.

    Returns
    -------
    numpy.ndarray, shape (n_rows,), float64
        The best ratio found for every row.
    """
    grid = np.arange(1, n_grid + 1, dtype=np.float64) / n_grid
    if grid_objective is None:
        values = np.stack([objective(np.full(n_rows, a)) for a in grid], axis=1)
    else:
        values = grid_objective(grid)
    j = np.argmin(values, axis=1)
    best_a = grid[j]
    best_v = values[np.arange(n_rows), j]
    a = j / n_grid
    b = np.minimum(j + 2, n_grid) / n_grid
    g = (np.sqrt(5.0) - 1.0) / 2.0
    c = b - g * (b - a)
    d = a + g * (b - a)
    fc = objective(c)
    fd = objective(d)
    for point, value in ((c, fc), (d, fd)):
        better = value < best_v
        best_a = np.where(better, point, best_a)
        best_v = np.where(better, value, best_v)
    for _ in range(n_golden):
        left = fc <= fd  # the minimum lies in [a, d]: d <- c, probe a new c
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        probe = np.where(left, b - g * (b - a), a + g * (b - a))
        value = objective(probe)
        c, d, fc, fd = (
            np.where(left, probe, d),
            np.where(left, c, probe),
            np.where(left, value, fd),
            np.where(left, fc, value),
        )
        better = value < best_v
        best_a = np.where(better, probe, best_a)
        best_v = np.where(better, value, best_v)
    return best_a
