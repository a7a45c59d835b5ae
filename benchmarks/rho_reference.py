r"""An independent mpmath reference for the law-level rho(b) tables (benchmark case 6).

The benchmark times :func:`fmq_theory.theory.rho.rho_table` at the law level (``n=None``) with
``method="equal_mass"`` against ``against="lloyd_max"`` (both are defined on a law; the
paper's ``uniform_minmax`` is not: its levels sit at the sample extremes), for four
unit-variance laws and b = 1..12, and compares every rho with the numbers computed here
at ``mp.dps = 40`` decimal digits, with closed forms that share no code with the library:

* Tail first moments :math:`T_1(z) = \int_z^\infty x\,p(x)\,dx` (``z >= 0``; for the
  symmetric laws here :math:`T_1(-z) = T_1(z)`) and survival functions
  :math:`S(z) = P(X > z)`:

  - Gaussian: :math:`T_1 = \varphi(z)`, :math:`S = 1 - \Phi(z)`;
  - Laplace(s): :math:`T_1 = \tfrac12 (z + s) e^{-z/s}`, :math:`S = \tfrac12 e^{-z/s}`;
  - Student-t(nu, s): :math:`T_1 = s\,c_\nu \tfrac{\nu}{\nu-1} (1 + u^2/\nu)^{-(\nu-1)/2}`,
    :math:`S = \tfrac12 I_{\nu/(\nu+u^2)}(\nu/2, 1/2)`, with :math:`u = z/s`;
  - generalized Gaussian(beta, s): :math:`T_1 = s\,\Gamma(2/\beta, u^\beta) / (2\Gamma(1/\beta))`,
    :math:`S = \Gamma(1/\beta, u^\beta) / (2\Gamma(1/\beta))`.

* Equal mass, :math:`K = 2^b` cells between the quantiles :math:`q_k = F^{-1}(k/K)`
  (found by mpmath root finding on :math:`S`, started from scipy's float quantile):
  every cell has mass :math:`1/K` and mean :math:`K M_{1,k}`, so
  :math:`D = E[X^2] - K \sum_k M_{1,k}^2` with :math:`E[X^2] = 1`.

* Lloyd-Max: no closed form exists, so the reference is the distortion, evaluated in
  mpmath, of the nearest-neighbour quantizer with the library's levels :math:`y_k`
  (cells between the midpoints):
  :math:`D = 1 - \sum_k (2 y_k M_{1,k} - y_k^2 M_{0,k})`.  This is the exact distortion of
  a valid K-level quantizer, hence an upper bound on the optimum, and equals the optimum
  to second order in the error of the levels (the distortion is stationary there).  The
  largest centroid residual :math:`|y_k - M_{1,k}/M_{0,k}|` relative to the level spacing
  is reported with it.
"""

from __future__ import annotations

import time

import mpmath as mp
import numpy as np
from scipy import stats

from fmq_theory.theory.distortion import law_quantizer
from fmq_theory.theory.laws import make_law
from fmq_theory.theory.rho import rho_table

#: The four laws of the table: (family, shape keyword arguments).
LAWS = (("gaussian", {}), ("laplace", {}), ("student-t", {"nu": 5.0}), ("gen-gaussian", {"beta": 0.5}))
DPS = 40


class MpLaw:
    """Unit-variance symmetric law in mpmath: ``tail1(z)``, ``sf(z)`` for ``z >= 0``, ``isf(q)``."""

    def __init__(self, family: str, **shape):
        self.family = family
        self.shape = shape
        if family == "gaussian":
            self.scale = mp.mpf(1)
            self._start = lambda q: stats.norm.isf(q)
        elif family == "laplace":
            self.scale = 1 / mp.sqrt(2)
            self._start = lambda q: stats.laplace.isf(q, scale=float(self.scale))
        elif family == "student-t":
            nu = mp.mpf(shape["nu"])
            self.nu = nu
            self.scale = mp.sqrt((nu - 2) / nu)
            self.c = mp.gamma((nu + 1) / 2) / (mp.sqrt(nu * mp.pi) * mp.gamma(nu / 2))
            self._start = lambda q: stats.t.isf(q, float(nu), scale=float(self.scale))
        elif family == "gen-gaussian":
            beta = mp.mpf(shape["beta"])
            self.beta = beta
            self.scale = mp.sqrt(mp.gamma(1 / beta) / mp.gamma(3 / beta))
            self._start = lambda q: stats.gennorm.isf(q, float(beta), scale=float(self.scale))
        else:
            raise ValueError(f"family={family!r} is not one of {[f for f, _ in LAWS]}")

    def tail1(self, z):
        u = z / self.scale
        if self.family == "gaussian":
            return mp.npdf(z)
        if self.family == "laplace":
            return (z + self.scale) * mp.exp(-u) / 2
        if self.family == "student-t":
            nu = self.nu
            return self.scale * self.c * nu / (nu - 1) * (1 + u * u / nu) ** (-(nu - 1) / 2)
        beta = self.beta
        return self.scale * mp.gammainc(2 / beta, u**beta) / (2 * mp.gamma(1 / beta))

    def sf(self, z):
        u = z / self.scale
        if self.family == "gaussian":
            return mp.ncdf(-z)
        if self.family == "laplace":
            return mp.exp(-u) / 2
        if self.family == "student-t":
            nu = self.nu
            return mp.betainc(nu / 2, mp.mpf(1) / 2, 0, nu / (nu + u * u), regularized=True) / 2
        beta = self.beta
        return mp.gammainc(1 / beta, u**beta, regularized=True) / 2

    def isf(self, q):
        """``z >= 0`` with ``sf(z) = q`` for ``0 < q <= 1/2``."""
        if q == mp.mpf(1) / 2:
            return mp.mpf(0)
        if self.family == "laplace":
            return -self.scale * mp.log(2 * q)
        return mp.findroot(lambda z: self.sf(z) - q, mp.mpf(float(self._start(float(q)))), solver="secant",
                           tol=mp.mpf(10) ** (-2 * DPS + 10))

    # signed helpers over a cell (a, b], a < b, +-inf allowed
    def _t1(self, x):
        if mp.isinf(x):
            return mp.mpf(0)
        return self.tail1(abs(x))

    def _cdf(self, x):
        if mp.isinf(x):
            return mp.mpf(0) if x < 0 else mp.mpf(1)
        return 1 - self.sf(x) if x >= 0 else self.sf(-x)

    def m1(self, a, b):
        return self._t1(a) - self._t1(b)

    def m0(self, a, b):
        return self._cdf(b) - self._cdf(a)


def equal_mass_distortion(law: MpLaw, bits: int):
    """Exact equal-mass distortion at ``K = 2**bits`` levels (mpmath number)."""
    K = 2**bits
    half = [law.isf(mp.mpf(K - k) / K) for k in range(K // 2, K)]  # q_k for k >= K/2 (q >= 0)
    q = [-z for z in reversed(half[1:])] + half  # q_1 .. q_{K-1}
    edges = [mp.ninf] + q + [mp.inf]
    return 1 - K * mp.fsum(law.m1(edges[k], edges[k + 1]) ** 2 for k in range(K))


def nearest_level_distortion(law: MpLaw, levels):
    """Distortion of the nearest-neighbour quantizer with the given levels, and the largest
    centroid residual relative to the local level spacing."""
    y = [mp.mpf(float(v)) for v in levels]
    K = len(y)
    if K == 1:
        return 1 + y[0] ** 2, mp.mpf(0)
    edges = [mp.ninf] + [(y[k] + y[k + 1]) / 2 for k in range(K - 1)] + [mp.inf]
    m0 = [law.m0(edges[k], edges[k + 1]) for k in range(K)]
    m1 = [law.m1(edges[k], edges[k + 1]) for k in range(K)]
    d = 1 - mp.fsum(2 * y[k] * m1[k] - y[k] ** 2 * m0[k] for k in range(K))
    spacing = [y[min(k + 1, K - 1)] - y[min(k + 1, K - 1) - 1] for k in range(K)]
    residual = max(abs(y[k] - m1[k] / m0[k]) / spacing[k] for k in range(K))
    return d, residual


def rho_tables_benchmark(*, max_bits: int):
    """Time the library's rho tables and compare them with the mpmath reference.

    Returns
    -------
    seconds : float
        Wall time of ``rho_table`` for the four laws, b = 1..max_bits.
    reference_seconds : float
        Wall time of the mpmath reference.
    max_rel_err : float
        Largest ``|rho - rho_ref| / rho_ref`` over all laws and bits.
    note : str
    """
    bits = list(range(1, max_bits + 1))
    laws = [make_law(family, **shape) for family, shape in LAWS]
    start = time.perf_counter()
    tables = [rho_table(law, bits=bits, n=None, method="equal_mass", against="lloyd_max") for law in laws]
    seconds = time.perf_counter() - start
    lloyd_levels = {(i, b): law_quantizer(law, method="lloyd_max", bits=b).levels
                    for i, law in enumerate(laws) for b in bits}
    max_rel, max_em_rel, max_residual, worst = 0.0, 0.0, 0.0, ""
    per_law = {}
    with mp.workdps(DPS):
        start = time.perf_counter()
        for i, ((family, shape), law, table) in enumerate(zip(LAWS, laws, tables)):
            ref_law = MpLaw(family, **shape)
            if abs(float(ref_law.scale) - float(law.scale)) > 1e-14 * float(ref_law.scale):
                raise RuntimeError(f"{family}: unit-variance scale differs ({law.scale} vs {ref_law.scale})")
            for row in table:
                d_em = equal_mass_distortion(ref_law, row.bits)
                d_lm, residual = nearest_level_distortion(ref_law, lloyd_levels[(i, row.bits)])
                rho_ref = d_em / d_lm
                rel = float(abs(row.rho - rho_ref) / rho_ref)
                per_law[family] = max(per_law.get(family, 0.0), rel)
                if rel > max_rel:
                    max_rel, worst = rel, f"{law.describe().split('(')[0]}{shape or ''} b={row.bits}"
                max_em_rel = max(max_em_rel, float(abs(row.distortion_method - d_em) / d_em))
                max_residual = max(max_residual, float(residual))
        reference_seconds = time.perf_counter() - start
    note = (f"rho = D_equal_mass / D_lloyd_max at the law level, laws "
            f"{', '.join(law.describe().split('(')[0] + str(shape or '') for law, (_, shape) in zip(laws, LAWS))}, "
            f"b=1..{max_bits}; max rel err of rho {max_rel:.1e} (at {worst}), of D_equal_mass alone {max_em_rel:.1e}; "
            f"max rel err of rho per law: {', '.join(f'{k} {v:.1e}' for k, v in per_law.items())}; "
            f"Lloyd levels' largest centroid residual / spacing {max_residual:.1e}")
    return seconds, reference_seconds, max_rel, note
