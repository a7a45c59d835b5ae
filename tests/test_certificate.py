"""Tests of the certified and estimated bounds (:mod:`fmq_theory.bounds.certificate`).

Oracles: closed-form linear flows (the one-step map is an exact matrix, its spectral norm is
``numpy.linalg.norm(M, 2)``), the measured paired distance on a small trained model (the
trajectory estimate must never fall below it), Gelbrich's inequality on random features,
Monte-Carlo coverage checks of the empirical-Bernstein and Chernoff-Hoeffding bounds (scipy's
root finder as the oracle of the latter), and for the certified W2: a linear field whose two
generated laws differ by an exact translation, and a tiny trained model whose W2 upper value
(the paired transport cost) is measured on 200 000 independent pairs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _fields import TinyField, trained_tiny_field
from hypothesis import assume, given, strategies as st
from scipy.optimize import brentq

from fmq_theory.bounds import (
    FIDCertificate,
    TrajectoryEstimate,
    W2Certificate,
    certify_fid,
    certify_w2,
    empirical_bernstein_upper,
    estimate_w2_trajectory,
    hoeffding_kl_upper,
)
from fmq_theory.flow.solvers import sample
from fmq_theory.bounds.spectral import jacobian_spectral_norm
from fmq_theory.quantizers import quantize_state_dict


class AffineField(torch.nn.Module):
    """``v(x, t) = A x + b`` on R^d (float64), called as ``model(x, t, y)``."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        super().__init__()
        self.a = torch.nn.Parameter(a.clone())
        self.b = torch.nn.Parameter(b.clone())

    def forward(self, x, t, y=None):
        return x @ self.a.T + self.b


def _step_matrix(a: np.ndarray, h: float, solver: str) -> tuple[np.ndarray, np.ndarray]:
    """One-step map of ``v = A x + b``: ``Phi(x) = M x + N b`` (numpy oracle)."""
    eye = np.eye(a.shape[0])
    if solver == "euler":
        return eye + h * a, h * eye
    # midpoint and Heun coincide on autonomous linear fields
    return eye + h * a + 0.5 * h * h * a @ a, h * eye + 0.5 * h * h * a


def _oracle(a_fp, b_fp, a_q, b_q, x0, steps, solver):
    h = 1.0 / steps
    m_fp, n_fp = _step_matrix(a_fp, h, solver)
    m_q, n_q = _step_matrix(a_q, h, solver)
    gain = np.linalg.norm(m_q, 2)
    x, y = x0.copy(), x0.copy()
    c = np.zeros(x0.shape[0])
    for _ in range(steps):
        x_next = x @ m_fp.T + n_fp @ b_fp
        delta = np.linalg.norm(x @ m_q.T + n_q @ b_q - x_next, axis=1)
        c = gain * c + delta
        x, y = x_next, y @ m_q.T + n_q @ b_q
    return c, np.linalg.norm(y - x, axis=1)


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun"])
def test_linear_field_matches_numpy_oracle(solver):
    rng = np.random.default_rng(1)
    d = 5
    a_fp = -0.5 * np.eye(d) + 0.3 * rng.standard_normal((d, d))
    a_q = a_fp + 0.05 * rng.standard_normal((d, d))
    b_fp, b_q = rng.standard_normal(d), rng.standard_normal(d)
    x0 = rng.standard_normal((30, d))
    cert = estimate_w2_trajectory(AffineField(torch.tensor(a_fp), torch.tensor(b_fp)), AffineField(torch.tensor(a_q), torch.tensor(b_q)),
                   torch.tensor(x0), solver=solver, steps=8, lanczos_iterations=d, segment_points=(0.0,),
                   value_range=None)
    c_ref, dist_ref = _oracle(a_fp, b_fp, a_q, b_q, x0, 8, solver)
    # Krylov space of dimension d: Lanczos is exact up to float64 round-off.
    np.testing.assert_allclose(cert.per_sample, c_ref, rtol=1e-9)
    np.testing.assert_allclose(cert.paired_distance, dist_ref, rtol=1e-9)
    assert np.all(cert.per_sample >= cert.paired_distance * (1 - 1e-12))
    # On this seeded example the bound is within a factor 3 of the true error for every sample.
    assert np.max(cert.per_sample / cert.paired_distance) < 3.0
    assert cert.defect_norms.shape == (8, 30) and cert.step_gains.shape == (8, 30)
    assert np.max(cert.lanczos_residual) < 1e-8


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun"])
def test_linear_field_scalar_contraction_is_exact(solver):
    # A_q = A_fp = a I and b_q != b_fp: every defect points along b_q - b_fp and the step map is
    # a positive multiple of I, so the recursion holds with equality: certificate == true error.
    d = 4
    a = -0.7 * torch.eye(d, dtype=torch.float64)
    b = torch.linspace(-1, 1, d, dtype=torch.float64)
    x0 = torch.randn(20, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    cert = estimate_w2_trajectory(AffineField(a, b), AffineField(a, b + 0.1), x0, solver=solver, steps=6, lanczos_iterations=d,
                   segment_points=(0.0,), value_range=None)
    np.testing.assert_allclose(cert.per_sample, cert.paired_distance, rtol=1e-10)


@pytest.fixture(scope="module")
def tiny_models():
    model = trained_tiny_field()
    quantized = TinyField()
    quantized.load_state_dict(quantize_state_dict(model.state_dict(), method="uniform_minmax", bits=3).state_dict())
    quantized.eval()
    return model, quantized


@pytest.mark.parametrize("solver", ["euler", "midpoint"])
def test_trajectory_estimate_never_below_measured_distance_on_trained_model(tiny_models, solver):
    model, quantized = tiny_models
    noise = torch.randn(100, 2, generator=torch.Generator().manual_seed(3))
    cert = estimate_w2_trajectory(model, quantized, noise, solver=solver, steps=8, lanczos_iterations=2,
                   segment_points=(0.0, 0.5, 1.0), value_range=None)
    assert isinstance(cert, TrajectoryEstimate)
    assert cert.paired_distance.max() > 1e-3  # 3-bit weights move the samples
    assert np.all(cert.per_sample >= cert.paired_distance)
    assert cert.w2_paired <= cert.w2_rms <= cert.w2_estimate
    assert cert.labels["step_gains"].startswith("estimated")


def test_certify_rejects_bad_arguments(tiny_models):
    model, quantized = tiny_models
    noise = torch.randn(4, 2)
    with pytest.raises(ValueError, match="solver"):
        estimate_w2_trajectory(model, quantized, noise, solver="dopri5", steps=4)
    with pytest.raises(ValueError, match="steps"):
        estimate_w2_trajectory(model, quantized, noise, steps=0)
    with pytest.raises(ValueError, match="segment_points"):
        estimate_w2_trajectory(model, quantized, noise, steps=2, segment_points=(1.5,))


def test_lanczos_is_a_lower_estimate_that_converges():
    gen = torch.Generator().manual_seed(0)
    mats = torch.randn(6, 30, 30, generator=gen, dtype=torch.float64)
    x = torch.randn(6, 30, generator=gen, dtype=torch.float64)
    true = torch.linalg.matrix_norm(mats, ord=2)
    few = jacobian_spectral_norm(lambda z: torch.einsum("nij,nj->ni", mats, z), x, iterations=4, generator=gen)
    assert torch.all(few.norm <= true * (1 + 1e-12))  # Ritz values never exceed the top eigenvalue
    full = jacobian_spectral_norm(lambda z: torch.einsum("nij,nj->ni", mats, z), x, iterations=30, generator=gen)
    torch.testing.assert_close(full.norm, true, rtol=1e-10, atol=0)


def test_empirical_bernstein_covers_the_mean():
    # Beta(2, 5) on [0, 1] has mean 2/7; the 95% bound must hold in at least ~95% of trials
    # (it is conservative: we require 190 of 200).
    rng = np.random.default_rng(0)
    hits = sum(empirical_bernstein_upper(rng.beta(2, 5, 300), upper=1.0, delta=0.05) >= 2 / 7 for _ in range(200))
    assert hits >= 190
    with pytest.raises(ValueError, match="values must lie"):
        empirical_bernstein_upper(np.array([0.0, 2.0]), upper=1.0, delta=0.05)


@given(n=st.integers(3, 30), d=st.integers(1, 6), scale=st.floats(0.0, 2.0), seed=st.integers(0, 2**31 - 1))
def test_fid_certificate_inequalities(n, d, scale, seed):
    # Non-singular covariances (n > d + 1), as in use (n = 5000 samples of d = 64 features):
    # with a singular fit the square roots of round-off eigenvalues (~1e-16) put ~1e-8 into FD.
    assume(n > d + 1)
    rng = np.random.default_rng(seed)
    fp = rng.standard_normal((n, d))
    q = fp + scale * rng.standard_normal((n, d)) + scale * rng.standard_normal(d)
    ref = rng.standard_normal((40, d)) + 0.5
    cert = certify_fid(fp, q, reference_mean=ref.mean(0), reference_cov=np.cov(ref.T).reshape(d, d), n_boot=4)
    assert isinstance(cert, FIDCertificate)
    tol = 1e-9 * (1 + cert.fid_q_bound)
    # Near FD = 0 the round-off of FD (up to ~1e-13 (1 + traces) with ill-conditioned fits of
    # few samples) becomes ~3e-7 sqrt(1 + traces) in sqrt(FD), which the triangle bounds
    # multiply by 2 sqrt(FID_fp); 1e-6 leaves a factor >= 3 over the worst of 7200 seeded cases.
    traces = float(np.trace(np.cov(fp.T).reshape(d, d)) + np.trace(np.cov(q.T).reshape(d, d)))
    tol_root = tol + 1e-6 * math.sqrt(cert.fid_fp * (1 + traces))
    assert cert.fd_between <= cert.fd_paired + tol  # Gelbrich with the n/(n-1) factor
    assert cert.fid_q <= cert.fid_q_bound + tol_root  # triangle inequality
    assert cert.measured_dfid <= cert.dfid_bound_between + tol_root
    assert cert.measured_dfid <= cert.dfid_bound + tol_root
    assert cert.switch_rate is None and cert.paired_feature_rms_kept is None


def test_fid_certificate_switch_rate():
    rng = np.random.default_rng(0)
    fp = rng.standard_normal((10, 3))
    labels_fp = np.arange(10) % 3
    labels_q = labels_fp.copy()
    labels_q[:2] = (labels_q[:2] + 1) % 3
    cert = certify_fid(fp, fp + 0.1, reference_mean=np.zeros(3), reference_cov=np.eye(3), labels_fp=labels_fp,
                       labels_q=labels_q, n_boot=4)
    assert cert.switch_rate == pytest.approx(0.2)
    assert cert.paired_feature_rms_kept == pytest.approx(math.sqrt(0.03))
    with pytest.raises(ValueError, match="paired"):
        certify_fid(fp, fp[:5], reference_mean=np.zeros(3), reference_cov=np.eye(3))


def _kl(a, b):
    return (a * math.log(a / b) if a > 0 else 0.0) + ((1 - a) * math.log((1 - a) / (1 - b)) if a < 1 else 0.0)


@pytest.mark.parametrize("n, mean, delta", [(1, 0.0, 0.05), (100, 0.0, 0.05), (5000, 0.0, 0.05), (100, 0.3, 0.05),
                                            (5000, 1e-4, 0.01), (50, 0.9, 0.2)])
def test_hoeffding_kl_closed_forms(n, mean, delta):
    values = np.full(n, mean)
    got = hoeffding_kl_upper(values, upper=1.0, delta=delta)
    if mean == 0.0:  # kl(0 || m) = -ln(1 - m): the floor 1 - delta^(1/n), exactly
        assert got == pytest.approx(1 - delta ** (1 / n), rel=1e-10)
    else:  # the root of n kl(mean || m) = ln(1/delta) above the mean (scipy's brentq as the oracle)
        root = brentq(lambda m: n * _kl(mean, m) - math.log(1 / delta), mean, 1 - 1e-15, xtol=1e-15)
        assert root <= got <= root * (1 + 1e-10)
    # scale: the bound is in the units of the values
    assert hoeffding_kl_upper(values * 7.0, upper=7.0, delta=delta) == pytest.approx(7.0 * got, rel=1e-10)
    assert hoeffding_kl_upper(np.ones(n), upper=1.0, delta=delta) == 1.0
    with pytest.raises(ValueError, match="values must lie"):
        hoeffding_kl_upper(np.array([0.5, 1.5]), upper=1.0, delta=0.05)
    with pytest.raises(ValueError, match="delta"):
        hoeffding_kl_upper(values, upper=1.0, delta=1.0)


def test_hoeffding_kl_covers_the_mean():
    # Independent, not identically distributed draws (as with the harness's fixed balanced
    # labels): half Bernoulli(0.01), half Beta(1, 30); the mean of means is 0.5 (0.01 + 1/31).
    # The two-point law is the worst case of the Chernoff bound, so coverage is close to the
    # nominal 95%: at least 180 of 200 trials (the binomial 0.1% quantile is 181).
    rng = np.random.default_rng(0)
    mu = 0.5 * (0.01 + 1 / 31)
    hits = 0
    for _ in range(200):
        x = np.concatenate([rng.binomial(1, 0.01, 250).astype(float), rng.beta(1, 30, 250)])
        hits += hoeffding_kl_upper(x, upper=1.0, delta=0.05) >= mu
    assert hits >= 181


class _Shift(torch.nn.Module):
    """``v(x, t) = A x + b``, the same ``A`` for both models (float64)."""

    def __init__(self, a, b):
        super().__init__()
        self.a = torch.nn.Parameter(torch.as_tensor(a).clone())
        self.b = torch.nn.Parameter(torch.as_tensor(b).clone())

    def forward(self, x, t, y=None):
        return x @ self.a.T + self.b


@pytest.mark.parametrize("solver", ["euler", "midpoint"])
def test_certified_w2_is_tight_on_a_linear_field(solver):
    # v = A x + b and v_q = A x + b_q: the solver's end states differ by one constant vector c
    # (numpy oracle of the step maps), so P_q is P_fp translated by c and W2 = |c| exactly.
    # Uniform noise in [-0.3, 0.3]^4 keeps every sample inside the box [-1, 1]^4 (no clipping), and
    # |c| ~ 0.4 is well above the floor sqrt(R (1 - delta^(1/n))) = 0.098 of n = 5000 pairs.
    d, steps = 4, 8
    a = np.diag([-0.5, -0.2, 0.1, -0.3])
    b = np.array([0.05, -0.02, 0.0, 0.03])
    b_q = b + np.array([0.3, -0.2, 0.1, 0.15])
    m, nb = _step_matrix(a, 1.0 / steps, solver)
    c = np.zeros(d)
    for _ in range(steps):
        c = m @ c + nb @ (b_q - b)
    exact = float(np.linalg.norm(c))
    for n, factor in [(5000, 1.25), (200_000, 1.05)]:
        noise = torch.rand(n, d, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 0.6 - 0.3
        x = sample(_Shift(a, b), noise, solver=solver, steps=steps).x
        y = sample(_Shift(a, b_q), noise, solver=solver, steps=steps).x
        assert float(x.abs().max()) < 1 and float(y.abs().max()) < 1
        cert = certify_w2(x, y, low=-1.0, high=1.0, delta=0.05)
        assert isinstance(cert, W2Certificate) and cert.range_sq == 16.0 and cert.n == n
        assert cert.measured == pytest.approx(exact, rel=1e-7)  # the pairing is the optimal coupling here
        assert exact <= cert.bound <= factor * exact  # holds, and tightens as n grows
        assert cert.floor == pytest.approx(math.sqrt(16.0 * (1 - 0.05 ** (1 / n))), rel=1e-12)


@pytest.fixture(scope="module")
def tiny_pairs(tiny_models):
    """Clipped paired samples (midpoint, 8 steps) of the trained tiny field and its 3-bit copy."""
    model, quantized = tiny_models
    noise = torch.randn(300_000, 2, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        x = sample(model, noise, solver="midpoint", steps=8, batch_size=100_000).x.clamp(-4, 4)
        y = sample(quantized, noise, solver="midpoint", steps=8, batch_size=100_000).x.clamp(-4, 4)
    return x.double(), y.double()


def test_certified_w2_never_below_measured_on_tiny_trained_model(tiny_pairs):
    # 'Measured': the paired transport cost sqrt(E|y - x|^2) (>= W2 of the two laws) on 200 000
    # pairs, relative standard error ~0.1%.  The 95% bound from 500 pairs holds for each of 200
    # independent seeds (disjoint groups of the remaining 100 000 pairs).
    x, y = tiny_pairs
    sq = ((y - x) ** 2).sum(1)
    measured = float(sq[:200_000].mean().sqrt())
    rel_se = float(sq[:200_000].std() / sq[:200_000].mean()) / math.sqrt(200_000) / 2
    assert measured > 0.05 and rel_se < 0.01  # 3-bit weights move the samples; the reference is precise
    bounds = np.array([certify_w2(x[i:i + 500], y[i:i + 500], low=-4.0, high=4.0, delta=0.05).bound
                       for i in range(200_000, 300_000, 500)])
    assert bounds.size == 200
    assert bounds.min() >= measured * (1 + 3 * rel_se)
    # and near the least any valid bound from 500 pairs can report (measured 0.21, floor 0.87, bounds ~0.96)
    floor = certify_w2(x[:500], y[:500], low=-4.0, high=4.0, delta=0.05).floor
    assert bounds.max() <= 1.2 * math.hypot(measured, floor)


def test_certify_w2_rejects_bad_input():
    x = torch.zeros(10, 3)
    with pytest.raises(ValueError, match="paired"):
        certify_w2(x, x[:5])
    with pytest.raises(ValueError, match="low"):
        certify_w2(x, x, low=1.0, high=-1.0)
    with pytest.raises(ValueError, match="delta"):
        certify_w2(x, x, delta=0.0)
    with pytest.raises(ValueError, match="finite"):
        certify_w2(x, x.clone().fill_(float("nan")))
