"""The peer implementations every benchmark case is measured against.

Each peer is the obvious way a researcher would do the same job without this package:
the paper's reference algorithm, a plain vectorized numpy expression, scikit-learn's
KMeans, POT's ``wasserstein_1d``.  They live here (not in the library) because they are
yardsticks, not features.
"""

from __future__ import annotations

import os

import numpy as np

# POT is used with numpy inputs only: skip importing its torch/jax/cupy/tensorflow backends
# (importing torch alone takes seconds).
for _backend in ("PYTORCH", "JAX", "CUPY", "TENSORFLOW"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_backend}", "1")


def paper_equal_mass_per_channel(weights: np.ndarray, *, bits: int) -> np.ndarray:
    """The paper's reference OT quantizer, per output channel.

    Per row: argsort, ``np.array_split`` of the sorted values into ``2**bits`` chunks,
    chunk means, inverse permutation.  Rows shorter than ``2**bits`` are left as they are.
    """
    levels = 2**bits
    out = np.empty_like(weights)
    for row_index, row in enumerate(weights):
        if row.size < levels:
            out[row_index] = row
            continue
        order = np.argsort(row)
        chunks = np.array_split(row[order], levels)
        out[row_index, order] = np.concatenate([np.full(c.size, c.mean(), dtype=row.dtype) for c in chunks])
    return out


def numpy_uniform_minmax_per_channel(weights: np.ndarray, *, bits: int) -> np.ndarray:
    """Asymmetric min-max uniform quantization per row as one vectorized numpy expression."""
    low = weights.min(axis=1, keepdims=True)
    high = weights.max(axis=1, keepdims=True)
    step = (high - low) / (2**bits - 1)
    step = np.where(step > 0, step, 1)
    return np.round((weights - low) / step) * step + low


def sklearn_kmeans_per_channel(weights: np.ndarray, *, bits: int, seed: int = 0) -> np.ndarray:
    """Per-row 1-D k-means with scikit-learn (``n_init=1``); returns the per-row MSE."""
    from sklearn.cluster import KMeans

    mse = np.empty(weights.shape[0])
    for row_index, row in enumerate(weights.astype(np.float64)):
        km = KMeans(n_clusters=2**bits, n_init=1, random_state=seed).fit(row[:, None])
        mse[row_index] = km.inertia_ / row.size
    return mse


def ckmeans_labels(values: np.ndarray, *, levels: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Optimal 1-D k-means cluster labels of every row with Ckmeans.1d.dp (Wang & Song's C++
    dynamic programme, PyPI ``ckmeans-1d-dp``, its default ``method="linear"``: SMAWK).

    ``values`` is float64, 1-D or 2-D (unweighted: one call, the C++ code loops over the
    rows; weighted: one call per row, as the wrapper's 2-D weighted path fails after the C++
    call computing its ``totss``); ``weights`` (same shape) are the point masses.  Returns
    int32 labels ``0..levels-1`` in value order.
    """
    from ckmeans_1d_dp import ckmeans

    if weights is None:
        return ckmeans(values, k=levels).cluster
    rows = np.atleast_2d(values)
    return np.stack([ckmeans(v, k=levels, y=w).cluster for v, w in zip(rows, np.atleast_2d(weights))]).reshape(values.shape)


def pot_wasserstein_1d(u: np.ndarray, v: np.ndarray, *, p: int = 2) -> float:
    """W_p between two unweighted 1-D samples with POT (returns W_p, not W_p^p)."""
    import ot

    return float(ot.wasserstein_1d(u, v, p=p)) ** (1.0 / p)
