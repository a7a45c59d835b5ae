r"""Exact per-weight distortion ``D_Q(b)`` of every quantizer on a weight law.

Three regimes, each result saying which one produced it (``Distortion.how``):

``"exact"`` -- the law itself (``n=None``).  Defined for the methods that are defined on a
continuous law:

* ``equal_mass``: cells between the quantiles ``F^{-1}(k/K)``, each replaced by its
  conditional mean; ``D = sum_k int_cell (x - E[X | cell])^2 p(x) dx``.
* ``lloyd_max``: the MSE-optimal K-level quantizer of the law, solved to convergence by
  damped Newton's method (a Lloyd step where the Jacobian is singular) on the centroid conditions ``y_k = E[X | t_{k-1} < X <= t_k]`` with
  ``t_k = (y_k + y_{k+1}) / 2`` (tridiagonal Jacobian from exact partial moments:
  ``d mu_k / d t_k = p(t_k)(t_k - mu_k) / P_k``), stopped when every centroid residual is
  below ``1e-10`` of the local level spacing (the rounding floor of the centroids is about
  ``1e-12``; the distortion is stationary in the levels, so its error is of second order).
* ``uniform_mse``: ``K`` equally spaced levels ``loc + c(-1 + 2k/(K-1))``, nearest-level
  cells (the outer two absorb the tails: clipping), with the clip ``c`` minimizing ``D(c)``
  (grid scan, then a root of ``dD/dc = (2/c) sum_k y_k (y_k P_k - M1_k)`` by Brent's method).
  For the symmetric laws here the search is over symmetric ranges.

``uniform_minmax``, ``uniform_absmax``, ``piecewise_quantile``, ``pwlq`` and ``log2`` place
their levels at the sample extremes (or absmax/quantile breakpoints including them), which
are infinite on an unbounded law; ``normal_float`` scales by a block absmax.  They are
defined only for a finite ``n`` and the law-level call raises a ``ValueError`` saying so.

``"finite-n exact"`` -- ``uniform_minmax`` on ``n`` iid weights.  With ``a = min``,
``b = max`` both levels (zero error) and the other ``n - 2`` weights iid on ``(a, b)``,

.. math::

    D_n = \frac{n-2}{n} \, E\!\left[\frac{G(a, b)}{F(b) - F(a)}\right]
        = \int_0^1 \!\! \int_0^1 G\big(F^{-1}(r\theta), F^{-1}(1 - r(1-\theta))\big)
          \, d\theta \, dq, \qquad r = B_{2, n-2}^{-1}(q),

where ``G(a, b) = sum_k int_cell (x - y_k)^2 p`` over the uniform grid on ``[a, b]``:
the joint density ``n(n-1) p(a) p(b) (F(b)-F(a))^{n-2}`` becomes, in the tail masses
``u = r theta``, ``v = r(1 - theta)``, a Beta(2, n-2) law for ``r = u + v`` and a uniform
``theta``.  Both integrals are done by tanh-sinh quadrature (the integrand has integrable
endpoint singularities), the inner one split where it bends sharply, refined until two
successive levels agree to ``1e-9`` (:mod:`fmq_theory.theory.minmax_quadrature`).

``"finite-n exact"`` is used where that quadrature reaches a relative accuracy of ``1e-6``
(Gaussian at every b; lighter-tailed cases mostly); otherwise (heavy tails at few levels,
and the kink of the Laplace density, see :class:`QuadratureNotConverged`) the result says
``"finite-n quadrature"`` and carries the interval ``value +- 2 |last change|`` (the
quadrature converges algebraically there, each halving of the step shrinking the change by
a factor of 4 or more).

``"monte-carlo"`` -- everything else at finite ``n``: ``replicates`` independent samples of
``n`` weights, quantized by :func:`fmq_theory.quantizers.quantize` (per sample, as one
tensor), the per-weight MSE averaged, with a Student-t 95% interval over replicates.
(For laws without a fourth moment, e.g. Student-t with ``nu <= 4``, the per-replicate MSE
can have infinite variance and the interval is only indicative.)

References
----------
.. [1] J. Max, "Quantizing for minimum distortion", *IRE Trans. Inf. Theory* 6 (1960) 7-12.
.. [2] S. P. Lloyd, "Least squares quantization in PCM", *IEEE Trans. Inf. Theory* 28 (1982)
   129-137.
.. [3] H. Takahasi, M. Mori, "Double exponential formulas for numerical integration",
   *Publ. RIMS* 9 (1974) 721-741 (tanh-sinh quadrature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize, stats

from fmq_theory import __version__
from fmq_theory._util import check_positive_int
from fmq_theory.quantizers import quantize
from fmq_theory.theory._checks import check_bit_list, check_bits as _check_bits, check_sample_size as _check_n
from fmq_theory.theory.laws import ContinuousLaw, Empirical, Gaussian, GenGaussian, Laplace, StudentT
from fmq_theory.theory.minmax_quadrature import QuadratureNotConverged, minmax_finite_n
from fmq_theory.vocab import FINITE_N_EXACT_METHODS, LAW_METHODS, METHODS

def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(METHODS)}")


@dataclass(frozen=True, eq=False)
class LawQuantizer:
    """A K-level quantizer of a continuous law and its exact distortion.

    Attributes
    ----------
    method : str
        ``"equal_mass"``, ``"lloyd_max"`` or ``"uniform_mse"``.
    bits : int
        ``K = 2**bits`` levels.
    law : str
        ``law.describe()``.
    thresholds : numpy.ndarray, shape (K - 1,)
        Cell boundaries, ascending (cells are ``(t_{k-1}, t_k]`` with ``t_0 = -inf``,
        ``t_K = +inf``).
    levels : numpy.ndarray, shape (K,)
        Reconstruction level of each cell.
    masses : numpy.ndarray, shape (K,)
        Probability of each cell.
    cell_errors : numpy.ndarray, shape (K,)
        ``int_cell (x - level)^2 p(x) dx``.
    distortion : float
        ``sum(cell_errors)``: the per-weight MSE, equal to ``W2^2`` between the law and its
        image (the quantizer is monotone).
    iterations : int
        Newton iterations (``lloyd_max``), Brent evaluations (``uniform_mse``), 0 otherwise.
    """

    method: str
    bits: int
    law: str
    thresholds: np.ndarray
    levels: np.ndarray
    masses: np.ndarray
    cell_errors: np.ndarray
    distortion: float
    iterations: int


def _cells(law, thresholds, levels):
    lo = np.concatenate(([-np.inf], thresholds))
    hi = np.concatenate((thresholds, [np.inf]))
    return lo, hi, law.partial_moment(0, lo, hi), law.cell_sq_error(lo, hi, levels)


def _quantile_grid(law, K):
    """``F^{-1}(k/K)``, k = 1..K-1, evaluated from the nearer tail."""
    k = np.arange(1, K)
    u = k / K
    return np.where(u <= 0.5, law.ppf(np.minimum(u, 0.5)), law.isf(np.minimum(1.0 - u, 0.5)))


def _equal_mass(law, K):
    t = _quantile_grid(law, K)
    lo = np.concatenate(([-np.inf], t))
    hi = np.concatenate((t, [np.inf]))
    levels = law.mean_in(lo, hi)
    return t, levels, 0


def _centroid_residual(law, levels):
    t = 0.5 * (levels[:-1] + levels[1:])
    lo = np.concatenate(([-np.inf], t))
    hi = np.concatenate((t, [np.inf]))
    m0 = law.partial_moment(0, lo, hi)
    mu = law.mean_in(lo, hi)
    return levels - mu, t, lo, hi, m0, mu


def _compander_law(law):
    """The law with density proportional to ``p^(1/3)`` (Panter-Dite point density).

    Same family: Gaussian/Laplace scale x sqrt(3) / x 3, Student-t(nu) -> Student-t((nu-2)/3)
    scaled by sqrt(3 nu / (nu - 2)), generalized Gaussian(beta) scale x 3^(1/beta).
    """
    if isinstance(law, Gaussian):
        return Gaussian(scale=law.scale * np.sqrt(3.0), loc=law.loc)
    if isinstance(law, Laplace):
        return Laplace(scale=law.scale * 3.0, loc=law.loc)
    if isinstance(law, StudentT):
        nu = (law.nu - 2.0) / 3.0
        return StudentT(nu=nu, scale=law.scale * np.sqrt(law.nu / nu), loc=law.loc)
    if isinstance(law, GenGaussian):
        return GenGaussian(beta=law.beta, scale=law.scale * 3.0 ** (1.0 / law.beta), loc=law.loc)
    raise TypeError(f"law={law!r} has no known compander law")


def _lloyd_max(law, K, *, tol=1e-10, max_iter=200):
    """Newton's method on the centroid conditions, started from the Panter-Dite compander."""
    if K == 1:
        return np.zeros(0), np.array([law.loc]), 0
    t0 = _quantile_grid(_compander_law(law), K)
    levels = law.mean_in(np.concatenate(([-np.inf], t0)), np.concatenate((t0, [np.inf])))
    spacing = lambda y: np.diff(y)[np.minimum(np.arange(K), K - 2)]  # noqa: E731
    for it in range(1, max_iter + 1):
        res, t, lo, hi, m0, mu = _centroid_residual(law, levels)
        err = np.max(np.abs(res) / spacing(levels))
        if err < tol:
            return t, levels, it - 1
        p_lo = np.where(np.isfinite(lo), law.pdf(np.where(np.isfinite(lo), lo, 0.0)), 0.0)
        p_hi = np.where(np.isfinite(hi), law.pdf(np.where(np.isfinite(hi), hi, 0.0)), 0.0)
        a = np.where(np.isfinite(lo), p_lo * (mu - np.where(np.isfinite(lo), lo, 0.0)) / m0, 0.0)
        b = np.where(np.isfinite(hi), p_hi * (np.where(np.isfinite(hi), hi, 0.0) - mu) / m0, 0.0)
        band = np.zeros((3, K))
        band[0, 1:] = -0.5 * b[:-1]
        band[1] = 1.0 - 0.5 * a - 0.5 * b
        band[2, :-1] = -0.5 * a[1:]
        if not (np.all(np.isfinite(band)) and np.all(np.isfinite(res))):
            raise ValueError(f"law={law.describe()}: the Lloyd-Max Newton iteration at K={K} levels meets "
                             "cells whose density or moments are not finite numbers (float64 underflow in "
                             "the far tail or at the edge of the support); this law is outside the range "
                             "where the exact lloyd_max solver is supported")
        try:
            step = linalg.solve_banded((1, 1), band, -res)
        except linalg.LinAlgError:  # singular Jacobian (e.g. Laplace, b = 2): one Lloyd step
            step = -res
        norm = np.max(np.abs(res) / spacing(levels))
        alpha = 1.0
        while alpha > 1e-6:
            trial = levels + alpha * step
            if np.all(np.diff(trial) > 0):
                r_trial = _centroid_residual(law, trial)[0]
                if np.max(np.abs(r_trial) / spacing(trial)) < norm or alpha < 1e-3:
                    break
            alpha *= 0.5
        levels = trial
    raise ValueError(f"law={law.describe()}: the Lloyd-Max Newton iteration did not converge in "
                     f"{max_iter} steps at K={K} levels (residual {err:.3g}); this law is outside "
                     "the range where the exact lloyd_max solver is supported")


def _uniform_levels(law, K, c):
    return law.loc + c * np.linspace(-1.0, 1.0, K)


def _uniform_distortion(law, K, c):
    y = _uniform_levels(law, K, c)
    t = 0.5 * (y[:-1] + y[1:])
    return float(np.sum(_cells(law, t, y)[3]))


def _uniform_mse(law, K):
    s = law.std
    top = max(60.0 * s, float(law.isf(1e-15)) - law.loc)  # heavy tails clip far out at high b
    # the 1-bit optimum is c = E|X - loc|, far below the std for a very heavy tail
    mean_abs = 2.0 * float(law.partial_moment(1, law.loc, np.inf) - law.loc * law.partial_moment(0, law.loc, np.inf))
    grid = np.geomspace(min(1e-2 * s, 0.5 * mean_abs), top, 96)
    values = np.array([_uniform_distortion(law, K, c) for c in grid])
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    evaluations = [0]

    def derivative(c):
        evaluations[0] += 1
        y = _uniform_levels(law, K, c) - law.loc
        t = law.loc + 0.5 * (y[:-1] + y[1:])
        lo_, hi_ = np.concatenate(([-np.inf], t)), np.concatenate((t, [np.inf]))
        m0 = law.partial_moment(0, lo_, hi_)
        m1 = law.partial_moment(1, lo_, hi_) - law.loc * m0
        return float(np.sum(y * (y * m0 - m1))) * 2.0 / c

    if derivative(lo) < 0 < derivative(hi):
        c = optimize.brentq(derivative, lo, hi, xtol=1e-14 * hi, rtol=1e-15, maxiter=200)
    else:  # minimum at the end of the scanned range
        c = grid[i]
    y = _uniform_levels(law, K, c)
    return 0.5 * (y[:-1] + y[1:]), y, evaluations[0]


_LAW_SOLVERS = {"equal_mass": _equal_mass, "lloyd_max": _lloyd_max, "uniform_mse": _uniform_mse}


def law_quantizer(law: ContinuousLaw, *, method: str, bits: int) -> LawQuantizer:
    """The ``method`` quantizer of the continuous ``law`` at ``bits`` bits, exactly.

    Parameters
    ----------
    law : ContinuousLaw
        From :mod:`fmq_theory.theory.laws` (needs a finite variance).
    method : {"equal_mass", "lloyd_max", "uniform_mse"}
        The other methods depend on sample extremes and need a finite ``n``.
    bits : int
        1..12.

    Examples
    --------
    >>> from fmq_theory.theory.laws import make_law
    >>> round(law_quantizer(make_law("gaussian"), method="lloyd_max", bits=1).distortion, 6)
    0.36338
    """
    _check_method(method)
    bits = _check_bits(bits)
    if not isinstance(law, ContinuousLaw):
        raise TypeError(f"law={law!r} must be a ContinuousLaw from fmq_theory.theory.laws")
    if method not in LAW_METHODS:
        raise ValueError(
            f"method={method!r} is defined only for a finite number of weights n (its levels "
            "depend on the sample extremes or a block absmax, which are infinite or random on "
            f"the law); pass n=... (--n on the command line), or use one of {', '.join(LAW_METHODS)} on the law itself")
    law.variance  # raises for infinite variance
    K = 2**bits
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            t, levels, iterations = _LAW_SOLVERS[method](law, K)
            _, _, masses, errors = _cells(law, t, levels)
    except FloatingPointError as exc:
        raise ValueError(
            f"law={law.describe()}: the exact {method} quantizer at bits={bits} leaves the float64 "
            f"range ({exc}); this law is outside the range where it is supported") from exc
    if not (np.all(np.isfinite(levels)) and np.all(np.isfinite(errors))):
        raise ValueError(f"law={law.describe()}: the exact {method} quantizer at bits={bits} is not finite")
    return LawQuantizer(method=method, bits=bits, law=law.describe(), thresholds=t, levels=levels,
                        masses=masses, cell_errors=errors, distortion=float(np.sum(errors)),
                        iterations=int(iterations))


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Distortion:
    """Per-weight mean squared error of one method at one bit width on one law.

    Attributes
    ----------
    law : str
        Family name (``"gaussian"``, ..., ``"empirical"``).
    params : dict
        Every law parameter (shape, ``scale``, ``loc``; ``n`` for an empirical law).
    method : str
        Quantizer name.
    bits : int
        Bits per weight (``K = 2**bits`` levels).
    n : int or None
        Weights per quantized tensor; ``None`` for the law itself.
    distortion : float
        ``E |w - Q(w)|^2`` per weight (Monte Carlo: the mean over replicates).
    how : {"exact", "finite-n exact", "finite-n quadrature", "monte-carlo"}
        How the number was obtained.
    interval : tuple of float or None
        95% confidence interval ``(low, high)`` for Monte Carlo; the quadrature error
        interval for ``"finite-n quadrature"``; ``None`` when exact.
    replicates : int or None
        Monte Carlo replicates (independent samples of ``n`` weights).
    seed : int or None
        Seed of the Monte Carlo samples (replicate ``r`` uses ``default_rng([seed, r])``).
    version : str
        ``fmq_theory`` version that computed it.
    """

    law: str
    params: dict
    method: str
    bits: int
    n: int | None
    distortion: float
    how: str
    interval: tuple | None = None
    replicates: int | None = None
    seed: int | None = None
    version: str = __version__


def default_replicates(n: int) -> int:
    """Monte Carlo replicates used when none are given: about 1e7 weights in all, 10..2000."""
    return int(np.clip(np.ceil(1.0e7 / _check_n(n)), 10, 2000))


def distortion(law, *, method: str, bits: int, n: int | None = None, replicates: int | None = None,
               seed: int = 0) -> Distortion:
    """Per-weight MSE of ``method`` at ``bits`` bits on ``law`` (``n=None``) or on ``n`` iid weights.

    Parameters
    ----------
    law : ContinuousLaw or Empirical
        An :class:`~fmq_theory.theory.laws.Empirical` law is quantized as it is (exact, its own
        ``n``; ``n`` must then be ``None``).
    method : str
        One of :data:`fmq_theory.vocab.METHODS`.
    bits : int
        1..12.
    n : int, optional
        Weights per tensor; ``None`` for the law-level distortion.
    replicates : int, optional
        Monte Carlo replicates (default :func:`default_replicates`).
    seed : int
        Monte Carlo seed.

    Returns
    -------
    Distortion
    """
    return distortions(law, method=method, bits=[bits], n=n, replicates=replicates, seed=seed)[0]


def distortions(law, *, method: str, bits, n: int | None = None, replicates: int | None = None,
                seed: int = 0, quad_rtol: float = 1e-6) -> tuple:
    """:func:`distortion` for several bit widths; Monte Carlo reuses one set of samples.

    ``quad_rtol`` is the tolerance of the finite-n ``uniform_minmax`` quadrature
    (:func:`minmax_finite_n`): results within it are ``"finite-n exact"``, others
    ``"finite-n quadrature"`` with an error interval.

    Returns
    -------
    tuple of Distortion
        One per entry of ``bits``, in order.
    """
    _check_method(method)
    bits = check_bit_list(bits)
    if isinstance(law, Empirical):
        if n is not None:
            raise ValueError(f"n={n!r} must be None for an empirical law (its size is n)")
        return tuple(_empirical(law, method, b) for b in bits)
    if not isinstance(law, ContinuousLaw):
        raise TypeError(f"law={law!r} must be a law from fmq_theory.theory.laws")
    if n is None:
        return tuple(Distortion(law=law.name, params=law.params, method=method, bits=b, n=None,
                                distortion=law_quantizer(law, method=method, bits=b).distortion,
                                how="exact") for b in bits)
    n = _check_n(n)
    exact, quadrature = {}, {}
    if method in FINITE_N_EXACT_METHODS:
        for b in bits:
            try:
                exact[b] = minmax_finite_n(law, bits=b, n=n, rtol=quad_rtol)
            except QuadratureNotConverged as exc:
                quadrature[b] = (exc.value, 2.0 * exc.change)
    mc_bits = [b for b in bits if b not in exact and b not in quadrature]
    reps = default_replicates(n) if replicates is None else replicates
    per_rep = dict(zip(mc_bits, monte_carlo_replicates(law, method=method, bits=mc_bits, n=n,
                                                        replicates=reps, seed=seed))) if mc_bits else {}
    out = []
    for b in bits:
        if b in exact:
            out.append(Distortion(law=law.name, params=law.params, method=method, bits=b, n=n,
                                  distortion=exact[b], how="finite-n exact"))
            continue
        if b in quadrature:
            value, err = quadrature[b]
            out.append(Distortion(law=law.name, params=law.params, method=method, bits=b, n=n,
                                  distortion=value, how="finite-n quadrature",
                                  interval=(value - err, value + err)))
            continue
        mean, lo, hi = mean_interval(per_rep[b])
        out.append(Distortion(law=law.name, params=law.params, method=method, bits=b, n=n,
                              distortion=mean, how="monte-carlo", interval=(lo, hi),
                              replicates=int(reps), seed=int(seed)))
    return tuple(out)


def _empirical(law, method, bits):
    x = law.values
    q = np.asarray(quantize(x, method=method, bits=bits, granularity="tensor").dequantize(), dtype=float)
    return Distortion(law="empirical", params=law.params, method=method, bits=bits, n=int(x.size),
                      distortion=float(np.mean((x - q) ** 2)), how="exact")


def mean_interval(values, *, confidence: float = 0.95):
    """Mean and Student-t ``confidence`` interval of i.i.d. replicate values.

    Parameters
    ----------
    values : array_like of float
        Finite, at least one (one value gives the interval ``(-inf, inf)``).
    confidence : float
        In ``(0, 1)``.

    Raises
    ------
    ValueError
        ``values`` empty, not real or not finite; ``confidence`` outside ``(0, 1)``.
    """
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.integer, np.floating)) \
            or not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} must be a number in (0, 1)")
    try:
        values = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values must be real numbers: {exc}") from exc
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"values must be finite and non-empty, got {values.size} value(s)")
    mean = float(np.mean(values))
    if values.size < 2:
        return mean, -np.inf, np.inf
    half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * np.std(values, ddof=1) / np.sqrt(values.size)
    return mean, mean - float(half), mean + float(half)


#: Largest ``n`` of one Monte Carlo replicate (0.8 GB of float64 weights, a few times that while
#: quantizing).
MAX_MONTE_CARLO_N = 10**8


def monte_carlo_replicates(law, *, method: str, bits, n: int, replicates: int, seed: int = 0) -> np.ndarray:
    """Per-replicate per-weight MSE of the real quantizer on iid samples.

    Replicate ``r`` draws ``n`` weights with ``numpy.random.default_rng([seed, r])`` (so the
    same seed gives the same samples for every method and bit width: common random numbers)
    and quantizes them as one tensor (replicates are batched as the channels of one
    array, which the quantizers treat exactly as separate tensors).

    Returns
    -------
    numpy.ndarray, shape (len(bits), replicates)
    """
    _check_method(method)
    bits = check_bit_list(bits)
    n = _check_n(n)
    replicates = check_positive_int(replicates, name="replicates")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    if n > MAX_MONTE_CARLO_N:
        raise ValueError(f"n={n!r} is too large for a Monte Carlo estimate: at most {MAX_MONTE_CARLO_N:.0e} "
                         "weights per replicate (each replicate is held in memory, 8 bytes a weight)")
    out = np.empty((len(bits), replicates))
    rows = max(1, min(replicates, int(4e6) // n))
    for start in range(0, replicates, rows):
        reps = range(start, min(start + rows, replicates))
        w = np.stack([law.sample(n, rng=np.random.default_rng([int(seed), r])) for r in reps])
        for i, b in enumerate(bits):
            # one channel per replicate: the same as quantizing each sample as a tensor
            q = np.asarray(quantize(w, method=method, bits=b, granularity="channel").dequantize(), dtype=float)
            out[i, start:start + len(reps)] = np.mean((w - q) ** 2, axis=1)
    return out


# ---------------------------------------------------------------------------------------
# Effective exponent
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exponent:
    """Effective exponent ``-log2(D(b) / D(b-1))`` between two bit widths.

    ``D ~ C 2^(-2b)`` gives 2; a slower decay gives less.

    Attributes
    ----------
    law : str
    params : dict
    method : str
    n : int or None
    bits : int
        The upper bit width ``b`` (the exponent is between ``b - 1`` and ``b``).
    exponent : float or None
        ``None`` where ``D(b)`` or ``D(b-1)`` is 0 (every weight is a level, e.g. ``n <= 2``
        for ``uniform_minmax``), where the exponent is undefined.
    how : str
        ``how`` of the two distortions.
    """

    law: str
    params: dict
    method: str
    n: int | None
    bits: int
    exponent: float | None
    how: str


def effective_exponent(previous: float, current: float) -> float | None:
    """``-log2(current / previous)`` for two distortions ``D(b-1)``, ``D(b)``; ``None`` when
    either is 0 (a quantizer that is exact on the sample has no decay rate).

    Examples
    --------
    >>> effective_exponent(0.25, 0.0625), effective_exponent(0.0, 0.0)
    (2.0, None)
    """
    if previous < 0 or current < 0 or not (np.isfinite(previous) and np.isfinite(current)):
        raise ValueError(f"distortions must be finite and >= 0, got {previous!r} and {current!r}")
    if previous == 0 or current == 0:
        return None
    ratio = current / previous
    if 0 < ratio < np.inf:
        return float(-np.log2(ratio))
    return float(np.log2(previous) - np.log2(current))  # the ratio over- or underflows float64


def effective_exponents(rows) -> tuple:
    """Finite differences ``-log2 D(b) + log2 D(b-1)`` over consecutive :class:`Distortion` rows.

    Parameters
    ----------
    rows : sequence of Distortion
        Same law, method and n, consecutive bit widths.

    Returns
    -------
    tuple of Exponent
        One per consecutive pair.
    """
    rows = list(rows)
    out = []
    for prev, cur in zip(rows[:-1], rows[1:]):
        if (prev.law, prev.params, prev.method, prev.n) != (cur.law, cur.params, cur.method, cur.n) \
                or cur.bits != prev.bits + 1:
            raise ValueError("rows must share law, params, method and n and have consecutive bits")
        out.append(Exponent(law=cur.law, params=cur.params, method=cur.method, n=cur.n, bits=cur.bits,
                            exponent=effective_exponent(prev.distortion, cur.distortion), how=cur.how))
    return tuple(out)


__all__ = [
    "LawQuantizer", "law_quantizer", "Distortion", "distortion", "distortions", "default_replicates",
    "mean_interval", "monte_carlo_replicates", "minmax_finite_n", "QuadratureNotConverged", "Exponent",
    "effective_exponent", "effective_exponents", "MAX_MONTE_CARLO_N",
]
