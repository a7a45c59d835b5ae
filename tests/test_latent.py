"""Tests of fmq_theory.harness.latent: PCA-20 statistics, hooks on a tiny UNet, ODE inversion."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fmq_theory.flow.solvers import integrate
from fmq_theory.harness.latent import (
    compare_inversions,
    invert,
    inversion_stability,
    latent_features,
    latent_stability,
    pca_variance_stats,
    top_eigenvalues,
)
from fmq_theory.harness.models.unet import UNet, UNetConfig


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 30), d=st.integers(1, 30), k=st.integers(1, 25))
def test_pca_variances_match_numpy_covariance(seed, n, d, k):
    # Oracle: eigenvalues of numpy's unbiased covariance (both Gram sides d <= n and d > n).
    x = np.random.default_rng(seed).normal(size=(n, d)) * np.linspace(0.1, 3, d)
    stats = pca_variance_stats(torch.from_numpy(x), n_components=k)
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    ref = np.sort(np.clip(np.linalg.eigvalsh(cov), 0, None))[::-1]
    expected = np.zeros(k)
    expected[: min(k, d)] = ref[: min(k, d)]
    expected[min(k, n - 1, d):] = 0.0  # rank <= n - 1: the rest is round-off in the oracle
    # Eigenvalues in float64: absolute error ~ eps * lambda_max * dimension.
    tol = 1e-12 * max(ref.max(), 1e-300) * max(n, d)
    np.testing.assert_allclose(stats.variances, expected, rtol=0, atol=tol)
    assert stats.n_images == n and stats.n_features == d
    assert 0.0 <= stats.explained_fraction <= 1.0 + 1e-12


def test_pca_collapsed_count_and_summary():
    # 30 known directions: variances 4 (x5), 1e-6 (x3), 0 (rest) -> with 20 components,
    # 15 of them are below the paper's threshold 1e-4.
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(50, 50)))
    raw = rng.normal(size=(4000, 8))
    # Orthonormal, centred columns (QR of centred data) scaled to unit sample variance.
    scores = np.linalg.qr(raw - raw.mean(0))[0] * np.sqrt(4000 - 1)
    scale = np.array([2.0] * 5 + [1e-3] * 3)
    x = (scores * scale) @ q[:, :8].T
    s = pca_variance_stats(torch.from_numpy(x), module="m")
    np.testing.assert_allclose(s.variances[:8], np.sort(scale**2)[::-1], rtol=1e-9, atol=1e-15)
    assert s.collapsed == 15 and s.module == "m"
    assert s.mean_variance == pytest.approx(s.variances.mean()) and s.std_variance == pytest.approx(s.variances.std())
    assert s.explained_fraction == pytest.approx(1.0, abs=1e-12)


def _spectrum_gram(n, spectrum, seed):
    """``U diag(spectrum) U^T`` for a random orthonormal ``U``: its eigenvalues are known exactly."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.normal(size=(n, n)))[0]
    return torch.from_numpy((u * spectrum) @ u.T), np.sort(spectrum)[::-1]


@pytest.mark.parametrize("name, spectrum", [
    ("power 0.5 (slow decay)", np.arange(1, 401, dtype=float) ** -0.5),
    ("power 2", np.arange(1, 401, dtype=float) ** -2.0),
    ("rank 7, then zeros", np.r_[np.linspace(5, 1, 7), np.zeros(393)]),
    ("clustered: 30 equal, then a gap", np.r_[np.full(30, 2.0), np.linspace(1, 0.1, 370)]),
    ("paper threshold: 1e-6 after 3 large", np.r_[[9.0, 4.0, 1.0], np.full(397, 1e-6)]),
])
def test_top_eigenvalues_subspace_path_against_known_spectrum(name, spectrum):
    # Oracle: the spectrum the matrix was built from. The subspace path is forced (min_order
    # below the order); the certified error is rtol * lambda_1 plus the round-off of forming
    # the matrix (~ n eps lambda_1).
    gram, ref = _spectrum_gram(400, spectrum, seed=1)
    got = top_eigenvalues(gram, 20, min_order=50).numpy()
    np.testing.assert_allclose(got, ref[:20], rtol=0, atol=1e-11 * ref[0] + 400 * 2.3e-16 * ref[0])
    assert np.all(np.diff(got) <= 0) and np.all(got >= 0)


def test_top_eigenvalues_falls_back_to_eigvalsh_when_not_converged():
    # order 400 > 3 blocks of 2k = 40 columns: the lobpcg path, stopped after one step
    gram, _ = _spectrum_gram(400, np.arange(1, 401, dtype=float) ** -0.1, seed=2)
    full = torch.linalg.eigvalsh(0.5 * (gram + gram.T)).flip(0)[:20].clamp(min=0.0)
    assert torch.equal(top_eigenvalues(gram, 20, max_iter=1, min_order=50), full)
    assert torch.equal(top_eigenvalues(gram, 20), full)  # order 400 <= SUBSPACE_MIN_ORDER: eigvalsh
    small = gram[:119, :119]  # under 3 blocks: eigvalsh
    assert torch.equal(top_eigenvalues(small, 20, min_order=50),
                       torch.linalg.eigvalsh(0.5 * (small + small.T)).flip(0)[:20].clamp(min=0.0))
    assert top_eigenvalues(gram[:5, :5], 20).shape == (5,)  # k > n: n eigenvalues


def test_pca_variances_on_the_subspace_path_match_numpy_covariance():
    # d = 1200 features of n = 1500 images: the Gram of order 1200 is above SUBSPACE_MIN_ORDER.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 1200)) * np.arange(1, 1201) ** -0.5
    s = pca_variance_stats(torch.from_numpy(x))
    ref = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    np.testing.assert_allclose(s.variances, ref[:20], rtol=0, atol=1e-11 * ref[0] + 1200 * 2.3e-16 * ref[0])
    assert s.explained_fraction == pytest.approx(ref[:20].sum() / ref.sum(), rel=1e-12)


def _tiny_unet():
    torch.manual_seed(0)
    cfg = UNetConfig(image_size=8, base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                     attention_resolutions=(4,), num_heads=2, groups=4, dropout=0.0, num_classes=None)
    return UNet(cfg).eval()


def _run_at_t0(model):
    return lambda x: model(x, torch.zeros(x.shape[0]), None)


def test_latent_features_on_unet_match_manual_forward():
    model = _tiny_unet()
    last = f"down.{len(model.down) - 1}.{len(model.down[-1]) - 1}"
    x = torch.randn(10, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    feats = latent_features(model, _run_at_t0(model), x, module_names=[last, "mid2"], batch_size=4)
    # Independent recomputation of the middle-block output from the model's own pieces.
    with torch.no_grad():
        emb = model.embed(torch.zeros(10), None, 10)
        h = model.input_conv(x)
        for layers in model.down:
            h = model._run_stage(layers, h, emb)
        down_out = h
        mid = model.mid2(model.mid_attn(model.mid1(h, emb)), emb)
    np.testing.assert_allclose(feats[last], down_out.flatten(1), atol=1e-5)
    np.testing.assert_allclose(feats["mid2"], mid.flatten(1), atol=1e-5)
    stats = latent_stability(model, _run_at_t0(model), x, module_names=[last, "mid2"], n_components=5)
    assert [s.module for s in stats] == [last, "mid2"] and stats[1].n_features == mid[0].numel()
    assert model.training is False and not model.mid2._forward_hooks  # hooks removed


def test_latent_features_errors():
    model = _tiny_unet()
    x = torch.zeros(2, 1, 8, 8)
    with pytest.raises(ValueError, match="never called"):
        latent_features(model, _run_at_t0(model), x, module_names=["down"])  # a ModuleList
    with pytest.raises(ValueError, match="no submodule"):
        latent_features(model, _run_at_t0(model), x, module_names=["nope"])
    with pytest.raises(TypeError, match="floating"):
        latent_features(model, _run_at_t0(model), x.to(torch.uint8), module_names=["mid2"])
    with pytest.raises(ValueError, match="distinct"):
        latent_features(model, _run_at_t0(model), x, module_names=["mid2", "mid2"])
    with pytest.raises(ValueError, match="at least 2 rows"):
        pca_variance_stats(torch.zeros(1, 3))
    assert not model.mid2._forward_hooks


def _midpoint(steps):
    return lambda v, x, **kw: integrate(v, x, solver="midpoint", steps=steps, **kw).x


def test_invert_linear_field_matches_exact_solution():
    # dx/dt = a x  =>  x(0) = x(1) exp(-a). Midpoint with h = 1/200 has relative error
    # (a h)^3 / 6 * 200 ~ 1e-6 for a = 0.7.
    a = 0.7
    x1 = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    z = invert(lambda t, x: a * x, x1, solver=_midpoint(200), batch_size=4)
    np.testing.assert_allclose(z, x1 * math.exp(-a), rtol=1e-5, atol=1e-6)
    # Two fields a, b: |z_b - z_a|^2 / |z_a|^2 = (exp(-b) / exp(-a) - 1)^2 for every image.
    b = 0.9
    cmp = inversion_stability(lambda t, x: a * x, lambda t, x: b * x, x1, solver=_midpoint(200))
    expected = (math.exp(a - b) - 1) ** 2
    np.testing.assert_allclose(cmp.relative_sq_distance, expected, rtol=1e-4)
    assert cmp.n_images == 6 and cmp.mean_relative_sq_distance == pytest.approx(expected, rel=1e-4)
    assert cmp.mean_sq_norm == pytest.approx(float((x1 * math.exp(-a)).pow(2).mean()), rel=1e-4)


def test_inversion_of_unet_is_deterministic_and_self_consistent():
    model = _tiny_unet()
    v = lambda t, x: model(x, torch.full((x.shape[0],), t), None)  # noqa: E731
    x1 = torch.rand(3, 1, 8, 8) * 2 - 1
    cmp = inversion_stability(v, v, x1, solver=_midpoint(4))
    assert cmp.mean_relative_sq_distance == 0.0 and cmp.mean_sq_norm > 0


def test_compare_inversions_errors():
    z = torch.ones(2, 3)
    with pytest.raises(ValueError, match="one shape"):
        compare_inversions(z, torch.ones(3, 3))
    with pytest.raises(ValueError, match="diverged"):
        compare_inversions(z, torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="all-zero"):
        compare_inversions(torch.zeros(2, 3), z)
    with pytest.raises(TypeError, match="solver must return"):
        invert(lambda t, x: x, torch.zeros(1, 1, 2, 2), solver=lambda v, x, **kw: x.sum())
