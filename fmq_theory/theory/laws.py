r"""Weight laws: Gaussian, Laplace, Student-t, generalized Gaussian, and the empirical law.

Every parametric law is a location-scale family ``X = loc + scale * Z`` of a symmetric
standard law ``Z``.  By default ``scale`` is chosen so that ``Var X = 1`` (unit variance);
pass ``scale=`` to use the family's own scale parameter instead.

Each law gives its density, cdf, survival function, quantile function (``ppf`` and the
tail-accurate ``isf``) and the *partial moments*

.. math::

    M_k(a, b) = \int_a^b x^k \, p(x) \, dx, \qquad k = 0, 1, 2,

in closed form, built from the standard upper-tail moments
:math:`T_k(z) = \int_z^\infty t^k p_0(t)\,dt` (:math:`z \ge 0`):

* Gaussian: :math:`T_0 = \tfrac12 \operatorname{erfc}(z/\sqrt2)`, :math:`T_1 = \varphi(z)`,
  :math:`T_2 = T_0 + z \varphi(z)`.
* Laplace (:math:`p_0 = \tfrac12 e^{-|z|}`): :math:`T_0 = \tfrac12 e^{-z}`,
  :math:`T_1 = \tfrac12 (z+1) e^{-z}`, :math:`T_2 = \tfrac12 (z^2+2z+2) e^{-z}`.
* Student-t(:math:`\nu`), :math:`x_z = \nu/(\nu+z^2)`, :math:`c_\nu = \Gamma(\tfrac{\nu+1}2)
  / (\sqrt{\nu\pi}\,\Gamma(\tfrac\nu2))`: :math:`T_0 = \tfrac12 I_{x_z}(\tfrac\nu2, \tfrac12)`,
  :math:`T_1 = c_\nu \tfrac{\nu}{\nu-1} (1+z^2/\nu)^{-(\nu-1)/2}` (:math:`\nu > 1`),
  :math:`T_2 = \tfrac12 c_\nu \nu^{3/2} B(\tfrac\nu2 - 1, \tfrac32)\, I_{x_z}(\tfrac\nu2 - 1,
  \tfrac32) = \frac{\nu}{2(\nu-2)} I_{x_z}(\tfrac\nu2 - 1, \tfrac32)` (:math:`\nu > 2`; the front
  factor is :math:`T_2(0) = \operatorname{Var} T / 2`), with :math:`I` the regularized incomplete
  beta function, evaluated as :math:`1 - I_{1 - x_z}` so that :math:`x_z` never rounds to 1.
* Generalized Gaussian(:math:`\beta`) (:math:`p_0 = \beta e^{-|z|^\beta} / (2\Gamma(1/\beta))`):
  :math:`T_k = \Gamma(\tfrac{k+1}\beta) Q(\tfrac{k+1}\beta, z^\beta) / (2\Gamma(1/\beta))`,
  with :math:`Q` the regularized upper incomplete gamma function.

and the head moments :math:`H_k(z) = \int_0^z t^k p_0(t)\,dt = T_k(0) - T_k(z)`, which each family
writes with the complementary special function (:math:`P = 1 - Q`, :math:`I_{1-x_z}`,
:math:`\operatorname{expm1}`) so that they keep full relative precision as :math:`z \to 0`
(the difference :math:`T_k(0) - T_k(z)` would leave an absolute error
:math:`\epsilon\, T_k(0)` on a result of size :math:`z^{k+1}`):

* Gaussian: :math:`H_k = \tfrac{2^{(k-1)/2}}{\sqrt{2\pi}} \Gamma(\tfrac{k+1}2)
  P(\tfrac{k+1}2, \tfrac{z^2}2)`, i.e. :math:`\tfrac12 P(\tfrac12, \tfrac{z^2}2)`,
  :math:`\varphi(0) P(1, \tfrac{z^2}2)`, :math:`\tfrac12 P(\tfrac32, \tfrac{z^2}2)`.
* Laplace: :math:`H_k = \tfrac12 k!\, P(k+1, z)`.
* Student-t: :math:`H_0 = \tfrac12 I_{1-x_z}(\tfrac12, \tfrac\nu2)`,
  :math:`H_1 = -c_\nu \tfrac{\nu}{\nu-1} \operatorname{expm1}(-\tfrac{\nu-1}2
  \operatorname{log1p}(z^2/\nu))`, :math:`H_2 = \frac{\nu}{2(\nu-2)} I_{1-x_z}(\tfrac32,
  \tfrac\nu2 - 1)`.
* Generalized Gaussian: :math:`H_k = \Gamma(\tfrac{k+1}\beta) P(\tfrac{k+1}\beta, z^\beta)
  / (2\Gamma(1/\beta))`.

The squared error of one cell about a level, :math:`\int_a^b (x-c)^2 p(x)\,dx`
(:meth:`ContinuousLaw.cell_sq_error`), is the building block of every exact distortion in
:mod:`fmq_theory.theory.distortion`.  Its closed form :math:`M_2 - 2cM_1 + c^2 M_0` cancels
catastrophically on narrow cells far from the centre, so where the cancellation factor
exceeds :data:`_CANCELLATION_LIMIT` the cell is integrated by Gauss-Legendre quadrature
instead (the density is analytic on such a cell, so the rule is exact to rounding).  A cell
that straddles the centre, where the density has a kink (Laplace) or a cusp (generalized
Gaussian with non-integer :math:`\beta`) and quadrature would not be exact, keeps the closed
form: its partial moments are sums of head moments, each exact to rounding, and about a
level :math:`c` with :math:`|c| \lesssim` the cell's width their combination cancels by a
factor of at most about 50 (:math:`12 (1 + |c|/w)^2` for a nearly flat density).

Fitting the families to real weights is :mod:`fmq_theory.theory.law_fit`.

References
----------
.. [1] N. L. Johnson, S. Kotz, N. Balakrishnan, *Continuous Univariate Distributions*, vol. 2,
   2nd ed., Wiley 1995 (Student-t, Laplace, generalized Gaussian moments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from fmq_theory.vocab import LAWS


#: Above this cancellation factor ``(M2 + 2|c M1| + c^2 M0) / error`` a cell is integrated by
#: Gauss-Legendre quadrature instead of the closed form (which then keeps >= 13 digits).
_CANCELLATION_LIMIT = 1.0e3

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)

#: Largest ``log(Gamma(3/beta) / Gamma(1/beta))`` (the generalized Gaussian's standard variance)
#: for which a unit-variance law is built: its scale ``e^(-350)`` and its tail quantiles stay
#: normal float64 numbers.  It is reached at ``beta`` = 0.0140303 (mpmath); :data:`_BETA_MIN`,
#: the bound the error message advises, is that rounded up.
_LOG_VARIANCE0_LIMIT = 700.0
_BETA_MIN = 0.0141

#: From this ``nu`` on, the Student-t formulas are the Gaussian ones: wherever the tail mass
#: is above 1e-300 (``|z| < 38``) the two densities differ by a relative ``z^4 / (4 nu) < 6e-14``
#: and the unit-variance scales by ``1/nu``, below rounding.  Below it the incomplete-beta
#: forms are exact to ~1e-13 (checked against mpmath up to ``nu = 1e25``).
_NU_GAUSSIAN = 1.0e20
#: From this ``nu`` on the Student-t survival function is the complemented incomplete beta
#: function (``stdtr`` loses up to 1e-11 relative at large ``nu``).
_NU_COMPLEMENT = 1.0e3
#: ``log Gamma(x + 1/2) - log Gamma(x) - log(x)/2 = S(x)`` by its asymptotic series
#: ``S(x) = sum_j s_j x^-(2j+1)`` (Stirling; coefficients from the Bernoulli polynomials,
#: ``s_j = (B_{2j+2}(1/2) - B_{2j+2}(0)) / ((2j+1)(2j+2))``) from this ``x = nu / 2`` on, where the
#: first omitted term is below 1e-20 relative: the two log-gammas differ by ``O(log x)``
#: while each is ``O(x log x)``, so their difference cancels ``log10(x)`` digits.
_LOG_C_SERIES_FROM = 32.0
_LOG_GAMMA_HALF_SHIFT = (-1 / 8, 1 / 192, -1 / 640, 17 / 14336, -31 / 18432, 691 / 180224)

#: Range of the law's standard deviation (its ``scale`` where the variance is infinite) that a
#: law may have.  The exact distortions are ``std**2`` times those of the unit law and square
#: values out to the ``1e-15`` tail quantile (``3e7 std`` for Student-t ``nu = 2.001``); the
#: Monte Carlo intervals square the per-replicate distortions (``std**4``).  Measured: every
#: exact solver gives ``std**2`` times the unit law's distortion to ``1e-14`` relative for std
#: ``1e-150 .. 1e120`` at bits 1 and 12 (Gaussian, Laplace, Student-t ``nu = 2.001, 3``,
#: generalized Gaussian ``beta = 0.0141, 0.5``) and fails beyond about ``1e150`` (``uniform_mse``
#: overflows) and below ``1e-200`` (its clip grid underflows to 0); Monte Carlo at ``n = 64``
#: holds at ``1e+-60`` and overflows at ``1e100``.
_STD_RANGE = (1.0e-60, 1.0e60)
#: Largest ``|loc| / std``: the exact solvers work in ``x = loc + scale z``, which loses
#: ``log10(|loc| / std)`` digits.  Measured at bits 1, 4, 8, 12 (Gaussian, Student-t ``nu = 3``,
#: generalized Gaussian ``beta = 0.5``): relative error below ``1.3e-10`` at ``1e6 std``
#: (``4e-8`` at ``1e8``; unnamed scipy errors at ``1e16``); ``lloyd_max`` stops converging
#: from about ``1e3 std`` on at 8-12 bits and says so, naming the law.
_LOC_SPAN = 1.0e6


def _check_positive(name, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} must be a real number") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r} must be a finite number > 0")
    return value


def check_location_scale(std: float, loc: float, *, std_name: str, loc_name: str) -> None:
    """Refuse a law (or a sample) whose ``std`` is outside :data:`_STD_RANGE` or whose ``loc`` is
    more than :data:`_LOC_SPAN` standard deviations from 0, with a ``ValueError`` naming
    ``std_name`` or ``loc_name``."""
    lo, hi = _STD_RANGE
    if not lo <= std <= hi:
        raise ValueError(
            f"{std_name} gives a standard deviation of {std:.3g}, outside {lo:g}..{hi:g} where the "
            "law's distortions are representable; rescale the weights (distortions scale with the variance)")
    if abs(loc) > _LOC_SPAN * std:
        raise ValueError(
            f"{loc_name} is more than {_LOC_SPAN:g} standard deviations ({std:.3g}) from 0: the exact "
            "quantizers would lose that many digits; subtract it from the weights (distortions do not "
            "depend on it)")


@dataclass(frozen=True)
class ContinuousLaw:
    """Base class of the symmetric location-scale laws; use a subclass.

    Attributes
    ----------
    scale : float
        Scale parameter of the family (resolved from ``None`` to the unit-variance value).
    loc : float
        Location (the centre of symmetry).
    """

    scale: float | None = None
    loc: float = 0.0

    #: Family name as in :data:`fmq_theory.vocab.LAWS`.
    name = "law"
    #: Whether the density is analytic on each closed half-line ``[0, inf)``, ``(-inf, 0]``.
    _analytic_half_line = True

    def __post_init__(self):
        self._check_shape()
        loc = float(self.loc)
        if not np.isfinite(loc):
            raise ValueError(f"loc={self.loc!r} must be finite")
        object.__setattr__(self, "loc", loc)
        if self.scale is None:
            object.__setattr__(self, "scale", 1.0 / np.sqrt(self._variance0()))
        else:
            object.__setattr__(self, "scale", _check_positive("scale", self.scale))
        check_location_scale(self.scale * self._spread0(), loc, std_name=f"scale={self.scale!r}",
                             loc_name=f"loc={self.loc!r}")

    # --- family-specific standard law (z >= 0 for the tail functions) ------------------
    def _check_shape(self):
        """Validate the shape parameter (none for Gaussian/Laplace)."""

    def _variance0(self):
        raise NotImplementedError

    def _spread0(self):
        """Standard deviation of the standard law (1 where it is infinite)."""
        return float(np.sqrt(self._variance0()))

    def _pdf0(self, z):
        raise NotImplementedError

    def _sf0(self, z):
        raise NotImplementedError

    def _isf0(self, q):
        raise NotImplementedError

    def _tail_moment0(self, k, z):
        raise NotImplementedError

    def _head(self, k, z):
        """``H_k(z) = int_0^z t^k p0(t) dt = T_k(0) - T_k(z)`` for finite ``z >= 0``, to full
        relative precision as ``z -> 0`` (not as that difference, which cancels there)."""
        raise NotImplementedError

    def _sample0(self, rng, size):
        raise NotImplementedError

    # --- public interface -----------------------------------------------------------------
    @property
    def params(self) -> dict:
        """All parameters as a dict (shape, ``scale``, ``loc``) -- enough to rebuild the law."""
        return {**self._shape_params(), "scale": self.scale, "loc": self.loc}

    def _shape_params(self) -> dict:
        return {}

    @property
    def variance(self) -> float:
        """Variance ``scale**2 * Var Z``; raises ``ValueError`` when it is infinite."""
        return float(self.scale**2 * self._variance0())

    @property
    def std(self) -> float:
        """Standard deviation."""
        return float(np.sqrt(self.variance))

    def pdf(self, x):
        """Density at ``x`` (array-like)."""
        z = (np.asarray(x, dtype=float) - self.loc) / self.scale
        return self._pdf0(np.abs(z)) / self.scale

    def logpdf(self, x):
        """Log-density at ``x``."""
        with np.errstate(divide="ignore"):
            return np.log(self.pdf(x))

    def sf(self, x):
        """Survival function ``P(X > x)``, accurate in the upper tail."""
        z = (np.asarray(x, dtype=float) - self.loc) / self.scale
        upper = self._sf0(np.abs(z))
        return np.where(z >= 0, upper, 1.0 - upper)

    def cdf(self, x):
        """Distribution function ``P(X <= x)``, accurate in the lower tail."""
        z = (np.asarray(x, dtype=float) - self.loc) / self.scale
        lower = self._sf0(np.abs(z))
        return np.where(z <= 0, lower, 1.0 - lower)

    def isf(self, q):
        """Inverse survival function: ``x`` with ``P(X > x) = q``, accurate for small ``q``."""
        q = np.asarray(q, dtype=float)
        if np.any((q < 0) | (q > 1)):
            raise ValueError(f"q must lie in [0, 1]; got values outside: {q[(q < 0) | (q > 1)][:3]}")
        small = np.minimum(q, 1.0 - q)
        with np.errstate(divide="ignore"):
            z = np.where(small > 0, self._isf0(np.where(small > 0, small, 0.5)), np.inf)
        z = np.where(q <= 0.5, z, -z)
        return self.loc + self.scale * z

    def ppf(self, u):
        """Quantile function ``F^{-1}(u)``, accurate for small ``u`` (use :meth:`isf` near 1)."""
        u = np.asarray(u, dtype=float)
        if np.any((u < 0) | (u > 1)):
            raise ValueError(f"u must lie in [0, 1]; got values outside: {u[(u < 0) | (u > 1)][:3]}")
        return 2.0 * self.loc - self.isf(u)

    def partial_moment(self, k: int, a, b):
        r"""``M_k(a, b) = \int_a^b x^k p(x) dx`` for ``k`` in 0, 1, 2 (closed form).

        ``a`` and ``b`` broadcast; infinite endpoints are allowed (``k = 2`` needs a finite
        variance when the interval is unbounded; ``k = 1`` a finite mean).
        """
        if k not in (0, 1, 2):
            raise ValueError(f"k={k!r} must be 0, 1 or 2")
        za = (np.asarray(a, dtype=float) - self.loc) / self.scale
        zb = (np.asarray(b, dtype=float) - self.loc) / self.scale
        m = [self._standard_moment(j, za, zb) for j in range(k + 1)]
        s, c = self.scale, self.loc
        if k == 0:
            return m[0]
        if k == 1:
            return c * m[0] + s * m[1]
        return c * c * m[0] + 2.0 * c * s * m[1] + s * s * m[2]

    def _tail(self, k, z):
        """``T_k(z)`` for ``z >= 0`` (``T_k(inf) = 0``)."""
        finite = np.isfinite(z)
        zz = np.where(finite, z, 0.0)
        return np.where(finite, self._tail_moment0(k, zz), 0.0)

    def _half_line_moment(self, k, za, zb):
        """``int_za^zb z^k p0`` for ``0 <= za <= zb``: difference of tails or of heads,
        whichever is the smaller pair (so the two terms never both dwarf the result)."""
        tail_a = self._tail(k, za)
        by_tails = tail_a - self._tail(k, zb)
        by_heads = self._head(k, np.where(np.isfinite(zb), zb, 0.0)) - self._head(k, za)
        by_heads = np.where(np.isfinite(zb), by_heads, tail_a)
        return np.where(tail_a <= 0.5 * self._tail(k, np.zeros(())), by_tails, by_heads)

    def _standard_moment(self, k, za, zb):
        """``int_za^zb z^k p0(z) dz`` without cancellation in either tail or at 0."""
        za, zb = np.broadcast_arrays(za, zb)
        sign = -1.0 if k % 2 else 1.0
        pos = self._half_line_moment(k, np.maximum(za, 0.0), np.maximum(zb, 0.0))
        neg = sign * self._half_line_moment(k, np.maximum(-zb, 0.0), np.maximum(-za, 0.0))
        straddle = sign * self._half_line_moment(k, np.zeros(()), np.maximum(-za, 0.0)) + \
            self._half_line_moment(k, np.zeros(()), np.maximum(zb, 0.0))
        return np.where(za >= 0, pos, np.where(zb <= 0, neg, straddle))

    def mean_in(self, a, b):
        """Conditional mean ``E[X | a < X <= b]`` (``nan`` for an empty cell).

        Computed as ``center + int (x - center) p / int p`` about the cell midpoint (a finite
        edge for an unbounded cell), so that narrow cells keep full relative precision.
        """
        a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
        fa, fb = np.isfinite(a), np.isfinite(b)
        center = np.where(fa & fb, 0.5 * (np.where(fa, a, 0.0) + np.where(fb, b, 0.0)),
                          np.where(fa, a, np.where(fb, b, self.loc)))
        m0, m1, _ = self.cell_moments(a, b, center)
        with np.errstate(invalid="ignore", divide="ignore"):
            return center + m1 / m0

    def cell_sq_error(self, a, b, level):
        r"""``\int_a^b (x - level)^2 p(x) dx`` (see :meth:`cell_moments`)."""
        return self.cell_moments(a, b, level)[2]

    def cell_moments(self, a, b, center):
        r"""``\int_a^b (x - center)^j p(x) dx`` for ``j = 0, 1, 2``, to ~1e-13 relative per cell.

        The closed form from the partial moments is used where it does not cancel; where its
        cancellation factor (sum of absolute terms over the result) exceeds
        :data:`_CANCELLATION_LIMIT`, and at once for finite cells narrower than 1/20 of their
        distance to 0 or of the scale (whichever is larger), the cell is integrated by 16-node
        Gauss-Legendre quadrature instead.  Such a cell is narrow compared with its distance
        to the nearest singularity of the density (error of order ``(w / 2d)^32``) and with
        the scale on which the density varies, so the rule is exact to rounding; an
        unbounded cell is split into panels of one decade of tail mass each.  The nodes are
        placed from the cell's width ``b - a`` and offset ``a - center``, both formed before
        standardizing, so that a cell narrower than the rounding of its position keeps full
        relative precision.

        Quadrature is never used across 0, where the Laplace density has a kink and the
        generalized Gaussian's ``|x|^beta`` is not analytic unless ``beta`` is an even integer,
        nor within one cell width of 0 for a generalized Gaussian with non-integer ``beta``,
        whose density is not analytic up to 0 either (there the rule would converge only like
        ``rho^-32`` with ``rho`` the Bernstein ellipse through 0, close to 1 for a cell near
        the cusp; from one width away, ``rho >= 3 + sqrt(8)``).  Such a cell keeps the closed
        form, whose partial moments are built from the head moments ``H_k``, each exact to
        rounding however narrow the cell (see the module notes), so cells across or next to 0
        are exact to a few times :math:`10^{-14}` relative too.  Arrays broadcast.

        Returns
        -------
        tuple of numpy.ndarray
            ``(m0, m1, m2)``, each of the broadcast shape.
        """
        xa, xb, xc = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, center)))
        shape = xa.shape
        xa, xb, xc = xa.ravel(), xb.ravel(), xc.ravel()
        za, zb, zc = ((x - self.loc) / self.scale for x in (xa, xb, xc))
        # width and offset to the centre from the raw ends: zb - za and za - zc would carry
        # the rounding of za, zb, zc (eps |z|), a relative error eps |z| / w on a narrow cell
        width = (xb - xa) / self.scale
        offset = (xa - xc) / self.scale
        m0, c1, c2 = np.empty(za.size), np.empty(za.size), np.empty(za.size)
        # cells where quadrature is safe: not straddling 0, and clear of 0 where the density
        # is not analytic up to 0 (one width away for a finite cell).  An end within rounding
        # of 0 (such as a Lloyd threshold of -8e-17 that is 0 by symmetry) counts as touching 0.
        near0 = 1e-12
        sa = np.where(np.abs(za) < near0, 0.0, za)
        sb = np.where(np.abs(zb) < near0, 0.0, zb)
        gap = np.where(sa >= 0, sa, -sb)
        clear = np.where(np.isfinite(width), gap >= width, gap > 0)
        safe = ((sa >= 0) | (sb <= 0)) & (self._analytic_half_line | clear)
        # narrow, finite, safe cells: quadrature at once (their closed form would cancel).
        # Narrow means below 1/20 of the distance to 0 or of the scale, whichever is larger:
        # within a unit of 0 every density varies on the unit scale and has no singularity
        # nearer than a unit (Student-t: poles at +-i sqrt(nu), nu > 2) other than at 0 itself,
        # from which a safe cell is at least one width away
        reach = np.maximum(np.minimum(np.abs(za), np.abs(zb)), 1.0)
        narrow = safe & np.isfinite(width) & (width < 0.05 * reach)
        rest = ~narrow
        if np.any(narrow):
            m0[narrow], c1[narrow], c2[narrow] = self._quadrature_moments(
                za[narrow], zb[narrow], zc[narrow], width=width[narrow], offset=offset[narrow])
        if np.any(rest):
            a, b, c = za[rest], zb[rest], zc[rest]
            p0 = self._standard_moment(0, a, b)
            p1 = self._standard_moment(1, a, b)
            p2 = self._standard_moment(2, a, b)
            q1 = p1 - c * p0
            q2 = p2 - 2.0 * c * p1 + c * c * p0
            mag1 = np.abs(p1) + np.abs(c) * p0
            mag2 = np.abs(p2) + 2.0 * np.abs(c * p1) + c * c * p0
            # the first moment about a level near the cell's centroid always cancels; that is
            # harmless on an unbounded cell (its error, eps * mag1, moves the centroid by a
            # rounding of its own size), where the panel quadrature is the less accurate rule
            # on heavy tails (generalized Gaussian with beta < 1)
            cancels1 = (mag1 > _CANCELLATION_LIMIT * np.abs(q1)) & np.isfinite(a) & np.isfinite(b)
            bad = (q2 <= 0) | (mag2 > _CANCELLATION_LIMIT * np.abs(q2)) | cancels1
            bad &= (b > a) & safe[rest]
            if np.any(bad):
                p0[bad], q1[bad], q2[bad] = self._quadrature_moments(
                    a[bad], b[bad], c[bad], width=width[rest][bad], offset=offset[rest][bad])
            m0[rest], c1[rest], c2[rest] = p0, q1, q2
        s = self.scale
        return m0.reshape(shape), (c1 * s).reshape(shape), (np.maximum(c2, 0.0) * s * s).reshape(shape)

    def _quadrature_moments(self, za, zb, zc, *, width, offset):
        """Gauss-Legendre ``int (z - zc)^j p0(z) dz``, j = 0, 1, 2; unbounded cells on panels.

        ``width = zb - za`` and ``offset = za - zc`` are passed as formed from the raw ends (see
        :meth:`cell_moments`); they place the nodes of a finite cell.
        """
        out = np.zeros((3, za.size))
        finite = np.isfinite(za) & np.isfinite(zb)
        if np.any(finite):
            out[:, finite] = self._gl(za[finite], width=width[finite], offset=offset[finite])
        for sel, inner, sign in ((~np.isfinite(zb), za, 1.0), (~np.isfinite(za), zb, -1.0)):
            sel = sel & ~finite
            if not np.any(sel):
                continue
            start = sign * inner[sel]  # reflect a left-unbounded cell to the right
            level = sign * zc[sel]
            # panels holding one decade of tail mass each, down to 1e-40 of the cell's mass
            mass = self._sf0(np.maximum(start, 0.0))
            decades = 10.0 ** -np.arange(1, 41)
            edges = np.concatenate(
                (start[:, None], self._isf0(np.clip(mass[:, None] * decades[None, :], 1e-300, 0.5))), axis=1)
            edges = np.maximum.accumulate(edges, axis=1)
            total = np.zeros((3, start.size))
            for j in range(edges.shape[1] - 1):
                total += self._gl(edges[:, j], width=edges[:, j + 1] - edges[:, j],
                                  offset=edges[:, j] - level)
            total[1] *= sign
            out[:, sel] = total
        return out[0], out[1], out[2]

    def _gl(self, za, *, width, offset):
        """16-node Gauss-Legendre ``int (z - zc)^j p0(z) dz`` over ``[za, za + width]``, j = 0, 1, 2,
        with ``offset = za - zc``: the distances ``z - zc = offset + width t`` (``t`` in (0, 1))
        are formed without the rounding of ``za`` and ``zc``."""
        t = 0.5 * (1.0 + _GL_NODES[None, :])
        step = width[:, None] * t
        z = za[:, None] + step
        d = offset[:, None] + step
        p = self._pdf0(np.abs(z)) * _GL_WEIGHTS[None, :]
        moments = np.stack((p.sum(axis=1), (d * p).sum(axis=1), (d * d * p).sum(axis=1)))
        return moments * (0.5 * width)[None, :]

    def sample(self, size, *, rng):
        """``size`` iid draws (float64) using the numpy ``Generator`` ``rng``."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng={rng!r} must be a numpy.random.Generator")
        return self.loc + self.scale * self._sample0(rng, size)

    def describe(self) -> str:
        """``name(param=value, ...)`` with every parameter."""
        inner = ", ".join(f"{k}={float(v)!r}" for k, v in self.params.items())
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class Gaussian(ContinuousLaw):
    """Normal law ``N(loc, scale^2)``; unit variance by default."""

    name = "gaussian"

    def _variance0(self):
        return 1.0

    def _pdf0(self, z):
        return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)

    def _sf0(self, z):
        return 0.5 * special.erfc(z / np.sqrt(2.0))

    def _isf0(self, q):
        return -special.ndtri(q)

    def _tail_moment0(self, k, z):
        if k == 0:
            return self._sf0(z)
        if k == 1:
            return self._pdf0(z)
        return self._sf0(z) + z * self._pdf0(z)

    def _head(self, k, z):
        front = (0.5, 1.0 / np.sqrt(2.0 * np.pi), 0.5)[k]
        return front * special.gammainc(0.5 * (k + 1.0), 0.5 * z * z)

    def _sample0(self, rng, size):
        return rng.standard_normal(size)


@dataclass(frozen=True)
class Laplace(ContinuousLaw):
    """Laplace law, density ``exp(-|x - loc|/scale) / (2 scale)``; unit variance by default."""

    name = "laplace"

    def _variance0(self):
        return 2.0

    def _pdf0(self, z):
        return 0.5 * np.exp(-z)

    def _sf0(self, z):
        return 0.5 * np.exp(-z)

    def _isf0(self, q):
        return -np.log(2.0 * q)

    def _tail_moment0(self, k, z):
        poly = (1.0, z + 1.0, z * z + 2.0 * z + 2.0)[k]
        return 0.5 * poly * np.exp(-z)

    def _head(self, k, z):
        return (0.5, 0.5, 1.0)[k] * special.gammainc(k + 1.0, z)

    def _sample0(self, rng, size):
        return rng.laplace(size=size)


@dataclass(frozen=True)
class StudentT(ContinuousLaw):
    """Student-t law with ``nu`` degrees of freedom, ``X = loc + scale * T_nu``.

    Unit variance by default, which needs ``nu > 2``; for ``nu <= 2`` pass ``scale=``
    explicitly (the law is then usable wherever no second moment is needed).
    """

    nu: float = 5.0
    name = "student-t"

    def _check_shape(self):
        object.__setattr__(self, "nu", _check_positive("nu", self.nu))
        if self.scale is None and self.nu <= 2:
            raise ValueError(
                f"nu={self.nu!r} <= 2: the Student-t variance is infinite, so no unit-variance "
                "scale exists; pass scale= explicitly or use nu > 2"
            )

    def _shape_params(self):
        return {"nu": self.nu}

    def _variance0(self):
        if self.nu <= 2:
            raise ValueError(f"nu={self.nu!r} <= 2: the Student-t variance is infinite (needs nu > 2)")
        return self.nu / (self.nu - 2.0)

    def _spread0(self):
        return super()._spread0() if self.nu > 2 else 1.0

    @property
    def _gaussian(self):
        """Whether ``nu`` is so large that the Gaussian formulas are exact to rounding."""
        return self.nu >= _NU_GAUSSIAN

    def _log_c(self):
        nu = self.nu
        x = 0.5 * nu
        if x < _LOG_C_SERIES_FROM:
            return special.gammaln(x + 0.5) - special.gammaln(x) - 0.5 * np.log(nu * np.pi)
        # log c = -log(2 pi)/2 + S(x): the difference of the two log-gammas, of size 1/x,
        # summed directly instead of cancelling between two numbers of size x log x
        inv2 = 1.0 / (x * x)
        series = 0.0
        for coefficient in reversed(_LOG_GAMMA_HALF_SHIFT):
            series = series * inv2 + coefficient
        return -0.5 * np.log(2.0 * np.pi) + series / x

    def _pdf0(self, z):
        if self._gaussian:
            return Gaussian._pdf0(self, z)
        nu = self.nu
        return np.exp(self._log_c() - 0.5 * (nu + 1) * np.log1p(z * z / nu))

    def _sf0(self, z):
        if self._gaussian:
            return Gaussian._sf0(self, z)
        nu = self.nu
        if nu >= _NU_COMPLEMENT:
            # I_x(nu/2, 1/2) = 1 - I_{1-x}(1/2, nu/2), with 1 - x = z^2 / (nu + z^2) exact
            # (x itself rounds to 1 when z^2 << nu, and stdtr loses digits there)
            zz = z * z
            return 0.5 * special.betaincc(0.5, 0.5 * nu, zz / (nu + zz))
        # far tail: I_x(nu/2, 1/2) with x = nu / (nu + z^2) formed without overflow
        far = z > 1e6
        zf = np.where(far, z, 1e6)
        r = nu / zf / zf
        tail = 0.5 * special.betainc(0.5 * nu, 0.5, r / (1.0 + r))
        return np.where(far, tail, special.stdtr(nu, -np.where(far, 0.0, z)))

    def _isf0(self, q):
        if self._gaussian:
            return Gaussian._isf0(self, q)
        # far tail by inverting the incomplete beta form (stdtrit loses accuracy there)
        far = q < 1e-12
        x = special.betaincinv(0.5 * self.nu, 0.5, 2.0 * np.where(far, q, 1e-12))
        tail = np.sqrt(self.nu / x) * np.sqrt(1.0 - x)
        return np.where(far, tail, -special.stdtrit(self.nu, np.where(far, 0.25, q)))

    def _tail_moment0(self, k, z):
        if self._gaussian:
            return Gaussian._tail_moment0(self, k, z)
        nu = self.nu
        if k == 0:
            return self._sf0(z)
        if k == 1:
            if nu <= 1:
                raise ValueError(f"nu={nu!r} <= 1: the Student-t mean is undefined (needs nu > 1)")
            return np.exp(self._log_c() - 0.5 * (nu - 1) * np.log1p(z * z / nu)) * nu / (nu - 1)
        if nu <= 2:
            raise ValueError(f"nu={nu!r} <= 2: the Student-t second moment is infinite (needs nu > 2)")
        zz = z * z
        # c nu^(3/2) B(nu/2 - 1, 3/2) / 2 = T_2(0) = Var(T) / 2 = nu / (2 (nu - 2)) exactly (betaln
        # loses up to 3e-10 of it at large nu); I_x(a, 3/2) as 1 - I_{1-x}(3/2, a) with
        # 1 - x = z^2 / (nu + z^2): no rounding of x to 1
        return nu / (2.0 * (nu - 2.0)) * special.betaincc(1.5, 0.5 * nu - 1.0, zz / (nu + zz))

    def _head(self, k, z):
        if self._gaussian:
            return Gaussian._head(self, k, z)
        nu = self.nu
        # beyond |z| = 1e150, 1 - x_z = z^2 / (nu + z^2) is 1 to rounding (nu < 1e20): capped so
        # that z^2 stays finite
        zz = np.minimum(z, 1e150) ** 2
        if k == 1:
            return -np.exp(self._log_c()) * nu / (nu - 1.0) * np.expm1(-0.5 * (nu - 1.0) * np.log1p(zz / nu))
        if k == 0:
            return 0.5 * special.betainc(0.5, 0.5 * nu, zz / (nu + zz))
        return nu / (2.0 * (nu - 2.0)) * special.betainc(1.5, 0.5 * nu - 1.0, zz / (nu + zz))

    def _sample0(self, rng, size):
        return rng.standard_t(self.nu, size)


@dataclass(frozen=True)
class GenGaussian(ContinuousLaw):
    """Generalized Gaussian law, density ``beta exp(-|z|^beta) / (2 scale Gamma(1/beta))``.

    ``beta = 2`` is a Gaussian, ``beta = 1`` a Laplace law; ``beta < 2`` has heavier tails.
    Unit variance by default.
    """

    beta: float = 2.0
    name = "gen-gaussian"

    @property
    def _analytic_half_line(self):
        return float(self.beta).is_integer()

    def _check_shape(self):
        object.__setattr__(self, "beta", _check_positive("beta", self.beta))
        log_variance0 = special.gammaln(3.0 / self.beta) - special.gammaln(1.0 / self.beta)
        if self.scale is None and not log_variance0 < _LOG_VARIANCE0_LIMIT:
            raise ValueError(
                f"beta={self.beta!r} is too small: the standard law's variance "
                f"Gamma(3/beta)/Gamma(1/beta) = e^{log_variance0:.4g} leaves the float64 range, so the "
                f"unit-variance law cannot be represented; use beta >= {_BETA_MIN} (or pass scale=)"
            )

    def _shape_params(self):
        return {"beta": self.beta}

    def _variance0(self):
        b = self.beta
        return float(np.exp(special.gammaln(3.0 / b) - special.gammaln(1.0 / b)))

    def _pdf0(self, z):
        b = self.beta
        return np.exp(np.log(0.5 * b) - special.gammaln(1.0 / b) - z**b)

    def _sf0(self, z):
        b = self.beta
        return 0.5 * special.gammaincc(1.0 / b, z**b)

    def _isf0(self, q):
        b = self.beta
        return special.gammainccinv(1.0 / b, 2.0 * q) ** (1.0 / b)

    def _tail_moment0(self, k, z):
        b = self.beta
        s = (k + 1.0) / b
        return 0.5 * np.exp(special.gammaln(s) - special.gammaln(1.0 / b)) * special.gammaincc(s, z**b)

    def _head(self, k, z):
        b = self.beta
        s = (k + 1.0) / b
        return 0.5 * np.exp(special.gammaln(s) - special.gammaln(1.0 / b)) * special.gammainc(s, z**b)

    def _sample0(self, rng, size):
        b = self.beta
        magnitude = rng.gamma(1.0 / b, size=size) ** (1.0 / b)
        return np.where(rng.random(size) < 0.5, -magnitude, magnitude)


@dataclass(frozen=True, eq=False)
class Empirical:
    """The empirical law of a finite sample (e.g. the weights of one tensor).

    Attributes
    ----------
    values : numpy.ndarray, shape (n,)
        The sample, sorted ascending, float64.
    """

    values: np.ndarray
    name = "empirical"

    def __post_init__(self):
        x = np.asarray(self.values, dtype=float).ravel()
        if x.size == 0:
            raise ValueError("values is empty: the empirical law needs at least one value")
        if not np.all(np.isfinite(x)):
            raise ValueError("values contains NaN or Inf")
        x = np.sort(x)
        object.__setattr__(self, "values", x)
        object.__setattr__(self, "_csum", [np.concatenate(([0.0], np.cumsum(x**k))) for k in (0, 1, 2)])

    @property
    def params(self) -> dict:
        """``{"n": n}``."""
        return {"n": int(self.values.size)}

    @property
    def variance(self) -> float:
        """Variance of the empirical law (divisor n)."""
        return float(np.var(self.values))

    @property
    def std(self) -> float:
        """Standard deviation of the empirical law."""
        return float(np.sqrt(self.variance))

    def cdf(self, x):
        """``F_n(x) = #{x_i <= x} / n``."""
        return np.searchsorted(self.values, np.asarray(x, dtype=float), side="right") / self.values.size

    def ppf(self, u):
        """Left-continuous inverse: the smallest sample value ``x`` with ``F_n(x) >= u``."""
        u = np.asarray(u, dtype=float)
        if np.any((u < 0) | (u > 1)):
            raise ValueError("u must lie in [0, 1]")
        n = self.values.size
        idx = np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)
        return self.values[idx]

    def partial_moment(self, k: int, a, b):
        """``(1/n) sum_{a < x_i <= b} x_i^k`` for ``k`` in 0, 1, 2."""
        if k not in (0, 1, 2):
            raise ValueError(f"k={k!r} must be 0, 1 or 2")
        n = self.values.size
        lo = np.searchsorted(self.values, np.asarray(a, dtype=float), side="right")
        hi = np.searchsorted(self.values, np.asarray(b, dtype=float), side="right")
        c = self._csum[k]
        return np.where(hi > lo, c[hi] - c[lo], 0.0) / n

    def sample(self, size, *, rng):
        """``size`` draws with replacement."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng={rng!r} must be a numpy.random.Generator")
        return rng.choice(self.values, size=size, replace=True)

    def describe(self) -> str:
        """``empirical(n=...)``."""
        return f"empirical(n={self.values.size})"


#: Each family's class, by its name in :data:`fmq_theory.vocab.LAWS`.
FAMILIES = {"gaussian": Gaussian, "laplace": Laplace, "student-t": StudentT, "gen-gaussian": GenGaussian}


def make_law(name: str, *, nu: float | None = None, beta: float | None = None,
             scale: float | None = None, loc: float = 0.0) -> ContinuousLaw:
    """Build a law by family name (as in :data:`fmq_theory.vocab.LAWS`).

    Parameters
    ----------
    name : str
        ``"gaussian"``, ``"laplace"``, ``"student-t"`` (needs ``nu``) or
        ``"gen-gaussian"`` (needs ``beta``).
    nu, beta : float, optional
        Shape parameters; giving one that the family does not use is an error.
    scale : float, optional
        Family scale parameter; ``None`` gives unit variance.  The law's standard deviation
        (``scale`` where the variance is infinite) must lie in ``1e-60 .. 1e60``.
    loc : float
        Location, at most ``1e6`` standard deviations from 0.

    Examples
    --------
    >>> law = make_law("student-t", nu=5)
    >>> round(float(law.variance), 12), round(float(law.scale), 6)
    (1.0, 0.774597)
    """
    if name not in FAMILIES:
        raise ValueError(f"law={name!r} is not one of {', '.join(LAWS)}")
    if name == "student-t":
        if nu is None:
            raise ValueError("nu is required for law='student-t'")
        if beta is not None:
            raise ValueError(f"beta={beta!r} does not apply to law='student-t'")
        return StudentT(nu=nu, scale=scale, loc=loc)
    if name == "gen-gaussian":
        if beta is None:
            raise ValueError("beta is required for law='gen-gaussian'")
        if nu is not None:
            raise ValueError(f"nu={nu!r} does not apply to law='gen-gaussian'")
        return GenGaussian(beta=beta, scale=scale, loc=loc)
    for arg, value in (("nu", nu), ("beta", beta)):
        if value is not None:
            raise ValueError(f"{arg}={value!r} does not apply to law={name!r}")
    return FAMILIES[name](scale=scale, loc=loc)


__all__ = [
    "ContinuousLaw", "Gaussian", "Laplace", "StudentT", "GenGaussian", "Empirical", "FAMILIES",
    "make_law",
]
