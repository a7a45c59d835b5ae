r"""Half-quadratic zero-point fitting (HQQ): a min-max grid whose offset is fitted by an
:math:`\ell_p` proximal iteration, calibration-free.

Badri & Shaji's HQQ [1]_ keeps the min-max step :math:`s = (\max w - \min w)/(K - 1)` of
a group and fits only its zero point :math:`z` (in code units; levels
:math:`(k - z)\,s`, :math:`k = 0..K-1`) to minimise the sparsity-promoting
:math:`\ell_p` norm (:math:`p < 1`) of the rounding error,

.. math::

   \min_z \; \big\| w - (Q_z(w) - z)\,s \big\|_p^p ,
   \qquad Q_z(w) = \operatorname{clip}\big(\operatorname{round}(w/s + z),\, 0,\, K-1\big),

by half-quadratic splitting: an auxiliary error :math:`e` is pulled towards the residual
with weight :math:`\beta/2`, and the two blocks are minimised in turn,

.. math::

   e &\leftarrow \operatorname{shrink}_p\big(w - (Q_z(w) - z)s,\ \beta\big), \qquad
   \operatorname{shrink}_p(x, \beta) = \operatorname{sign}(x)\,
   \big(|x| - \beta^{-1} |x|^{p-1}\big)_+ ,\\
   z &\leftarrow \operatorname{mean}\big(Q_z(w) - (w - e)/s\big), \qquad \beta \leftarrow \kappa\beta ,

the generalised soft-thresholding being the proximal step of :math:`|x|^p` and the
zero-point update the closed-form minimiser of the quadratic block.  The iteration runs at
most ``iters`` times and stops at the first step whose mean absolute error
:math:`\operatorname{mean}|w - (Q_z(w) - z)s|` does not decrease, keeping that step's
update, as the authors' package does (a decrease of less than :data:`PLATEAU`, relative,
counts as none: on a flat stretch of the error the package's choice is decided by rounding) (``hqq.core.optimize.optimize_weights_proximal_legacy``,
``hqq`` 0.2.8, with its defaults :math:`p = 0.7`, :math:`\beta = 10`, :math:`\kappa = 1.01`,
20 iterations).  Where the shrinkage threshold exceeds every residual (small weights: at
:math:`p = 0.7`, :math:`\beta = 10`, any residual below about 0.37), :math:`e = 0` and the
update is the least-squares zero point for the current codes (the one that makes their
mean reconstruction error zero).  :math:`\beta` is in weight units, so unlike the other
methods the fit is not equivariant under scaling of the weights.

What this package does differently from the ``hqq`` package:

* every group stops on its own error (the package stops the whole tensor at once), so a
  group's result does not depend on the other groups;
* the computation is in float64 relative to the group's minimum (the package computes in
  float32 on the CPU, float16 on a GPU), and the package's guards for float16 (a step of 1
  when the range is below :math:`10^{-4}`, the inverse step clamped at :math:`2 \cdot 10^4`)
  are not needed; a constant group has step 0 and every weight exact;
* the initial zero point is not rounded (the package rounds it at 4 bits by default);
* what is stored is the step ``scale`` and ``offset`` :math:`= -z s` at the storage dtype,
  the levels are rebuilt from them as ``uniform_mse``'s (``fl(fl(k * scale) + offset)``)
  and every weight goes to its nearest rebuilt level, which is where the package's final
  rounding ``round(w/s + z)`` sends it up to a half-way tie.

The tests hold this fit to the package, group by group (:file:`tests/test_half_quadratic.py`).

References
----------
.. [1] H. Badri, A. Shaji, "Half-Quadratic Quantization of Large Machine Learning Models",
   2023, https://mobiusml.github.io/hqq_blog/ (package ``hqq`` on PyPI).

Examples
--------
>>> import numpy as np
>>> from fmq_theory.quantizers import quantize
>>> w = np.random.default_rng(0).standard_normal((4, 128)) * 0.02
>>> qt = quantize(w, method="half_quadratic", bits=2, granularity="group:64")
>>> sorted(qt.stored), qt.levels.shape
(['offset', 'scale'], (8, 4))
>>> mse = lambda m: float(np.mean((quantize(w, method=m, bits=2, granularity="group:64").dequantize() - w) ** 2))
>>> mse("half_quadratic") < mse("uniform_minmax")  # the fitted zero point against the min-max grid's
True
"""

from __future__ import annotations

import numpy as np

from fmq_theory.quantizers.uniform import _grid_codes

#: Relative decrease of the mean absolute error below which a step counts as no decrease: the
#: error is piecewise linear in the zero point and flat where as many residuals are positive as
#: negative, and there rounding alone (about ``m * 2**-53``) would decide whether to go on.
PLATEAU = 1e-12

#: The ``hqq`` package's defaults (``optimize_weights_proximal_legacy``).
DEFAULT_OPTIONS = {"lp_norm": 0.7, "beta": 10.0, "kappa": 1.01, "iters": 20}


def _check_options(lp_norm, beta, kappa, iters) -> None:
    for name, value in (("lp_norm", lp_norm), ("beta", beta), ("kappa", kappa)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"{name}={value!r} must be a real number")
        if not np.isfinite(value):
            raise ValueError(f"{name}={value!r} must be finite")
    if not 0 < lp_norm <= 1:
        raise ValueError(f"lp_norm={lp_norm!r} must be in (0, 1]")
    if beta <= 0:
        raise ValueError(f"beta={beta!r} must be positive")
    if kappa < 1:
        raise ValueError(f"kappa={kappa!r} must be at least 1")
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 0:
        raise ValueError(f"iters={iters!r} must be a non-negative integer")


def _shrink(x: np.ndarray, beta: float, p: float) -> np.ndarray:
    """Generalised soft-thresholding, the proximal step of :math:`|x|^p / \\beta`."""
    a = np.abs(x)
    with np.errstate(divide="ignore"):  # |x| = 0: threshold +inf, shrunk to 0
        return np.sign(x) * np.maximum(a - a ** (p - 1) / beta, 0.0)


def zero_points(x: np.ndarray, *, bits: int, lp_norm: float = 0.7, beta: float = 10.0, kappa: float = 1.01,
                iters: int = 20):
    r"""The half-quadratic fit of every row of ``x``: minimum, step and zero point.

    Parameters
    ----------
    x : numpy.ndarray, shape (r, m)
        One group per row, finite.
    bits : int
        Code bits, :math:`K = 2^b` levels.
    lp_norm, beta, kappa, iters
        The iteration's :math:`p`, initial :math:`\beta`, its growth :math:`\kappa` and the
        most steps (module docstring).

    Returns
    -------
    lo, step, shift : numpy.ndarray, shape (r,) float64
        The group minimum, the min-max step :math:`s` (0 for a constant group) and the fitted
        zero point relative to the minimum, :math:`z' = z + \min w / s` (0 before any step), so
        that the levels are :math:`\min w + (k - z')\,s`.
    """
    _check_options(lp_norm, beta, kappa, iters)
    x = np.asarray(x, dtype=np.float64)
    n_levels = 2**bits
    lo = x.min(axis=1)
    step = (x.max(axis=1) - lo) / (n_levels - 1)
    live = step > 0
    # code-unit coordinates u = (w - min) / s in [0, K - 1]; z' = 0 is the min-max grid
    u = (x[live] - lo[live, None]) / step[live, None]
    s = step[live, None]
    shift = np.zeros(u.shape[0])
    best = np.full(u.shape[0], np.inf)
    active = np.ones(u.shape[0], dtype=bool)
    b = float(beta)
    for _ in range(iters):
        if not active.any():
            break
        z = shift[active, None]
        ua = u[active]
        q = np.clip(np.rint(ua + z), 0, n_levels - 1)
        residual = ua - q + z  # (w - r) / s
        e = _shrink(residual * s[active], b, lp_norm) / s[active]
        error = np.mean(np.abs(residual), axis=1) * s[active, 0]
        shift[active] = np.mean(q - ua + e, axis=1)
        improved = error < best[active] * (1 - PLATEAU)
        best[active] = np.where(improved, error, best[active])
        idx = np.flatnonzero(active)
        active[idx[~improved]] = False
        b *= kappa
    out = np.zeros(x.shape[0])
    out[live] = shift
    return lo, step, out


def fit_half_quadratic(x: np.ndarray, *, bits: int, storage_dtype: np.dtype, lp_norm: float = 0.7,
                       beta: float = 10.0, kappa: float = 1.01, iters: int = 20):
    r"""HQQ's grid (module docstring) for every row of ``x``.

    Stored: ``scale`` (the min-max step :math:`s`) and ``offset`` (:math:`\min w - z' s`, the
    level of code 0), one each per group at the storage dtype, as ``uniform_mse``; the codes
    are the nearest rebuilt levels.  ``info["zero_point"]`` holds the fitted :math:`z'` in code
    units (0 is the min-max grid).
    """
    lo, step, shift = zero_points(x, bits=bits, lp_norm=lp_norm, beta=beta, kappa=kappa, iters=iters)
    scale = step.astype(storage_dtype)
    offset = (lo - shift * step).astype(storage_dtype)
    codes = _grid_codes(x, offset, scale, 0, 2**bits, bits)
    return {"scale": scale, "offset": offset}, codes, {"zero_point": shift}
