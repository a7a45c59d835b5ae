r"""Exact expected distortion of ``uniform_minmax`` on ``n`` iid weights of a law.

The min-max uniform quantizer puts ``K = 2^b`` evenly spaced levels between the sample
minimum ``a`` and maximum ``b``; given them, the other ``n - 2`` weights are iid on
``[a, b]``, so the expected per-weight error is an integral of the grid error
:math:`G(a, b)` over the joint law of the sample extremes. Writing the masses outside the
range as :math:`r\theta` and :math:`r(1-\theta)` with ``r ~ Beta(2, n - 2)`` turns it into
a product integral on the unit square, evaluated by tanh-sinh quadrature
(:func:`minmax_finite_n`) with a stated tolerance.

References
----------
.. [1] H. Takahasi, M. Mori, "Double exponential formulas for numerical integration",
   *Publ. RIMS Kyoto Univ.* 9 (1974) 721-741.
.. [2] H. A. David, H. N. Nagaraja, *Order Statistics*, 3rd ed., Wiley 2003 (joint law of the
   sample extremes).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from fmq_theory.theory._checks import check_bits, check_sample_size
from fmq_theory.theory.laws import ContinuousLaw

def _tanh_sinh_nodes(t):
    """Tanh-sinh map of ``t``: nodes ``x``, ``1 - x`` on (0, 1) and ``dx/dt``."""
    s = 0.5 * np.pi * np.sinh(t)
    with np.errstate(over="ignore"):
        dx = 0.25 * np.pi * np.cosh(t) / np.cosh(s) ** 2
    return special.expit(2.0 * s), special.expit(-2.0 * s), dx


def _grid_error(law, a, b, K, chunk=300_000):
    """``G(a, b)``: squared error of the ``K``-level uniform grid on ``[a, b]``, per pair."""
    out = np.empty(a.size)
    step = max(1, chunk // K)
    frac = np.linspace(0.0, 1.0, K)
    for s in range(0, a.size, step):
        aa, bb = a[s:s + step, None], b[s:s + step, None]
        levels = aa + (bb - aa) * frac[None, :]
        edges = np.concatenate((aa, 0.5 * (levels[:, :-1] + levels[:, 1:]), bb), axis=1)
        out[s:s + step] = np.sum(law.cell_sq_error(edges[:, :-1], edges[:, 1:], levels), axis=1)
    return out


def _edges_from_masses(law, u, v):
    """Sample minimum ``a`` with ``F(a) = u`` and maximum ``b`` with ``1 - F(b) = v``."""
    a = np.where(u <= 0.5, law.ppf(np.minimum(u, 0.5)), law.isf(np.clip(1.0 - u, 0.0, 0.5)))
    b = np.where(v <= 0.5, law.isf(np.minimum(v, 0.5)), law.ppf(np.clip(1.0 - v, 0.0, 0.5)))
    return a, b


class QuadratureNotConverged(RuntimeError):
    """The finite-n quadrature did not reach its tolerance (heavy tails, few levels).

    Attributes
    ----------
    value : float
        Result at the finest step (1/16).
    change : float
        Its absolute difference from the result at step 1/8 (an error estimate).
    """

    def __init__(self, message, *, value, change):
        super().__init__(message)
        self.value = value
        self.change = change


def minmax_finite_n(law: ContinuousLaw, *, bits: int, n: int, rtol: float = 1e-6) -> float:
    r"""Expected per-weight MSE of ``uniform_minmax`` on ``n`` iid weights of ``law`` (exact).

    Computes :math:`D_n = 2\int_0^1\int_0^{1/2} G(F^{-1}(r\theta), F^{-1}(1 - r(1-\theta)))
    \,d\theta\,dq` with ``r`` the ``q``-quantile of Beta(2, n - 2) (see the module
    docstring; the factor 2 and the half range use the symmetry of the law, and put the
    bend of the integrand at ``theta = 1/2`` on an endpoint) by product tanh-sinh quadrature
    with steps 1/2, 1/4, 1/8, 1/16 (finer steps reuse the coarser nodes), until two
    successive results agree to ``rtol``.  Nodes whose contribution is provably below
    ``1e-3 * rtol`` of the result (``G <= mass * (range / 2(K-1))^2``) are skipped.

    Raises
    ------
    ValueError
        If ``bits``, ``n`` or ``rtol`` (a number in (0, 1)) is out of range.
    QuadratureNotConverged
        If step 1/16 does not agree with step 1/8 to ``rtol``.  This happens for heavy tails
        (Student-t with small ``nu``) at few levels: when the grid step is comparable to the
        spread of the law, the integrand bends sharply wherever a threshold sweeps across
        the centre of the law.  :func:`distortions` then falls back to Monte Carlo.
    """
    bits = check_bits(bits)
    n = check_sample_size(n)
    if not (isinstance(rtol, (int, float)) and 0 < rtol < 1):
        raise ValueError(f"rtol={rtol!r} must be a number in (0, 1)")
    if not isinstance(law, ContinuousLaw):
        raise TypeError(f"law={law!r} must be a ContinuousLaw from fmq_theory.theory.laws")
    law.variance  # needs a finite second moment
    if n == 2:
        return 0.0
    K = 2**bits
    h_min = 1.0 / 16.0
    t_end = float(np.arcsinh(2.0 * 690.0 / np.pi))  # nodes reach 1e-300 of the endpoints
    m = int(np.ceil(t_end / h_min))
    x, one_minus_x, dx = _tanh_sinh_nodes(np.arange(-m, m + 1) * h_min)
    r = np.where(x <= 0.5, special.betaincinv(2.0, n - 2.0, np.minimum(x, 0.5)),
                 special.betainccinv(2.0, n - 2.0, np.minimum(one_minus_x, 0.5)))
    theta = 0.5 * x
    cache = np.full((x.size, x.size), np.nan)  # G at (q-node i, theta-node j)
    previous = None
    for level in range(4, -1, -1):
        stride = 2**level
        idx = m + stride * np.arange(-(m // stride), m // stride + 1)
        h = h_min * stride
        qi = idx[(r[idx] < 1.0) & (dx[idx] > 0)]
        tj = idx[dx[idx] > 0]
        I, J = (g.ravel() for g in np.meshgrid(qi, tj, indexing="ij"))
        weight = 2.0 * 0.5 * h * h * dx[I] * dx[J]
        u = r[I] * theta[J]  # mass below the minimum
        v = r[I] * (1.0 - theta[J])  # mass above the maximum
        ok = (u > 1e-300) & (v > 1e-300) & (weight > 0)
        I, J, weight, u, v = I[ok], J[ok], weight[ok], u[ok], v[ok]
        a, b = _edges_from_masses(law, u, v)
        need = np.isnan(cache[I, J]) & (b > a)
        if previous is not None:
            bound = weight * ((b - a) / (2.0 * (K - 1))) ** 2  # G <= mass * (step / 2)^2
            need &= bound > 1e-3 * rtol * previous / max(1, I.size)
        if np.any(need):
            cache[I[need], J[need]] = _grid_error(law, a[need], b[need], K)
        g = cache[I, J]
        value = float(np.sum(np.where(np.isnan(g), 0.0, weight * g)))
        if previous is not None and abs(value - previous) <= rtol * abs(value):
            return value
        change = abs(value - previous) if previous is not None else np.inf
        previous = value
    raise QuadratureNotConverged(
        f"minmax_finite_n did not converge to rtol={rtol} (law={law.describe()}, bits={bits}, n={n}; "
        f"last value {value:.10g}, last change {change:.3g})", value=value, change=change)


__all__ = ["QuadratureNotConverged", "minmax_finite_n"]
