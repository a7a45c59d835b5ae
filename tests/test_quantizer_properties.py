"""Hypothesis properties of the quantizers (properties 1-4 of issue 2).

Data: n weights drawn from a named law with a random seed and scale (float64, so the
storage dtype is float64 and no level rounding interferes), optionally rounded to create
ties.  Oracles are independent of the code under test: the W2 distances come from POT
(``ot.wasserstein_1d``), the optimum of property 2 from brute force over all contiguous
partitions, and the equal-mass optimum from the sorted chunks computed here.

Tolerances: comparisons of MSEs computed in float64 on O(100) numbers use
``1e-9 * (1 + variance)`` (a few hundred ulps of the sums involved); equalities that hold in
exact arithmetic under power-of-two scaling are tested exactly.
"""

import itertools

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from fmq_theory.quantizers import METHODS, quantize
from fmq_theory.quantizers.equal_mass import chunk_ends

ot = pytest.importorskip("ot")

LAWS = ("normal", "laplace", "student3", "uniform", "lognormal")


def sample(seed, n, law, ties=False):
    rng = np.random.default_rng(seed)
    x = {
        "normal": lambda: rng.standard_normal(n),
        "laplace": lambda: rng.laplace(size=n),
        "student3": lambda: rng.standard_t(3, n),
        "uniform": lambda: rng.uniform(-1, 1, n),
        "lognormal": lambda: rng.lognormal(size=n) - 1,
    }[law]() * 10.0 ** rng.uniform(-3, 2)
    if ties:
        unit = np.std(x) / 3 or 1.0
        x = np.round(x / unit) * unit
    return x


data = st.builds(
    sample,
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 80),
    law=st.sampled_from(LAWS),
    ties=st.booleans(),
)
tiefree = st.builds(sample, seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80), law=st.sampled_from(LAWS))
bits = st.integers(1, 4)


def q(w, method, b, **kw):
    if method == "normal_float":
        kw.setdefault("block_size", None)
    return quantize(w, method=method, bits=b, **kw).dequantize()


def mse(w, wq):
    return float(np.mean((w - wq) ** 2))


def tol(w):
    return 1e-9 * (1.0 + float(np.var(w)))


def w2sq_pot(u, v, a=None, b=None):
    return float(ot.wasserstein_1d(u, v, a, b, p=2))


# -- property 1: equal_mass is the W2-closest measure with the chunk masses ---------------
@given(w=tiefree, b=bits, seed=st.integers(0, 2**32 - 1))
def test_equal_mass_is_w2_closest_with_its_masses(w, b, seed):
    n, k = w.size, 2**b
    assume(n >= k)
    wq = q(w, "equal_mass", b)
    # exact optimum (oracle): chunk means of the sorted data, masses = chunk sizes / n
    s = np.sort(w)
    ends = chunk_ends(n, k) + 1
    chunks = np.split(s, ends[:-1])
    atoms = np.array([c.mean() for c in chunks])
    masses = np.array([c.size for c in chunks]) / n
    best = w2sq_pot(w, atoms, np.full(n, 1 / n), masses)
    assert mse(w, wq) == pytest.approx(best, rel=1e-9, abs=tol(w))
    assert w2sq_pot(w, wq) == pytest.approx(best, rel=1e-9, abs=tol(w))
    if n % k == 0:
        assert np.allclose(masses, 1 / k)
    # random competitors with the same masses: random atoms and perturbed optimal atoms
    rng = np.random.default_rng(seed)
    spread = np.std(w) + 1e-12
    for _ in range(20):
        for cand in (np.sort(rng.choice(w, k) + rng.normal(0, spread, k)), atoms + rng.normal(0, spread / 10, k)):
            assert best <= w2sq_pot(w, cand, np.full(n, 1 / n), masses) + tol(w)


@given(w=tiefree, b=bits)
def test_equal_mass_matches_exact_equal_mass_optimum_when_n_divisible(w, b):
    """For n divisible by K the chunk masses are 1/K: compare with the optimum of the
    K-point measures with masses exactly 1/K, computed from the quantile function."""
    k = 2**b
    w = w[: (w.size // k) * k]
    assume(w.size >= k)
    s = np.sort(w)
    # optimal atom j = mean of the quantile function over [j/K, (j+1)/K)
    per = s.size // k
    atoms = s.reshape(k, per).mean(axis=1)
    assert mse(w, q(w, "equal_mass", b)) == pytest.approx(
        w2sq_pot(w, atoms, None, np.full(k, 1 / k)), rel=1e-9, abs=tol(w)
    )


# -- property 2: lloyd_max is optimal -------------------------------------------------
@given(w=data, b=bits)
def test_lloyd_max_beats_every_method(w, b):
    best = mse(w, q(w, "lloyd_max", b))
    for method in METHODS:
        assert best <= mse(w, q(w, method, b)) + tol(w), method


def brute_force_optimum(w, k):
    vals, counts = np.unique(w, return_counts=True)
    if vals.size <= k:
        return 0.0
    best = np.inf
    for cuts in itertools.combinations(range(1, vals.size), k - 1):
        bounds = (0, *cuts, vals.size)
        sse = 0.0
        for a, c in zip(bounds[:-1], bounds[1:]):
            v, m = vals[a:c], counts[a:c]
            sse += np.sum(m * (v - np.average(v, weights=m)) ** 2)
        best = min(best, sse)
    return best / w.size


@given(
    w=st.builds(
        sample, seed=st.integers(0, 2**32 - 1), n=st.integers(1, 10), law=st.sampled_from(LAWS), ties=st.booleans()
    ),
    b=st.integers(1, 2),
)
def test_lloyd_max_equals_brute_force(w, b):
    assert mse(w, q(w, "lloyd_max", b)) == pytest.approx(brute_force_optimum(w, 2**b), rel=1e-9, abs=tol(w))


# -- property 3: W2^2 == MSE for monotone quantizers; POT agrees ------------------------
@given(w=data, b=bits, method=st.sampled_from(METHODS))
def test_w2_squared_equals_mse(w, b, method):
    wq = q(w, method, b)
    from fmq_theory.theory.wasserstein import quantization_w2

    assert w2sq_pot(w, wq) == pytest.approx(mse(w, wq), rel=1e-9, abs=tol(w))
    assert quantization_w2(w, wq) ** 2 == pytest.approx(mse(w, wq), rel=1e-9, abs=tol(w))


# -- property 4: structure ---------------------------------------------------------------
IDEMPOTENT = ("uniform_minmax", "uniform_absmax", "log2", "equal_mass", "lloyd_max", "normal_float")


@given(w=data, b=bits, method=st.sampled_from(IDEMPOTENT))
@example(w=sample(seed=1, n=4, law="laplace", ties=False), b=2, method="log2")
def test_idempotence(w, b, method):
    assume(not (method == "normal_float" and b == 1))  # {0, 1} codebook: -max|w| maps to 0
    wq = q(w, method, b)
    # uniform grids re-derive their scale from rounded levels: equal to a few ulps; log2's
    # end levels are the reference's 2**(log(m)/log(2)), a few ulps from m
    rtol = 1e-12 if method.startswith("uniform") or method == "log2" else 0.0
    np.testing.assert_allclose(q(wq, method, b), wq, rtol=rtol, atol=rtol * np.max(np.abs(w)))


@given(
    w=data,
    b=st.integers(1, 5),
    method=st.sampled_from(METHODS),
    gran=st.sampled_from(["tensor", "channel", ("group", 7), ("group", 1)]),
)
def test_levels_codes_and_order(w, b, method, gran):
    shape = (w.size,) if gran != "channel" or w.size % 4 else (4, w.size // 4)
    x = w.reshape(shape)
    kw = {"block_size": None} if method == "normal_float" else {}
    qt = quantize(x, method=method, bits=b, granularity=gran, **kw)
    assert qt.codes.dtype == np.uint8 and int(qt.codes.max()) < 2**b
    assert qt.levels.shape == (qt.codes.shape[0], 2**b)
    assert np.all(np.diff(qt.levels, axis=1) >= 0)
    flat = x.reshape(-1)
    out = qt.dequantize().reshape(-1)
    width = qt.codes.shape[1]
    for g in range(qt.codes.shape[0]):
        part = slice(g * width, min((g + 1) * width, flat.size))
        assert np.unique(out[part]).size <= 2**b
        order = np.argsort(flat[part], kind="stable")
        assert np.all(np.diff(out[part][order]) >= 0)  # w_i <= w_j  =>  Q(w_i) <= Q(w_j)
        v = flat[part]
        same = v[:, None] == v[None, :]
        assert np.all(out[part][:, None] == out[part][None, :], where=same)  # a function of w


AFFINE = ("uniform_minmax", "equal_mass", "lloyd_max", "piecewise_quantile")
SCALE = ("uniform_absmax", "uniform_mse", "pwlq", "log2", "normal_float", *AFFINE)


@given(w=tiefree, b=bits, method=st.sampled_from(SCALE), e=st.integers(-8, 8))
def test_power_of_two_scale_equivariance_is_exact(w, b, method, e):
    a = 2.0**e
    if method == "log2":  # interior levels 2**linspace(log2 ...) round log2/exp2: 1e-14
        np.testing.assert_allclose(q(a * w, method, b), a * q(w, method, b), rtol=1e-14, atol=0)
    else:
        np.testing.assert_array_equal(q(a * w, method, b), a * q(w, method, b))


@given(w=tiefree, b=bits, method=st.sampled_from(AFFINE), a=st.floats(0.1, 10), c=st.floats(-10, 10))
def test_affine_equivariance(w, b, method, a, c):
    scale = np.max(np.abs(w)) * a + abs(c)
    np.testing.assert_allclose(q(a * w + c, method, b), a * q(w, method, b) + c, rtol=0, atol=1e-9 * scale)
