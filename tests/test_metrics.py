"""Tests of fmq_theory.harness.metrics and fmq_theory.flow.frechet against scipy, scikit-image and closed forms.

Tolerances: the Frechet distance needs ``tr sqrt(M)`` of a PSD matrix ``M``. An eigenvalue
of ``M`` is known to about ``eps * lambda_max`` (float64 ``eigh``), and its square root
therefore to ``sqrt(eps * lambda_max)`` when the eigenvalue is (near) zero, which happens for
singular or ill-conditioned covariances. Any method (scipy's ``sqrtm`` too) has this error, so
FD comparisons use ``atol = d * sqrt(eps * lambda_max(M)) + 1e-12 * scale``.
PSNR/SSIM are sums of a few hundred float64 terms per window: ``atol = 1e-10``.
"""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fmq_theory.flow.frechet import fid_from_features, frechet_distance, gaussian_fit
from fmq_theory.harness.metrics import FIDInterval, bootstrap_fid, psnr, ssim_box, ssim_gaussian

skimage_metrics = pytest.importorskip("skimage.metrics")


def _random_spd(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def _fd_tol(s1, s2, mu1, mu2):
    d = s1.shape[0]
    lam = max(np.linalg.eigvalsh(s1).max(), 0) * max(np.linalg.eigvalsh(s2).max(), 0)
    scale = np.trace(s1) + np.trace(s2) + np.sum((mu1 - mu2) ** 2)
    return d * np.sqrt(np.finfo(float).eps * lam) + 1e-12 * scale


def _scipy_fd(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 12))
def test_frechet_matches_scipy_sqrtm(seed, d):
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(_scipy_fd(mu1, s1, mu2, s2), abs=2 * _fd_tol(s1, s2, mu1, mu2))


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 20), zeros=st.integers(0, 5))
def test_frechet_diagonal_closed_form(seed, d, zeros):
    # For commuting (diagonal) covariances: FD^2 = |mu1-mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2,
    # including singular ones (zero variances), where sqrtm-based code is fragile.
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 3, size=d), rng.uniform(0, 3, size=d)
    a[: min(zeros, d)] = 0.0
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, abs=_fd_tol(np.diag(a), np.diag(b), mu1, mu2))


def test_frechet_docstring_value_and_symmetry():
    rng = np.random.default_rng(1)
    s1, s2 = _random_spd(rng, 6, rank=3), _random_spd(rng, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        frechet_distance(mu2, s2, mu1, s1), abs=2 * _fd_tol(s1, s2, mu1, mu2))
    assert frechet_distance(np.zeros(2), np.diag([4.0, 1.0]), np.ones(2), np.eye(2)) == pytest.approx(3.0, abs=1e-12)


def _gaussian_moments(x):
    return tuple(m.numpy() for m in gaussian_fit(x))


def test_gaussian_moments_match_numpy():
    x = np.random.default_rng(2).normal(size=(50, 7))
    mu, sigma = _gaussian_moments(x)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.mean(axis=0), rtol=0, atol=1e-14)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=0, atol=1e-13)


def test_fid_of_a_set_with_itself_is_zero_and_torch_matches_numpy():
    x = np.random.default_rng(3).normal(size=(300, 64)).astype(np.float32)
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-9)
    y = x[::-1] * 1.1 + 0.2
    assert fid_from_features(torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(y))) == pytest.approx(
        fid_from_features(x, y), rel=1e-12)
    mu1, s1 = _gaussian_moments(x)
    mu2, s2 = _gaussian_moments(y)
    assert fid_from_features(x, y) == pytest.approx(_scipy_fd(mu1, s1, mu2, s2), abs=2 * _fd_tol(s1, s2, mu1, mu2))


def test_fid_singular_covariances_is_finite():
    # n < d: rank-deficient covariances (the usual case for small Inception sample counts).
    rng = np.random.default_rng(4)
    value = fid_from_features(rng.normal(size=(10, 40)), rng.normal(size=(12, 40)))
    assert np.isfinite(value) and value > 0


def test_bootstrap_interval_contains_value_and_is_reproducible():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) + 0.3
    iv = bootstrap_fid(a, b, n_boot=30, seed=7)
    assert isinstance(iv, FIDInterval)
    assert iv.value == pytest.approx(fid_from_features(a, b), rel=1e-12)
    assert iv.low <= iv.value <= iv.high
    assert (iv.n_boot, iv.seed, iv.n_a, iv.n_b, iv.confidence) == (30, 7, 400, 400, 0.95)
    # Resampling with replacement inflates FID: the reported shift is positive for equal laws.
    same = bootstrap_fid(a, rng.normal(size=(400, 8)), n_boot=30, seed=0)
    assert same.bootstrap_shift > 0
    assert bootstrap_fid(a, b, n_boot=30, seed=7) == iv
    with pytest.raises(Exception):
        iv.value = 0.0  # frozen


def _pair(rng, shape, noise, dtype):
    a = rng.integers(0, 256, size=shape)
    b = np.clip(a + rng.normal(0, noise, size=shape), 0, 255)
    return a.astype(dtype), b.astype(dtype)


@settings(max_examples=10)
@given(seed=st.integers(0, 2**32 - 1), channels=st.sampled_from([1, 3]), h=st.integers(11, 24),
       w=st.integers(11, 24), noise=st.floats(1, 60))
def test_ssim_psnr_match_skimage(seed, channels, h, w, noise):
    rng = np.random.default_rng(seed)
    a, b = _pair(rng, (2, channels, h, w), noise, np.float64)
    g = ssim_gaussian(a, b, data_range=255)
    bx = ssim_box(a, b, data_range=255)
    p = psnr(a, b, data_range=255)
    for i in range(2):
        ref_g = skimage_metrics.structural_similarity(
            a[i], b[i], data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=0)
        ref_b = skimage_metrics.structural_similarity(
            a[i], b[i], data_range=255, win_size=11, use_sample_covariance=False, channel_axis=0)
        ref_p = skimage_metrics.peak_signal_noise_ratio(a[i], b[i], data_range=255)
        assert g.per_image[i] == pytest.approx(ref_g, abs=1e-10)
        assert bx.per_image[i] == pytest.approx(ref_b, abs=1e-10)
        assert p.per_image[i] == pytest.approx(ref_p, abs=1e-10)
    assert g.mean == pytest.approx(g.per_image.mean(), abs=1e-15)
    assert g.per_image.shape == (2,) and g.metric == "ssim-gaussian11-sigma1.5" and bx.metric == "ssim-box11"


def test_metrics_accept_uint8_torch_and_signed_range():
    rng = np.random.default_rng(6)
    a, b = _pair(rng, (3, 1, 28, 28), 20, np.uint8)
    ref = ssim_gaussian(a.astype(np.float64), b.astype(np.float64), data_range=255)
    assert np.array_equal(ssim_gaussian(torch.from_numpy(a), torch.from_numpy(b), data_range=255).per_image, ref.per_image)
    # Scaling to [0, 1] with data_range 1 leaves SSIM unchanged; PSNR is also shift invariant.
    np.testing.assert_allclose(ssim_gaussian(a / 255, b / 255, data_range=1.0).per_image, ref.per_image, atol=1e-12)
    sa, sb = a / 127.5 - 1, b / 127.5 - 1
    np.testing.assert_allclose(psnr(sa, sb, data_range=2.0).per_image, psnr(a, b, data_range=255).per_image, atol=1e-9)
    # SSIM is not shift invariant (its luminance term uses the means): [-1, 1] images differ.
    assert not np.allclose(ssim_gaussian(sa, sb, data_range=2.0).per_image, ref.per_image, atol=1e-3)


def test_identical_images():
    a = np.random.default_rng(7).integers(0, 256, size=(2, 3, 16, 16)).astype(np.uint8)
    np.testing.assert_allclose(ssim_gaussian(a, a, data_range=255).per_image, 1.0, atol=1e-15)
    np.testing.assert_allclose(ssim_box(a, a, data_range=255).per_image, 1.0, atol=1e-15)
    assert np.all(np.isinf(psnr(a, a, data_range=255).per_image))


def test_ssim_is_chunked_consistently():
    rng = np.random.default_rng(8)
    a, b = _pair(rng, (600, 1, 12, 12), 30, np.float64)  # > one internal chunk of 512
    full = ssim_gaussian(a, b, data_range=255).per_image
    np.testing.assert_allclose(full[550:], ssim_gaussian(a[550:], b[550:], data_range=255).per_image, atol=1e-15)


def test_bad_inputs_are_named():
    a = np.zeros((2, 1, 16, 16))
    with pytest.raises(ValueError, match="4-D"):
        ssim_gaussian(a[0], a[0], data_range=1.0)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, a[:1], data_range=1.0)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim_box(a[..., :8, :8], a[..., :8, :8], data_range=1.0)
    bad = a.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        psnr(bad, a, data_range=1.0)
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, a, data_range=0.0)
    with pytest.raises(TypeError, match="data_range"):
        psnr(a, a, data_range="255")
    with pytest.raises(TypeError, match="dtype"):
        psnr(a.astype(bool), a.astype(bool), data_range=1.0)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        psnr([[1.0]], [[1.0]], data_range=1.0)
    with pytest.raises(ValueError, match="2-D"):
        fid_from_features(np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="at least 2 samples"):
        fid_from_features(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="feature dimension"):
        fid_from_features(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="sigma2 must have shape"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_fid(np.zeros((4, 2)), np.zeros((4, 2)), n_boot=1)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_fid(np.zeros((4, 2)), np.zeros((4, 2)), confidence=1.5)
