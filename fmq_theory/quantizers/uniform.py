r"""Uniform grids: the paper's min-max grid, a symmetric absmax grid, an MSE-clipped grid.

All three reconstruct ``level_k = offset + k * scale`` (``uniform_minmax``,
``uniform_mse``) or ``level_k = (k - 2**(b-1)) * scale`` (``uniform_absmax``) from a
per-group ``scale`` (and ``offset``) stored at the storage dtype.  The affine levels are
computed as the paper's reference code computes them, in the storage dtype:
``fl(fl(k * scale) + offset)`` (two roundings; where that overflows, the same sum at half
scale, doubled, which is the same number whenever the direct sum is finite); the absmax
levels in float64, rounded to the storage dtype (the one extra negative level is clamped
to the largest float).  ``uniform_minmax`` codes are the reference's
``round((w - offset) / scale)`` in the storage dtype, round half to even;
``uniform_absmax``/``uniform_mse`` codes are ``floor((w - offset) / scale + 1/2)`` in
float64, clipped to the grid (round half up).  Either way the stored, rounded scale and
offset are used, so every weight goes to its nearest level up to a half-way tie.  A group
with ``scale == 0`` (constant group, or an all-zero group for absmax) has every code 0
(absmax: the zero level) and zero error; the reference code copies such a group, which
gives the same values.

References
----------
.. [1] B. Jacob et al., "Quantization and training of neural networks for efficient
   integer-arithmetic-only inference", CVPR 2018 (asymmetric and symmetric grids).
.. [2] R. Banner, Y. Nahshan, D. Soudry, "Post training 4-bit quantization of
   convolutional networks for rapid-deployment", NeurIPS 2019 (MSE-optimal clipping).
"""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers import _kernels
from fmq_theory.quantizers._common import code_dtype, search_ratio


def _grid_codes(x: np.ndarray, offset: np.ndarray, scale: np.ndarray, lowest: int, n_levels: int, bits: int):
    """Codes ``clip(floor((x - offset) / scale + 1/2), lowest, lowest + K - 1) - lowest``
    (float64 arithmetic; :func:`fmq_theory.quantizers._kernels.grid_codes`)."""
    codes = np.empty(x.shape, dtype=code_dtype(bits))
    _kernels.grid_codes(x, offset.astype(np.float64), scale.astype(np.float64), lowest, n_levels, codes)
    return codes


def affine_levels(bits: int, stored) -> np.ndarray:
    """Levels ``fl(fl(k * scale) + offset)`` in the stored dtype, ``k = 0..2**bits - 1``:
    shape ``(r, 2**bits)``.  Where that overflows (a range near the float limit), the
    levels are ``2 * fl(fl(k * (scale / 2)) + offset / 2)``, finite for any finite range."""
    scale = np.asarray(stored["scale"])[:, None]
    offset = np.asarray(stored["offset"])[:, None]
    k = np.arange(2**bits, dtype=scale.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        levels = k * scale + offset
        bad = ~np.isfinite(levels)
        if bad.any():
            half = k * (scale / 2) + offset / 2
            levels[bad] = (2 * half)[bad]
    return levels


def fit_uniform_minmax(x: np.ndarray, *, bits: int, storage_dtype: np.dtype):
    r"""The paper's asymmetric min-max grid, bit for bit as its reference code.

    :math:`\Delta = (\max w - \min w)/(K - 1)`, :math:`\hat w = \min w + \Delta\,
    \mathrm{round}((w - \min w)/\Delta)`; no clipping, zero need not be a level.  Every
    operation is done in the storage dtype (float32 for float32 input) with one rounding
    each, and ``round`` is round half to even, as ``torch.round`` in the reference
    (Quantized-FM/LowBit-HighFid, ``PC-Uniform-Quant.py``); float16/bfloat16 input is
    computed in float32 (the reference would compute in half precision).  A step that
    underflows to 0 (a range below the smallest subnormal times ``K - 1``) gives every
    weight the minimum (the reference would divide by zero).  Stored: ``scale``
    (:math:`\Delta`) and ``offset`` (:math:`\min w`), one each per group.
    """
    n_levels = 2**bits
    lo = x.min(axis=1)[:, None]
    hi = x.max(axis=1)[:, None]
    scale = (hi - lo) / storage_dtype.type(n_levels - 1)
    step = np.where(scale > 0, scale, storage_dtype.type(1))
    # one work array, each operation in place in the dtype the expression
    # round((x - lo) / step) would have: the same roundings
    t = np.subtract(x, lo, dtype=np.result_type(x, step))
    np.divide(t, step, out=t)
    np.rint(t, out=t)
    np.clip(t, 0, n_levels - 1, out=t)
    t[scale[:, 0] <= 0] = 0
    return {"scale": scale[:, 0], "offset": lo[:, 0]}, t.astype(code_dtype(bits)), {}


def absmax_levels(bits: int, stored) -> np.ndarray:
    """Levels ``(k - 2**(bits-1)) * scale``, ``k = 0..2**bits - 1``: shape ``(r, 2**bits)``."""
    scale = np.asarray(stored["scale"])
    k = np.arange(2**bits, dtype=np.float64) - 2 ** (bits - 1)
    top = np.finfo(scale.dtype).max
    with np.errstate(over="ignore"):
        return np.clip(scale.astype(np.float64)[:, None] * k, -top, top).astype(scale.dtype)


def fit_uniform_absmax(x: np.ndarray, *, bits: int, storage_dtype: np.dtype):
    r"""Symmetric grid with an exact zero (signed-integer convention).

    Integer grid :math:`q \in \{-2^{b-1}, \dots, 2^{b-1} - 1\}` (all :math:`2^b` codes of
    a two's-complement b-bit integer), levels :math:`q s` with
    :math:`s = \max|w| / \max(2^{b-1} - 1, 1)`, so :math:`\pm\max|w|` are both levels
    (for :math:`b \ge 2`) and the one extra negative level :math:`-2^{b-1} s` lies beyond
    :math:`-\max|w|` (it is used only at b = 1, where the levels are :math:`\{-\max|w|, 0\}`).
    Stored: ``scale`` per group.
    """
    n_levels = 2**bits
    half = 2 ** (bits - 1)
    absmax = np.abs(x).max(axis=1).astype(np.float64)
    scale = (absmax / max(half - 1, 1)).astype(storage_dtype)
    offset = np.zeros_like(scale)
    codes = _grid_codes(x, offset, scale, -half, n_levels, bits)
    return {"scale": scale}, codes, {}


def fit_uniform_mse(x: np.ndarray, *, bits: int, storage_dtype: np.dtype):
    r"""Uniform grid whose clipping range minimises the MSE on the data.

    The range shrinks the min-max range towards the group mean :math:`c` by a ratio
    :math:`\alpha \in [0, 1]`: :math:`[\min w + (1-\alpha)(c - \min w),\;
    \max w - (1-\alpha)(\max w - c)]`; values outside are clipped to the end levels.
    :math:`\alpha` minimises the MSE of the group by a 64-point grid plus a
    golden-section refinement (:func:`fmq_theory.quantizers._common.search_ratio`;
    tolerance about 1e-10 in :math:`\alpha`, the best local minimum near the best grid
    point).  :math:`\alpha = 1` is the min-max grid and is always tried, so the MSE never
    exceeds ``uniform_minmax``'s (up to the rounding of the stored scale and offset).
    Stored: ``scale`` and ``offset`` per group, as ``uniform_minmax``.
    """
    n_levels = 2**bits
    lo = x.min(axis=1).astype(np.float64)
    hi = x.max(axis=1).astype(np.float64)
    centre = np.clip(x.mean(axis=1, dtype=np.float64), lo, hi)

    def clip_range(alpha):  # alpha of shape (r,), or (r, G) for G ratios per row
        shape = (-1,) + (1,) * (alpha.ndim - 1)
        low, mid, high = lo.reshape(shape), centre.reshape(shape), hi.reshape(shape)
        return low + (1.0 - alpha) * (mid - low), high - (1.0 - alpha) * (high - mid)

    def objective(alpha):
        a, b = clip_range(alpha)
        return _kernels.uniform_grid_mse(x, a, b, n_levels)

    def grid_objective(alphas):  # every grid ratio in one pass over the data: objective's values, bit for bit
        a, b = clip_range(np.broadcast_to(alphas, (x.shape[0], alphas.size)))
        return _kernels.uniform_grid_mse_many(x, np.ascontiguousarray(a), np.ascontiguousarray(b), n_levels)

    alpha = search_ratio(objective, x.shape[0], grid_objective=grid_objective)
    a, b = clip_range(alpha)
    a = np.where(alpha == 1.0, lo, a)
    b = np.where(alpha == 1.0, hi, b)
    scale = ((b - a) / (n_levels - 1)).astype(storage_dtype)
    offset = a.astype(storage_dtype)
    codes = _grid_codes(x, offset, scale, 0, n_levels, bits)
    return {"scale": scale, "offset": offset}, codes, {"clip_ratio": alpha}
