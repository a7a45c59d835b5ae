"""Tests of fmq_theory.theory.fid_chain: exact answers on linear fields, limits, POT and scipy oracles."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as hs

from fmq_theory.theory import fid_chain as chain
from fmq_theory.theory.fid_chain import (
    feature_w2,
    fid_bound,
    fid_bound_vs_bits,
    fid_chain,
    flow_error,
    frechet_distance,
    gelbrich,
    generated_w2,
    velocity_error,
    weight_w2,
)


# ------------------------------------------------------------------------------------------
# (i) weights: W2^2 = MSE
# ------------------------------------------------------------------------------------------


def _equal_mass_numpy(w, K):
    """Plain numpy twin of the paper's equal-mass quantizer (array_split chunks -> means)."""
    order = np.argsort(w, kind="stable")
    out = np.empty_like(w)
    for idx in np.array_split(order, K):
        out[idx] = w[idx].mean()
    return out


@pytest.mark.parametrize("seed,K", [(0, 4), (1, 16), (2, 7)])
def test_weight_w2_equals_pot_w2_for_a_monotone_quantizer(seed, K):
    rng = np.random.default_rng(seed)
    w = rng.standard_t(4, size=1001)
    q = _equal_mass_numpy(w, K)
    mse = float(np.mean((w - q) ** 2))
    link = weight_w2(mse=mse, n_params=w.size)
    w2_pot = math.sqrt(ot.wasserstein_1d(w, q, p=2))
    assert link.value == pytest.approx(w2_pot, rel=1e-10)
    assert dict(link.details)["dtheta_norm"] == pytest.approx(np.linalg.norm(w - q), rel=1e-12)
    assert link.assumptions


# ------------------------------------------------------------------------------------------
# (iii) flow error: exact on the linear field, discrete -> Gronwall
# ------------------------------------------------------------------------------------------


def _solve(field, x0, *, solver, steps, horizon=1.0):
    h = horizon / steps
    x, t = x0, 0.0
    for _ in range(steps):
        if solver == "euler":
            x = x + h * field(t, x)
        elif solver == "midpoint":
            x = x + h * field(t + h / 2, x + h / 2 * field(t, x))
        else:  # heun
            k1 = field(t, x)
            x = x + h / 2 * (k1 + field(t + h, x + h * k1))
        t += h
    return x


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun"])
@pytest.mark.parametrize("a", [0.0, 0.7, 3.0])
@pytest.mark.parametrize("steps", [1, 7, 100])
def test_discrete_flow_bound_is_attained_by_the_linear_field(solver, a, steps):
    """v = a x, v_hat = a x + eps: the error recursion holds with equality."""
    eps = 0.013
    x0 = 0.4
    exact = _solve(lambda t, x: a * x + eps, x0, solver=solver, steps=steps) - _solve(
        lambda t, x: a * x, x0, solver=solver, steps=steps)
    link = flow_error(lipschitz_x=a, eps=eps, solver=solver, steps=steps)
    assert link.value == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("a", [0.0, 0.5, 2.0])
def test_gronwall_is_attained_by_the_linear_field(a):
    from scipy.integrate import solve_ivp

    eps = 0.02

    def rhs(t, y):
        return [a * y[0], a * y[1] + eps]

    sol = solve_ivp(rhs, (0.0, 1.0), [0.3, 0.3], rtol=1e-12, atol=1e-14)
    exact = sol.y[1, -1] - sol.y[0, -1]
    link = flow_error(lipschitz_x=a, eps=eps, solver="exact")
    assert link.value == pytest.approx(exact, rel=1e-9)
    assert link.value == pytest.approx(eps * (math.expm1(a) / a if a else 1.0), rel=1e-15)


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun"])
def test_discrete_factors_increase_to_gronwall(solver):
    L = 2.5
    gronwall = flow_error(lipschitz_x=L, eps=1.0, solver="exact").value
    amps = [flow_error(lipschitz_x=L, eps=1.0, solver=solver, steps=n).value for n in (1, 10, 100, 10_000, 1_000_000)]
    assert all(x < y for x, y in zip(amps, amps[1:]))
    assert all(a < gronwall for a in amps)
    # Euler's factor is e^{L - L^2/(2N) + ...}: relative gap ~ L^2/(2N); the 2-stage ones O(N^-2)
    gap = 1 - amps[-1] / gronwall
    assert gap < (L**2 / 1e6 if solver == "euler" else 1e-10)


@settings(max_examples=40)
@given(
    L=hs.floats(0.0, 4.0),
    eps=hs.floats(1e-4, 1.0),
    phase=hs.floats(0.0, 6.3),
    x0=hs.floats(-2.0, 2.0),
    steps=hs.integers(1, 60),
    solver=hs.sampled_from(["euler", "midpoint", "heun"]),
)
def test_discrete_bound_holds_for_nonlinear_fields(L, eps, phase, x0, steps, solver):
    """v = L sin(x + t + phase) is L-Lipschitz; |v_hat - v| = eps |cos(3x)| <= eps."""
    def v(t, x):
        return L * math.sin(x + t + phase)

    def v_hat(t, x):
        return v(t, x) + eps * math.cos(3 * x)
    err = abs(_solve(v_hat, x0, solver=solver, steps=steps) - _solve(v, x0, solver=solver, steps=steps))
    bound = flow_error(lipschitz_x=L, eps=eps, solver=solver, steps=steps).value
    assert err <= bound * (1 + 1e-12) + 1e-15


# ------------------------------------------------------------------------------------------
# the chain
# ------------------------------------------------------------------------------------------


def test_fid_chain_composes_the_links():
    kw = dict(mse=0.01, n_params=10_000, lipschitz_theta=0.02, lipschitz_x=1.5, lip_features=3.0,
              fid_fp=2.891, solver="heun", steps=25)
    c = fid_chain(**kw)
    w = weight_w2(mse=0.01, n_params=10_000)
    v = velocity_error(lipschitz_theta=0.02, dtheta_norm=math.sqrt(10_000 * 0.01))
    f = flow_error(lipschitz_x=1.5, eps=v.value, solver="heun", steps=25)
    g = generated_w2(flow_error_bound=f.value)
    p = feature_w2(lip_features=3.0, w2_samples=g.value)
    gb = gelbrich(w2_features=p.value)
    fb = fid_bound(fid_fp=2.891, sqrt_fd_bound=gb.value)
    assert [link.value for link in c.links] == [w.value, v.value, f.value, g.value, p.value, gb.value, fb.value]
    assert c.fid_bound == pytest.approx((math.sqrt(2.891) + gb.value) ** 2, rel=1e-15)
    d = gb.value
    assert c.delta_fid == pytest.approx(2 * math.sqrt(2.891) * d + d * d, rel=1e-12)
    assert all(link.assumptions for link in c.links)
    assert len(c.assumptions) == len(set(c.assumptions))


def test_fid_bound_vs_bits_is_monotone_and_has_the_rate_of_sqrt_d():
    # a distortion decaying like 4^-b: the small-distortion bound decays like 2^-b
    dist = {b: 0.5 * 4.0**-b for b in range(2, 13)}
    curve = fid_bound_vs_bits(method="lloyd_max", distortions=dist, n_params=1000, lipschitz_theta=0.01,
                              lipschitz_x=1.0, lip_features=1.0, fid_fp=1.0, solver="midpoint", steps=10)
    assert curve.bits.tolist() == list(range(2, 13))
    assert np.all(np.diff(curve.fid_bound) < 0) and np.all(np.diff(curve.delta_fid) < 0)
    assert curve.delta_fid[-1] / curve.delta_fid[-2] == pytest.approx(0.5, rel=1e-3)
    assert curve.mse.shape == curve.fid_bound.shape == (11,)
    assert len(curve.chains) == 11


def test_fid_bound_vs_bits_with_exact_distortions():
    """The bound for equal_mass vs lloyd_max on a Gaussian law: ordered as the distortions."""
    from fmq_theory.theory.distortion import distortion
    from fmq_theory.theory.laws import make_law

    law = make_law("gaussian")
    consts = dict(n_params=10_000, lipschitz_theta=1e-3, lipschitz_x=1.0, lip_features=1.0, fid_fp=1.0)
    curves = {m: fid_bound_vs_bits(method=m, distortions={b: distortion(law, method=m, bits=b).distortion
                                                           for b in (2, 4, 6)}, **consts)
              for m in ("equal_mass", "lloyd_max")}
    assert np.all(curves["lloyd_max"].fid_bound < curves["equal_mass"].fid_bound)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: weight_w2(mse=-1.0, n_params=3), ValueError, "mse"),
    (lambda: weight_w2(mse=0.1, n_params=0), ValueError, "n_params"),
    (lambda: weight_w2(mse="0.1", n_params=3), TypeError, "mse"),
    (lambda: flow_error(lipschitz_x=1.0, eps=0.1, solver="rk4", steps=3), ValueError, "solver"),
    (lambda: flow_error(lipschitz_x=1.0, eps=0.1, solver="euler"), ValueError, "steps"),
    (lambda: flow_error(lipschitz_x=1.0, eps=0.1, solver="exact", steps=3), ValueError, "steps"),
    (lambda: flow_error(lipschitz_x=float("nan"), eps=0.1), ValueError, "lipschitz_x"),
    (lambda: fid_bound(fid_fp=-1.0, sqrt_fd_bound=0.1), ValueError, "fid_fp"),
    (lambda: fid_bound_vs_bits(method="x", distortions={}, n_params=1, lipschitz_theta=1.0,
                               lipschitz_x=1.0, lip_features=1.0, fid_fp=1.0), ValueError, "distortions"),
    (lambda: frechet_distance([0.0, 1.0], np.eye(2), [0.0], np.eye(1)), ValueError, "shape"),
    (lambda: frechet_distance([0.0, 1.0], [[1.0, 0.5], [0.0, 1.0]], [0.0, 0.0], np.eye(2)), ValueError, "symmetric"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------------------------------
# Frechet distance and Gelbrich
# ------------------------------------------------------------------------------------------


def _random_spd(rng, d, rank=None):
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / (rank or d)


def _frechet_sqrtm(mu1, s1, mu2, s2):
    """The common scipy.linalg.sqrtm form (pytorch-fid style)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


@settings(max_examples=40)
@given(seed=hs.integers(0, 2**32 - 1), d=hs.integers(1, 8))
def test_frechet_matches_sqrtm_form(seed, d):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_spd(rng, d) + 0.1 * np.eye(d), _random_spd(rng, d) + 0.1 * np.eye(d)
    fd = frechet_distance(mu1, s1, mu2, s2)
    scale = np.trace(s1) + np.trace(s2) + np.sum((mu1 - mu2) ** 2)
    # well-conditioned covariances (eigenvalues >= 0.1): both forms agree to ~1e-10 of the scale
    assert fd == pytest.approx(_frechet_sqrtm(mu1, s1, mu2, s2), abs=1e-9 * scale)
    assert fd == pytest.approx(frechet_distance(mu2, s2, mu1, s1), abs=1e-9 * scale)


@settings(max_examples=40)
@given(seed=hs.integers(0, 2**32 - 1), d=hs.integers(1, 8))
def test_frechet_commuting_closed_form(seed, d):
    """Shared eigenbasis: FD = |mu1 - mu2|^2 + sum (sqrt(l1) - sqrt(l2))^2."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    l1, l2 = rng.uniform(0, 3, d), rng.uniform(0, 3, d)
    s1, s2 = (q * l1) @ q.T, (q * l2) @ q.T
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert frechet_distance(mu1, 0.5 * (s1 + s1.T), mu2, 0.5 * (s2 + s2.T)) == pytest.approx(
        expected, abs=1e-9 * (1 + expected))


def test_frechet_singular_and_identical():
    rng = np.random.default_rng(3)
    s = _random_spd(rng, 6, rank=2)  # rank-deficient: sqrtm's form is fragile here
    mu = rng.standard_normal(6)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-12 * np.trace(s))
    assert frechet_distance([0.0], [[4.0]], [1.0], [[1.0]]) == pytest.approx(2.0, rel=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_gelbrich_bound_against_exact_emd(seed):
    """FD(moment-matched Gaussians) <= W2^2 of the laws: two non-Gaussian empirical laws, exact W2 by POT."""
    rng = np.random.default_rng(seed)
    n, d = 60, 3
    x = rng.exponential(1.0, (n, d)) ** 1.5
    y = np.concatenate([rng.standard_normal((n // 2, d)) - 2, rng.standard_normal((n - n // 2, d)) + 1.5])
    y[:, 0] *= 0.3
    w2sq = ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), ot.dist(x, y))  # squared Euclidean cost
    fd = frechet_distance(x.mean(0), np.cov(x.T, bias=True), y.mean(0), np.cov(y.T, bias=True))
    assert fd <= w2sq * (1 + 1e-9)
    link = gelbrich(w2_features=math.sqrt(w2sq))
    assert math.sqrt(fd) <= link.value * (1 + 1e-9)


def test_sqrt_frechet_triangle_inequality():
    """sqrt(FD) is a metric on Gaussians, the step used by fid_bound."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        d = 4
        g = [(rng.standard_normal(d), _random_spd(rng, d)) for _ in range(3)]
        ab = math.sqrt(frechet_distance(*g[0], *g[1]))
        bc = math.sqrt(frechet_distance(*g[1], *g[2]))
        ac = math.sqrt(frechet_distance(*g[0], *g[2]))
        assert ac <= ab + bc + 1e-9


def test_public_names_resolve_and_are_documented():
    for name in chain.__all__:
        obj = getattr(chain, name)
        assert callable(obj) or isinstance(obj, (dict, tuple, frozenset)), name
        assert not callable(obj) or obj.__doc__, name
