"""Weight laws against independent mpmath oracles (densities written out here in mpmath).

Tolerances: the closed forms are evaluated in double precision from special functions
accurate to a few ulps, so partial moments and quantiles are checked to 1e-12 relative;
fitted parameters are checked against their sampling error (4 standard errors).
"""

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from fmq_theory.theory.law_fit import fit_laws, hill_tail_index
from fmq_theory import vocab
from fmq_theory.theory.laws import (
    Empirical, GenGaussian, StudentT, make_law,
)

mp.mp.dps = 40


def mp_pdf(law):
    """The standard density of ``law`` in mpmath, scaled by its scale (independent formulas)."""
    s = mp.mpf(law.scale)
    if law.name == "gaussian":
        f = lambda z: mp.exp(-z * z / 2) / mp.sqrt(2 * mp.pi)  # noqa: E731
    elif law.name == "laplace":
        f = lambda z: mp.exp(-abs(z)) / 2  # noqa: E731
    elif law.name == "student-t":
        nu = mp.mpf(law.nu)
        c = mp.gamma((nu + 1) / 2) / (mp.sqrt(nu * mp.pi) * mp.gamma(nu / 2))
        f = lambda z: c * (1 + z * z / nu) ** (-(nu + 1) / 2)  # noqa: E731
    else:
        beta = mp.mpf(law.beta)
        f = lambda z: beta / (2 * mp.gamma(1 / beta)) * mp.exp(-abs(z) ** beta)  # noqa: E731
    return lambda x: f(mp.mpf(x) / s) / s


def mp_moment(law, k, a, b):
    p = mp_pdf(law)
    a = -mp.inf if a == -np.inf else mp.mpf(a)
    b = mp.inf if b == np.inf else mp.mpf(b)
    pts = [a] + ([mp.mpf(0)] if a < 0 < b else []) + [b]
    return mp.quad(lambda x: x**k * p(x), pts)


LAWS = [make_law("gaussian"), make_law("laplace"), make_law("student-t", nu=3),
        make_law("student-t", nu=5.5), make_law("gen-gaussian", beta=0.7), make_law("gen-gaussian", beta=3)]
INTERVALS = [(-np.inf, np.inf), (-1.0, 0.5), (0.3, 2.0), (2.0, np.inf), (-np.inf, -3.0), (4.0, 4.5)]


@pytest.mark.parametrize("law", LAWS, ids=lambda l: l.describe())
def test_partial_moments_match_mpmath(law):
    for a, b in INTERVALS:
        for k in (0, 1, 2):
            ref = mp_moment(law, k, a, b)
            got = law.partial_moment(k, a, b)
            assert abs(got - float(ref)) <= 1e-12 * abs(float(ref)) + 1e-300, (k, a, b, got, ref)


@pytest.mark.parametrize("law", LAWS, ids=lambda l: l.describe())
def test_unit_variance_by_default(law):
    assert law.variance == pytest.approx(1.0, rel=1e-14)
    assert float(mp_moment(law, 2, -np.inf, np.inf)) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("law", LAWS, ids=lambda l: l.describe())
def test_quantiles_invert_the_mpmath_cdf_in_both_tails(law):
    p = mp_pdf(law)
    for q in (1e-30, 1e-8, 0.01, 0.3):
        x = float(law.isf(q))
        tail = mp.quad(p, [mp.mpf(x), mp.inf]) if law.name != "student-t" else mp.quad(p, [mp.mpf(x), mp.mpf(x) * 10, mp.inf])
        assert float(tail) == pytest.approx(q, rel=1e-10)
        assert float(law.ppf(q)) == -x
        assert float(law.sf(x)) == pytest.approx(q, rel=1e-12)
        assert float(law.cdf(-x)) == pytest.approx(q, rel=1e-12)


def test_student_t_far_tail_quantiles():
    """sf(isf(q)) = q down to 1e-300 (stdtrit alone fails below ~1e-200)."""
    law = make_law("student-t", nu=3)
    for q in (1e-100, 1e-200, 1e-300):
        assert float(law.sf(law.isf(q))) == pytest.approx(q, rel=1e-12)


@pytest.mark.parametrize("law", LAWS, ids=lambda l: l.describe())
def test_narrow_far_cells_keep_precision(law):
    """A narrow cell far out, where M2 - 2cM1 + c^2 M0 cancels by ~10 digits."""
    a, b = 3.0, 3.0005
    c = 3.0002
    p = mp_pdf(law)
    ref = mp.quad(lambda x: (x - c) ** 2 * p(x), [a, b])
    got = float(law.cell_sq_error(a, b, c))
    assert got == pytest.approx(float(ref), rel=1e-11)
    mean_ref = mp.quad(lambda x: x * p(x), [a, b]) / mp.quad(p, [a, b])
    assert float(law.mean_in(a, b)) == pytest.approx(float(mean_ref), rel=1e-14)


@given(st.sampled_from(LAWS), st.floats(-6, 6), st.floats(1e-6, 6))
def test_moments_are_consistent(law, a, width):
    b = a + width
    m0 = law.partial_moment(0, a, b)
    assert m0 == pytest.approx(float(law.cdf(b) - law.cdf(a)), rel=1e-9, abs=1e-15)
    mean = law.mean_in(a, b)
    if m0 > 1e-250:
        assert a - 1e-12 <= mean <= b + 1e-12
        assert law.cell_sq_error(a, b, mean) <= (width / 2) ** 2 * m0 * (1 + 1e-9) + 1e-300


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="nu=2.0 <= 2"):
        make_law("student-t", nu=2)
    with pytest.raises(ValueError, match="nu"):
        StudentT(nu=1.5, scale=1.0).variance
    with pytest.raises(ValueError, match="second moment"):
        StudentT(nu=1.5, scale=1.0).partial_moment(2, 0, np.inf)
    assert StudentT(nu=1.5, scale=1.0).cdf(0.0) == 0.5  # usable where no variance is needed
    with pytest.raises(ValueError, match="beta"):
        GenGaussian(beta=-1)
    with pytest.raises(ValueError, match="nu is required"):
        make_law("student-t")
    with pytest.raises(ValueError, match="does not apply"):
        make_law("gaussian", nu=3)


def test_unknown_law_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        make_law("cauchy")
    for name in vocab.LAWS:
        assert name in str(info.value)


def test_gen_gaussian_reduces_to_gaussian_and_laplace():
    x = np.array([-3.0, -0.2, 0.0, 1.5, 7.0])
    assert np.allclose(make_law("gen-gaussian", beta=2).pdf(x), make_law("gaussian").pdf(x), rtol=1e-13)
    assert np.allclose(make_law("gen-gaussian", beta=1).cdf(x), make_law("laplace").cdf(x), rtol=1e-13)


def test_empirical_law_moments_are_sums():
    rng = np.random.default_rng(1)
    x = rng.normal(size=1000)
    law = Empirical(x)
    sel = (x > -0.5) & (x <= 1.0)
    assert law.partial_moment(1, -0.5, 1.0) == pytest.approx(x[sel].sum() / x.size, rel=1e-12)
    assert law.partial_moment(2, -np.inf, np.inf) == pytest.approx(np.mean(x**2), rel=1e-12)
    assert law.ppf(0.5) == np.sort(x)[499]
    assert law.cdf(np.sort(x)[9]) == pytest.approx(0.01)


def test_fit_selects_the_true_family_and_recovers_parameters():
    rng = np.random.default_rng(2)
    true = make_law("student-t", nu=4.0)
    x = 0.02 * true.sample(20000, rng=rng) + 0.001  # weight-like scale and offset
    report = fit_laws(x)
    assert report.selected == "student-t"
    fit = report.fit("student-t")
    # sampling sd of the nu MLE at nu = 4, n = 20000 is about 0.15 (Fisher information)
    assert abs(fit.law.nu - 4.0) < 0.6
    assert fit.law.loc == pytest.approx(0.001, abs=4 * 0.02 / math.sqrt(20000))
    assert [f.bic for f in report.fits] == sorted(f.bic for f in report.fits)
    assert fit.ks_statistic < 0.02 and fit.ad_statistic < 5
    assert report.fit("gaussian").ad_statistic > fit.ad_statistic


def test_fit_gaussian_sample_prefers_gaussian():
    x = np.random.default_rng(3).normal(size=20000)
    report = fit_laws(x)
    assert report.selected in ("gaussian", "gen-gaussian")
    assert report.fit("gen-gaussian").law.beta == pytest.approx(2.0, abs=0.15)


def test_hill_estimator_on_exact_pareto_tails():
    rng = np.random.default_rng(4)
    alpha = 3.0
    x = rng.pareto(alpha, size=200_000) + 1.0
    x = x * np.where(rng.random(x.size) < 0.5, -1, 1)
    est = hill_tail_index(x, k=2000)
    assert abs(est.tail_index - alpha) < 4 * est.stderr
    with pytest.raises(ValueError, match="k="):
        hill_tail_index(x, k=0)
