"""Tests of fmq_theory.theory.symbolic against independent mpmath/scipy oracles.

The oracles here are written from the textbook definitions, independently of
``fmq_theory.theory.laws``/``fmq_theory.theory.distortion``: unit-variance densities in mpmath, and the
exact equal-mass distortion from closed-form partial moments at 30 digits (boundaries from
``scipy.stats`` inverse survival functions; a boundary error of 1 ulp changes D by far less
than the tolerances below).
"""

from __future__ import annotations

import functools
import math

import mpmath as mp
import numpy as np
import ot
import pytest
import scipy.stats as st
import sympy as sp

from fmq_theory.theory import symbolic as S
from fmq_theory.vocab import SYMBOLIC_METHODS



@pytest.fixture(autouse=True)
def _mpmath_precision():
    """30 significant digits for the oracles, restored afterwards (other modules share mpmath)."""
    with mp.workdps(30):
        yield

LAW_CASES = [
    ("gaussian", {}),
    ("laplace", {}),
    ("student-t", {"nu": 3}),
    ("student-t", {"nu": 5}),
    ("student-t", {"nu": 4.5}),
    ("gen-gaussian", {"beta": 0.5}),
    ("gen-gaussian", {"beta": 1.5}),
    ("gen-gaussian", {"beta": 3}),
]


# ------------------------------------------------------------------------------------------
# independent oracles
# ------------------------------------------------------------------------------------------


def _pdf(law, kw):
    """Unit-variance density as an mpmath function."""
    if law == "gaussian":
        return mp.npdf
    if law == "laplace":
        s = 1 / mp.sqrt(2)
        return lambda x: mp.exp(-abs(x) / s) / (2 * s)
    if law == "student-t":
        nu = mp.mpf(kw["nu"])
        s = mp.sqrt((nu - 2) / nu)
        c = mp.gamma((nu + 1) / 2) / (mp.sqrt(nu * mp.pi) * mp.gamma(nu / 2))
        return lambda x: c / s * (1 + (x / s) ** 2 / nu) ** (-(nu + 1) / 2)
    be = mp.mpf(kw["beta"])
    al = mp.sqrt(mp.gamma(1 / be) / mp.gamma(3 / be))
    return lambda x: be / (2 * al * mp.gamma(1 / be)) * mp.exp(-((abs(x) / al) ** be))


def _upper_quantiles(law, kw, K):
    """F^{-1}(1/2 + k/K), k = 0..K/2 (the upper half of the equal-mass boundaries)."""
    q = (K // 2 - np.arange(1, K // 2)) / K  # survival probabilities of the inner boundaries
    if law == "gaussian":
        x = st.norm.isf(q)
    elif law == "laplace":
        x = st.laplace.isf(q, scale=1 / math.sqrt(2))
    elif law == "student-t":
        x = st.t.isf(q, kw["nu"], scale=math.sqrt((kw["nu"] - 2) / kw["nu"]))
    else:
        be = kw["beta"]
        x = st.gennorm.isf(q, be, scale=math.sqrt(math.gamma(1 / be) / math.gamma(3 / be)))
    return [mp.mpf(0)] + [mp.mpf(float(v)) for v in x] + [mp.inf]


def _antiderivatives(law, kw):
    """x -> (int_0^x p, int_0^x t p, int_0^x t^2 p) in closed form (x >= 0 or +inf)."""
    if law == "gaussian":
        def f(x):
            if x == mp.inf:
                return (mp.mpf(1) / 2, mp.npdf(0), mp.mpf(1) / 2)
            return (mp.ncdf(x) - mp.mpf(1) / 2, mp.npdf(0) - mp.npdf(x),
                    mp.ncdf(x) - mp.mpf(1) / 2 - x * mp.npdf(x))
        return f
    if law == "student-t":
        nu = mp.mpf(kw["nu"])
        s = mp.sqrt((nu - 2) / nu)

        def c(n):
            return mp.gamma((n + 1) / 2) / (mp.sqrt(n * mp.pi) * mp.gamma(n / 2))

        def cdf0(y, n):  # P(0 < T_n <= y), y >= 0
            if y == mp.inf:
                return mp.mpf(1) / 2
            return (1 - mp.betainc(n / 2, mp.mpf(1) / 2, 0, n / (n + y * y), regularized=True)) / 2

        def f(x):  # standard t moments, then scaled by s
            y = x / s if x != mp.inf else mp.inf
            m0 = cdf0(y, nu)
            tail1 = 0 if y == mp.inf else c(nu) * nu / (nu - 1) * (1 + y * y / nu) ** (-(nu - 1) / 2)
            m1 = c(nu) * nu / (nu - 1) - tail1
            yy = y * mp.sqrt((nu - 2) / nu) if y != mp.inf else mp.inf
            m2 = nu * (c(nu) / c(nu - 2)) * mp.sqrt(nu / (nu - 2)) * cdf0(yy, nu - 2) - nu * m0
            return (m0, s * m1, s * s * m2)
        return f
    be = mp.mpf(1) if law == "laplace" else mp.mpf(kw["beta"])
    al = mp.sqrt(mp.gamma(1 / be) / mp.gamma(3 / be))
    norm = be / (2 * al * mp.gamma(1 / be))

    def f(x):
        u = mp.inf if x == mp.inf else (x / al) ** be
        return tuple(norm * al ** (k + 1) / be * mp.gammainc((k + 1) / be, 0, u) for k in range(3))
    return f


def exact_equal_mass(law, kw, bits):
    """Exact law-level D_EM(b) (30-digit partial moments; symmetric law, upper half doubled)."""
    return _exact_equal_mass(law, tuple(sorted(kw.items())), bits)


@functools.lru_cache(maxsize=None)
def _exact_equal_mass(law, items, bits):
    kw = dict(items)
    K = 2**bits
    qs = _upper_quantiles(law, kw, K)
    anti = [_antiderivatives(law, kw)(q) for q in qs]
    total = mp.mpf(0)
    for lo, hi in zip(anti[:-1], anti[1:]):
        m0, m1, m2 = (hi[i] - lo[i] for i in range(3))
        total += m2 - m1**2 / m0
    return 2 * total


def _ratio(law, kw, bits):
    f = S.asymptotic_form(law, "equal_mass", **kw)
    return float(exact_equal_mass(law, kw, bits)) / f.distortion(bits)


# ------------------------------------------------------------------------------------------
# uniform steps
# ------------------------------------------------------------------------------------------


def test_uniform_cell_mse_is_delta_squared_over_12():
    d = S.uniform_cell_mse()
    delta = sp.Symbol("Delta", positive=True)
    assert sp.simplify(d.expression - delta**2 / 12) == 0
    # numeric: uniform error on a cell of width 0.37 (mpmath quadrature)
    w = mp.mpf("0.37")
    assert float(d.expression.subs(delta, sp.Rational(37, 100))) == pytest.approx(
        float(mp.quad(lambda e: e**2 / w, [-w / 2, w / 2])), rel=1e-14)


def test_minmax_step_mse_constant():
    d = S.minmax_step_mse()
    r, k = sp.symbols("R K", positive=True)
    assert sp.simplify(d.expression - r**2 / (12 * (k - 1) ** 2)) == 0
    # Monte Carlo check of the high-resolution value: uniform data on [0, 3], K = 16
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 3.0, 400_000)
    delta = 3.0 / 15
    q = np.round(x / delta) * delta
    mc = np.mean((x - q) ** 2)
    # standard error of the mean of (x - q)^2 is about 1.4e-6 here; 5 standard errors
    assert mc == pytest.approx(float(d.expression.subs({r: 3, k: 16})), abs=7e-6)


@pytest.mark.parametrize("law,kw", [("gaussian", {}), ("laplace", {}), ("student-t", {"nu": 3}),
                                    ("gen-gaussian", {"beta": 1.5})])
def test_optimal_clip_leading_growth(law, kw):
    clip = S.optimal_clip(law, **kw).expression
    b = S.B
    if law == "gaussian":
        assert sp.simplify(clip - 2 * sp.sqrt(b * sp.log(2))) == 0
    elif law == "laplace":
        assert sp.simplify(clip - sp.sqrt(2) * b * sp.log(2)) == 0
    elif law == "student-t":
        # exact stationary point of c^2/(3K^2) + 4 A c^(2-nu)/(nu(nu-1)(nu-2))
        nu = 3
        s = math.sqrt((nu - 2) / nu)
        c_nu = math.gamma((nu + 1) / 2) / (math.sqrt(nu * math.pi) * math.gamma(nu / 2))
        A = c_nu * nu ** ((nu + 1) / 2) * s**nu  # p(x) ~ A x^(-nu-1); = 2/pi for nu = 3
        assert A == pytest.approx(2 / math.pi, rel=1e-14)
        for bits in (6, 10):
            K = 2.0**bits
            c = float(clip.subs(b, bits))
            grad = 2 * c / (3 * K**2) - 4 * A * c ** (1 - nu) / (nu * (nu - 1))
            assert abs(grad) < 1e-12 * 2 * c / (3 * K**2)
    else:
        al = math.sqrt(math.gamma(1 / 1.5) / math.gamma(3 / 1.5))
        assert float(clip.subs(b, 8)) == pytest.approx(al * (2 * 8 * math.log(2)) ** (1 / 1.5), rel=1e-14)


# ------------------------------------------------------------------------------------------
# Panter-Dite
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("law,kw", LAW_CASES)
def test_panter_dite_constant_against_mpmath_quadrature(law, kw):
    p = _pdf(law, kw)
    # the oracle density has unit variance
    assert float(2 * mp.quad(lambda x: x * x * p(x), [0, 1, 10, mp.inf])) == pytest.approx(1.0, rel=1e-12)
    if law == "student-t":  # x = e^t turns the algebraic tail into an exponentially decaying one
        integral = 2 * mp.quad(lambda t: p(mp.exp(t)) ** (mp.mpf(1) / 3) * mp.exp(t),
                               [-mp.inf, -2, 0, 2, 4, 8, 16, 32, 64, 128])
        # remainder beyond x = e^128: p^(1/3) ~ (A x^(-nu-1))^(1/3), integral < 1e-9 relative
    else:
        integral = 2 * mp.quad(lambda x: p(x) ** (mp.mpf(1) / 3), [0, 1, 10, 100, mp.inf])
    oracle = float(integral**3 / 12)
    c = S.panter_dite_constant(law, **kw)
    assert c.value == pytest.approx(oracle, rel=1e-12)
    assert float(c.expression) == pytest.approx(c.value, rel=1e-15)


def test_panter_dite_closed_forms():
    assert sp.simplify(S.panter_dite_constant("gaussian").expression - sp.sqrt(3) * sp.pi / 2) == 0
    assert S.panter_dite_constant("laplace").expression == sp.Rational(9, 2)
    # the generalized Gaussian family contains both
    assert S.panter_dite_constant("gen-gaussian", beta=2).value == pytest.approx(math.sqrt(3) * math.pi / 2, rel=1e-14)
    assert S.panter_dite_constant("gen-gaussian", beta=1).value == pytest.approx(4.5, rel=1e-14)
    # Student-t through Beta/Gamma functions: no unevaluated integral remains
    expr = S.panter_dite_constant("student-t", nu=3).expression
    assert not expr.has(sp.Integral) and expr.has(sp.gamma)


# ------------------------------------------------------------------------------------------
# equal-mass cell constants
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("j", [2, 3, 10, 1000])
def test_exponential_cell_variance_matches_memoryless_quadrature(j):
    # cell j from the top among J = 50 equal-mass cells of an Exp(1) tail (memorylessness)
    J = mp.mpf(2000)
    a, b = mp.log(J / j), mp.log(J / (j - 1))
    m0 = mp.quad(lambda y: mp.exp(-y), [a, b])
    m1 = mp.quad(lambda y: y * mp.exp(-y), [a, b]) / m0
    m2 = mp.quad(lambda y: y * y * mp.exp(-y), [a, b]) / m0
    expr = S.exponential_cell_variance().expression
    value = float(expr.subs(sp.Symbol("j", positive=True, integer=True), j).evalf(40))
    assert value == pytest.approx(float(m2 - m1**2), rel=1e-12)
    if j == 1000:  # v_j = 1/(12 j^2) (1 + O(1/j))
        assert value * 12 * j**2 == pytest.approx(1.0, abs=2.0 / j)


def test_exponential_tail_sum_against_partial_sums():
    s = S.exponential_tail_sum().value
    assert s == pytest.approx(1.0803270395149802, rel=1e-15)  # regression pin of the 30-digit nsum
    M = 3000
    partial = 1 + mp.fsum(1 - j * (j - 1) * mp.log(mp.mpf(j) / (j - 1)) ** 2 for j in range(2, M + 1))
    # remainder sum_{j > M} v_j lies in (0, 1/(12 (M - 1)))  (v_j < 1/(12 j (j - 1)))
    assert 0 < s - float(partial) < 1.0 / (12 * (M - 1))


@pytest.mark.parametrize("nu,j", [(3, 2), (3, 7), (5, 2), (4.5, 40)])
def test_pareto_cell_variance_matches_quadrature(nu, j):
    nu_m = mp.mpf(nu)
    r = (mp.mpf(j) / (j - 1)) ** (1 / nu_m)

    def dens(z):
        return nu_m * z ** (-nu_m - 1)
    m0 = mp.quad(dens, [1, r])
    m1 = mp.quad(lambda z: z * dens(z), [1, r]) / m0
    m2 = mp.quad(lambda z: z * z * dens(z), [1, r]) / m0
    expr = S.pareto_cell_variance(nu).expression
    value = float(expr.subs(sp.Symbol("j", positive=True, integer=True), j).evalf(40))
    assert value == pytest.approx(float(m2 - m1**2), rel=1e-10)


def test_pareto_tail_sum_against_partial_sum():
    nu = 3
    t = S.pareto_tail_sum(nu).value
    nu_m = mp.mpf(nu)

    def w(j):
        if j == 1:
            return nu_m / ((nu_m - 1) ** 2 * (nu_m - 2))
        r = (mp.mpf(j) / (j - 1)) ** (1 / nu_m)
        ez = nu_m / (nu_m - 1) * j * (1 - r ** (1 - nu_m))
        ez2 = nu_m / (nu_m - 2) * j * (1 - r ** (2 - nu_m))
        return ez2 - ez**2
    M = 2000
    partial = mp.fsum(mp.mpf(j) ** (-2 / nu_m) * w(j) for j in range(1, M + 1))
    # remainder: w_j ~ 1/(12 nu^2 j^2), so sum_{j>M} j^(-2/nu) w_j < 2 * M^(-1-2/nu) / (12 nu^2)
    assert 0 < t - float(partial) < 2 * M ** (-1 - 2 / nu) / (12 * nu**2)


# ------------------------------------------------------------------------------------------
# equal mass: the true rate, against the exact distortion
# ------------------------------------------------------------------------------------------


def test_laplace_equal_mass_exact_identity_and_rate():
    """Laplace: D_EM(K) = (1/K) sum_{j <= K/2} v_j exactly (exponential tail, memoryless)."""
    j = sp.Symbol("j", positive=True, integer=True)
    f = sp.lambdify(j, S.exponential_cell_variance().expression, modules="mpmath")
    s = S.exponential_tail_sum().value
    for bits in (4, 8, 12):
        K = 2**bits
        exact = exact_equal_mass("laplace", {}, bits)
        finite = (1 + mp.fsum(f(mp.mpf(i)) for i in range(2, K // 2 + 1))) / K
        assert float(exact) == pytest.approx(float(finite), rel=1e-12)
        # K D = S - sum_{j > K/2} v_j, and that remainder is below 1/(12 (K/2 - 1))
        assert 0 < s - K * float(exact) < 1.0 / (12 * (K // 2 - 1))
    assert S.asymptotic_form("laplace", "equal_mass").exponent_limit == 1.0


def test_gaussian_equal_mass_leading_form_approached():
    """D_EM ~ S / (K ln K): the ratio exact/leading rises towards 1 (0.913, 0.977, 0.983, 0.988).

    The neglected terms are O(ln ln K / ln K) in general; at b <= 14 the second-order terms
    nearly cancel, so the ratio is already within 3% at b = 10..12.
    """
    ratios = [_ratio("gaussian", {}, b) for b in (4, 8, 10, 12)]
    assert all(x < y for x, y in zip(ratios, ratios[1:]))
    assert all(0.97 < r < 1.0 for r in ratios[2:])


@pytest.mark.parametrize("nu,tol12", [(3, 0.005), (5, 0.04)])
def test_student_t_equal_mass_power_law_approached(nu, tol12):
    """D_EM ~ 2 (A/nu)^(2/nu) T_nu K^(2/nu - 1); relative error O(K^(-2/nu)).

    K^(-2/nu) at b = 12 is 0.0039 (nu = 3) and 0.036 (nu = 5): the tolerances.
    """
    ratios = [_ratio("student-t", {"nu": nu}, b) for b in (4, 8, 12)]
    errors = [abs(r - 1) for r in ratios]
    assert all(x > y for x, y in zip(errors, errors[1:]))
    assert errors[-1] < tol12
    assert S.asymptotic_form("student-t", "equal_mass", nu=nu).exponent_limit == pytest.approx(1 - 2 / nu)


@pytest.mark.parametrize("beta", [1.5, 3])
def test_gen_gaussian_equal_mass_trend(beta):
    """Generalized Gaussian: the ratio moves monotonically towards 1 (logarithmic convergence)."""
    ratios = [_ratio("gen-gaussian", {"beta": beta}, b) for b in (4, 8, 12)]
    errors = [abs(math.log(r)) for r in ratios]
    assert all(x > y for x, y in zip(errors, errors[1:]))
    assert errors[-1] < 0.3


def test_equal_mass_effective_exponent_matches_exact_slope():
    """-d log2 D / db of the exact values (finite difference 11 -> 12) vs the leading form's."""
    for law, kw, tol in (("gaussian", {}, 0.02), ("student-t", {"nu": 3}, 0.01), ("laplace", {}, 1e-3)):
        slope = math.log2(float(exact_equal_mass(law, kw, 11) / exact_equal_mass(law, kw, 12)))
        form = S.asymptotic_form(law, "equal_mass", **kw)
        assert slope == pytest.approx(form.effective_exponent(11.5), abs=tol)


def test_equal_mass_consistency_within_gen_gaussian_family():
    g = S.asymptotic_form("gaussian", "equal_mass")
    g2 = S.asymptotic_form("gen-gaussian", "equal_mass", beta=2)
    lap = S.asymptotic_form("laplace", "equal_mass")
    g1 = S.asymptotic_form("gen-gaussian", "equal_mass", beta=1)
    for bits in (4, 9.5, 12):
        assert g.distortion(bits) == pytest.approx(g2.distortion(bits), rel=1e-13)
        assert lap.distortion(bits) == pytest.approx(g1.distortion(bits), rel=1e-13)
    s = S.exponential_tail_sum().value
    assert g.distortion(10) == pytest.approx(s / (1024 * math.log(1024)), rel=1e-13)


def test_equal_mass_oracle_agrees_with_distortion_module():
    """Cross-check of two independent exact computations (this file's and fmq_theory.theory.distortion)."""
    from fmq_theory.theory.distortion import distortion
    from fmq_theory.theory.laws import make_law

    for law, kw in (("gaussian", {}), ("student-t", {"nu": 5}), ("gen-gaussian", {"beta": 1.5})):
        d = distortion(make_law(law, **kw), method="equal_mass", bits=8).distortion
        assert d == pytest.approx(float(exact_equal_mass(law, kw, 8)), rel=1e-8)


# ------------------------------------------------------------------------------------------
# Lloyd-Max and optimal-clip uniform
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("law,kw", [("gaussian", {}), ("laplace", {}), ("student-t", {"nu": 5})])
def test_lloyd_max_approaches_panter_dite(law, kw):
    from fmq_theory.theory.distortion import distortion
    from fmq_theory.theory.laws import make_law

    f = S.asymptotic_form(law, "lloyd_max", **kw)
    L = make_law(law, **kw)
    ratios = [distortion(L, method="lloyd_max", bits=b).distortion / f.distortion(b) for b in (4, 8, 11)]
    assert all(abs(x - 1) > abs(y - 1) for x, y in zip(ratios, ratios[1:]))
    # observed 1 - ratio at b = 11: 1.0e-3 (Gaussian), 1.1e-3 (Laplace), 2.2e-3 (t5)
    assert abs(ratios[-1] - 1) < 5e-3
    assert f.exponent_limit == 2.0


def _uniform_clip_mse_oracle(dist, K):
    """min_c of the exact MSE of K uniform levels spanning [-c, c] (Gauss-Legendre per cell)."""
    from scipy import integrate, optimize

    xg, wg = np.polynomial.legendre.leggauss(10)

    def mse(c):
        d = 2 * c / (K - 1)
        lev = -c + d * np.arange(K)
        x = lev[1:-1, None] + (d / 2) * xg[None, :]
        inner = np.sum((d / 2) * wg * (x - lev[1:-1, None]) ** 2 * dist.pdf(x))
        outer = integrate.quad(lambda t: (t - c) ** 2 * dist.pdf(t), c - d / 2, np.inf,
                               epsabs=0, epsrel=1e-12, limit=200)[0]
        return inner + 2 * outer

    res = optimize.minimize_scalar(mse, bounds=(0.5, 200.0), method="bounded", options={"xatol": 1e-9})
    return res.fun


def test_uniform_mse_student_t_power_law():
    """Student-t(5): D ~ (nu/(3(nu-2))) (6A/(nu(nu-1)))^(2/nu) K^(4/nu - 2), error O(K^(-2/nu))."""
    nu = 5
    dist = st.t(nu, scale=math.sqrt((nu - 2) / nu))
    f = S.asymptotic_form("student-t", "uniform_mse", nu=nu)
    ratios = [_uniform_clip_mse_oracle(dist, 2**b) / f.distortion(b) for b in (4, 8, 10)]
    assert abs(ratios[-1] - 1) < 0.01
    assert f.exponent_limit == pytest.approx(2 - 4 / nu)


def test_uniform_mse_gaussian_log_rate():
    """Gaussian: D ~ 4 ln K / (3 K^2) (Hui & Neuhoff 2001); the ratio converges like 1/ln K.

    Exact/leading is 0.80, 0.78, 0.79, 0.81 at b = 4, 8, 10, 12: the neglected terms are
    O(ln ln K / ln K); the test pins the approach after the minimum near b = 8.
    """
    f = S.asymptotic_form("gaussian", "uniform_mse")
    ratios = [_uniform_clip_mse_oracle(st.norm(), 2**b) / f.distortion(b) for b in (8, 10, 12)]
    assert ratios[0] < ratios[1] < ratios[2] < 1.0
    assert ratios[0] > 0.7
    assert _uniform_clip_mse_oracle(st.norm(), 16) == pytest.approx(0.01154, abs=1e-5)  # Max (1960)


# ------------------------------------------------------------------------------------------
# min-max
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("law,kw,tol", [("gaussian", {}, 0.03), ("laplace", {}, 0.03), ("student-t", {"nu": 5}, 0.12)])
def test_sample_range_second_moment_against_monte_carlo(law, kw, tol):
    """Extreme-value E[R_n^2] vs Monte Carlo at n = 2304 (3000 groups, MC s.e. < 1%).

    Light tails: EV error O(1/ln n) ~ 2%; Student-t(5): O(n^(-2/nu)) ~ 5% plus heavier MC noise.
    """
    n, reps = 2304, 3000
    rng = np.random.default_rng(1)
    if law == "gaussian":
        x = rng.standard_normal((reps, n))
    elif law == "laplace":
        x = rng.laplace(scale=1 / math.sqrt(2), size=(reps, n))
    else:
        x = rng.standard_t(kw["nu"], size=(reps, n)) * math.sqrt((kw["nu"] - 2) / kw["nu"])
    r2 = np.mean((x.max(axis=1) - x.min(axis=1)) ** 2)
    assert S.sample_range_second_moment(law, n=n, **kw).value == pytest.approx(r2, rel=tol)


def test_uniform_minmax_form_matches_finite_n_exact():
    from fmq_theory.theory.distortion import distortion
    from fmq_theory.theory.laws import make_law

    f = S.asymptotic_form("gaussian", "uniform_minmax", n=2304)
    d = distortion(make_law("gaussian"), method="uniform_minmax", bits=8, n=2304).distortion
    # EV approximation of E[R^2] is ~1% high at n = 2304 (see the Monte Carlo test)
    assert d / f.distortion(8) == pytest.approx(1.0, abs=0.03)
    assert f.exponent_limit == 2.0


# ------------------------------------------------------------------------------------------
# structure and bad input
# ------------------------------------------------------------------------------------------


def test_asymptotic_table_structure():
    table = S.asymptotic_table("student-t", nu=4.5)
    assert tuple(f.method for f in table) == SYMBOLIC_METHODS
    for f in table:
        assert f.expression.free_symbols <= {S.B}
        assert f.constant_value == pytest.approx(float(f.constant), rel=1e-14)
        assert float((f.expression - f.constant * f.rate).subs(S.B, 7)) == pytest.approx(0.0, abs=1e-20)
        assert f.assumptions and all(isinstance(a, str) for a in f.assumptions)
        assert dict(f.params)["nu"] == 4.5


@pytest.mark.parametrize("call,match", [
    (lambda: S.asymptotic_form("cauchy", "equal_mass"), "law"),
    (lambda: S.asymptotic_form("gaussian", "nf4"), "method"),
    (lambda: S.asymptotic_form("student-t", "equal_mass"), "nu"),
    (lambda: S.asymptotic_form("student-t", "equal_mass", nu=2), "nu"),
    (lambda: S.asymptotic_form("student-t", "equal_mass", nu=float("inf")), "nu"),
    (lambda: S.asymptotic_form("gaussian", "equal_mass", nu=3), "nu"),
    (lambda: S.asymptotic_form("gen-gaussian", "equal_mass", beta=0), "beta"),
    (lambda: S.asymptotic_form("laplace", "equal_mass", beta=1), "beta"),
    (lambda: S.asymptotic_form("gaussian", "equal_mass").distortion(1), "bits"),
    (lambda: S.sample_range_second_moment("gaussian", n=1), "n"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="nu"):
        S.asymptotic_form("student-t", "equal_mass", nu="3")
    with pytest.raises(TypeError, match="bits"):
        S.asymptotic_form("gaussian", "equal_mass").effective_exponent("8")


# ------------------------------------------------------------------------------------------
# the results the asymptotics rest on (proof pages): equal-mass optimality, Lloyd-Max
# conditions, the tail-cell lower bound
# ------------------------------------------------------------------------------------------


def _gaussian_cells(t):
    """Mass and first moment of N(0,1) on the cells between the sorted thresholds t (numpy)."""
    edges = np.concatenate(([-np.inf], t, [np.inf]))
    m0 = np.diff(st.norm.cdf(edges))
    m1 = -np.diff(st.norm.pdf(edges))
    return m0, m1


def test_equal_mass_is_the_w2_closest_uniform_weight_measure_on_a_law():
    """W2^2(N(0,1), (1/K) sum delta_z) >= D_EM, equality at the conditional means (K = 4).

    W2^2 is computed in quantile space, int_0^1 (F^{-1}(u) - z_(ceil(uK)))^2 du, by adaptive
    quadrature (scipy; the end cells have integrable log singularities, relative error < 1e-10).
    """
    from scipy.integrate import quad

    K = 4

    def w2sq(z):
        z = np.sort(z)  # the monotone coupling is optimal
        return sum(quad(lambda u: (st.norm.ppf(u) - z[k]) ** 2, k / K, (k + 1) / K,
                        epsabs=0, epsrel=1e-12, limit=200)[0] for k in range(K))
    m0, m1 = _gaussian_cells(st.norm.ppf(np.arange(1, K) / K))
    means = m1 / m0
    d_em = float(exact_equal_mass("gaussian", {}, 2))
    assert w2sq(means) == pytest.approx(d_em, rel=1e-9)
    rng = np.random.default_rng(5)
    for _ in range(5):
        z = means + rng.normal(scale=0.2, size=K)
        # the excess is exactly (1/K) sum (z_k - m_k)^2 (Pythagoras on each quantile cell)
        assert w2sq(z) == pytest.approx(d_em + np.mean((np.sort(z) - means) ** 2), rel=1e-9)
        assert w2sq(z) > d_em


@pytest.mark.parametrize("seed", range(4))
def test_equal_mass_is_the_w2_closest_uniform_weight_measure_on_a_sample(seed):
    """Empirical version with POT's exact EMD: chunk means beat random equal-mass competitors."""
    rng = np.random.default_rng(seed)
    n, K = 96, 8
    x = rng.standard_t(3, size=n)
    xs = np.sort(x)
    means = xs.reshape(K, -1).mean(axis=1)
    a, bw = np.full(n, 1 / n), np.full(K, 1 / K)
    best = ot.emd2(a, bw, (x[:, None] - means[None, :]) ** 2)
    assert best == pytest.approx(np.mean((xs - np.repeat(means, n // K)) ** 2), rel=1e-10)
    for scale in (0.01, 0.1, 1.0):
        z = means + rng.normal(scale=scale, size=K)
        assert ot.emd2(a, bw, (x[:, None] - z[None, :]) ** 2) >= best * (1 - 1e-12)


def _lloyd_gaussian(K, iters=3000):
    y = st.norm.ppf((np.arange(K) + 0.5) / K)
    for _ in range(iters):
        t = 0.5 * (y[:-1] + y[1:])
        m0, m1 = _gaussian_cells(t)
        y = m1 / m0
    return y


def _gaussian_mse(y):
    """Exact MSE of nearest-level quantization of N(0,1) to the sorted levels y."""
    t = 0.5 * (y[:-1] + y[1:])
    edges = np.concatenate(([-np.inf], t, [np.inf]))
    m0 = np.diff(st.norm.cdf(edges))
    m1 = -np.diff(st.norm.pdf(edges))
    e = np.where(np.isinf(edges), 0.0, edges)
    m2 = m0 - np.diff(e * st.norm.pdf(edges))
    return float(np.sum(m2 - 2 * y * m1 + y**2 * m0))


@pytest.mark.parametrize("K,max1960", [(4, 0.1175), (8, 0.03454)])
def test_lloyd_max_optimality_conditions(K, max1960):
    """Fixed point of the two conditions (centroids, midpoints); Max's (1960) printed MSE; local optimum."""
    y = _lloyd_gaussian(K)
    t = 0.5 * (y[:-1] + y[1:])
    m0, m1 = _gaussian_cells(t)
    np.testing.assert_allclose(y, m1 / m0, rtol=0, atol=1e-12)  # centroid condition
    d = _gaussian_mse(y)
    assert d == pytest.approx(max1960, abs=6e-5)  # Max printed 4 significant digits
    rng = np.random.default_rng(0)
    for _ in range(20):  # any small perturbation of the levels increases the MSE
        assert _gaussian_mse(np.sort(y + rng.normal(scale=1e-3, size=K))) > d
    # the equal-mass quantizer is a competitor with the same K
    assert d < float(exact_equal_mass("gaussian", {}, int(math.log2(K))))


def test_tail_cells_lower_bound_and_share():
    """D_EM > (2/K) Var(X | X > F^{-1}(1 - 1/K)), and the two tail cells' share tends to 1/S.

    Gaussian: share 0.825, 0.867, 0.892 at b = 4, 8, 12, rising to 1/S = 0.9256; the tail-cell
    variance is 1 + t lam - lam^2 (lam the inverse Mills ratio), ~ 1/(2 ln K).
    """
    s = S.exponential_tail_sum().value
    shares = []
    for b in (4, 8, 12):
        K = 2**b
        t = mp.mpf(st.norm.isf(1 / K))
        lam = mp.npdf(t) / mp.ncdf(-t)
        tail_var = 1 + t * lam - lam**2
        d = exact_equal_mass("gaussian", {}, b)
        assert 2 * tail_var / K < d
        shares.append(float(2 * tail_var / K / d))
    assert shares[0] < shares[1] < shares[2] < 1 / s
    assert 1 / s - shares[2] < 0.05


def _gaussian_equal_mass_large_b(bits, top=200):
    """D_EM of N(0,1) for large b: the top cells of each tail exactly (mpmath closed forms),
    the inner cells by 12-point Gauss-Legendre about each cell's centre (smooth integrand on a
    cell of width < 0.1: relative error far below 1e-10)."""
    K = 2**bits
    J = K // 2
    x = np.empty(J + 1)
    x[0] = np.inf
    x[1:] = st.norm.isf(np.arange(1, J + 1) / K)  # x[i] has survival i / K; x[J] = 0
    total = mp.mpf(0)
    for j in range(1, top + 1):
        a = mp.mpf(x[j])
        if j == 1:
            m0, m1, m2 = mp.ncdf(-a), mp.npdf(a), mp.ncdf(-a) + a * mp.npdf(a)
        else:
            c = mp.mpf(x[j - 1])
            m0 = mp.ncdf(-a) - mp.ncdf(-c)
            m1 = mp.npdf(a) - mp.npdf(c)
            m2 = m0 + a * mp.npdf(a) - c * mp.npdf(c)
        total += m2 - m1**2 / m0
    xg, wg = np.polynomial.legendre.leggauss(12)
    lo, hi = x[top + 1:], x[top:J]
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    d = half[:, None] * xg[None, :]
    w = half[:, None] * wg[None, :] * st.norm.pdf(centre[:, None] + d)
    m0, m1, m2 = w.sum(1), (w * d).sum(1), (w * d * d).sum(1)
    return 2 * (float(total) + float(np.sum(m2 - m1**2 / m0)))


def test_gaussian_equal_mass_ratio_crosses_one_at_large_b():
    """The Gaussian ratio exact / (S/(K ln K)) is not monotone to 1: 0.9961 at b = 16, 1.0011 at
    b = 20 (the ln ln K / ln K term takes over), so the leading form is good to 1% for b >= 8
    but its error order is logarithmic."""
    s = S.exponential_tail_sum().value
    assert _gaussian_equal_mass_large_b(12) == pytest.approx(float(exact_equal_mass("gaussian", {}, 12)), rel=1e-10)
    r16 = _gaussian_equal_mass_large_b(16) * 2**16 * math.log(2**16) / s
    r20 = _gaussian_equal_mass_large_b(20) * 2**20 * math.log(2**20) / s
    assert 0.99 < r16 < 1.0 < r20 < 1.01
