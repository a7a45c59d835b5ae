"""sampled_dfid: exact identities against frechet_distance, and its Monte Carlo accuracy."""

import numpy as np
import pytest
import scipy.linalg
import torch

from fmq_theory.bounds import sampled_dfid
from fmq_theory.flow.frechet import fid_from_features


def _scipy_fd(mu1, s1, mu2, s2):
    """Independent oracle: the textbook formula with scipy's sqrtm."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(1)
    d = 6
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    real = rng.normal(size=(3000, d)) @ mix
    fp = rng.normal(size=(3000, d)) @ mix + 0.05
    return real, fp, mix


def test_all_pairs_reduce_to_the_direct_fid_change(feats):
    """With the FP samples themselves as the pairs, the estimate is FID(y) - FID(x) exactly."""
    real, fp, mix = feats
    rng = np.random.default_rng(2)
    q = fp * 1.1 + rng.normal(scale=0.1, size=fp.shape) @ mix
    mu, cov = real.mean(0), np.cov(real, rowvar=False)
    pred = sampled_dfid(fp, fp, q, reference_mean=mu, reference_cov=cov, n_boot=10)
    direct = fid_from_features(real, q) - fid_from_features(real, fp)
    oracle = (_scipy_fd(q.mean(0), np.cov(q, rowvar=False), mu, cov)
              - _scipy_fd(fp.mean(0), np.cov(fp, rowvar=False), mu, cov))
    assert pred.value == pytest.approx(direct, rel=1e-9, abs=1e-12)
    assert pred.value == pytest.approx(oracle, rel=1e-6)
    assert pred.low <= pred.value <= pred.high


def test_identical_pairs_predict_no_change(feats):
    real, fp, _ = feats
    pred = sampled_dfid(fp, fp[:200], fp[:200], reference_mean=real.mean(0), reference_cov=np.cov(real, rowvar=False),
                        n_boot=20)
    assert pred.value == pytest.approx(0.0, abs=1e-9) and pred.low == pytest.approx(0.0, abs=1e-9)
    assert pred.bias == pytest.approx(0.0, abs=1e-9) and pred.debiased == pytest.approx(0.0, abs=1e-9)
    assert pred.paired == pytest.approx(0.0, abs=1e-9) and pred.paired_extrapolated == pytest.approx(0.0, abs=1e-9)
    assert pred.paired_low == pytest.approx(0.0, abs=1e-9) and pred.paired_high == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("pairs", [24, 48])
def test_bootstrap_bias_correction_moves_toward_the_large_sample_change(pairs):
    """Quantization noise independent of the sample inflates the covariance; with few pairs
    against 32 feature dimensions the plug-in estimate is biased far above the change that 200,000
    samples measure (the oracle).  Over 8 seeds the debiased estimate errs by at most half as much
    (measured: 3x less at 24 pairs, 6.5x at 48), and at 48 pairs its mean error is within 0.05.
    The split-half extrapolation errs by at most half as much as the plain estimate too (measured:
    9.3x less at 24 pairs, 3.8x at 48), and with fewer pairs than dimensions (24) less than the
    debiased one (measured 3.1x less)."""
    d = 32
    rng = np.random.default_rng(5)
    mix = rng.normal(size=(d, d)) / np.sqrt(d) * (1.0 / np.arange(1, d + 1) ** 0.5)

    def draw(n, r):
        return r.normal(size=(n, d)) @ mix.T

    def quantized(x, r):
        return x + 0.5 * draw(len(x), r) + 0.02

    real = draw(20000, rng) * 1.05
    mu, cov = real.mean(0), np.cov(real, rowvar=False)
    big = np.random.default_rng(9)
    xb = draw(200000, big)
    truth = fid_from_features(real, quantized(xb, big)) - fid_from_features(real, xb)
    plain, debiased, extrapolated = [], [], []
    for seed in range(8):
        r = np.random.default_rng(100 + seed)
        fp, a = draw(3000, r), draw(pairs, r)
        pred = sampled_dfid(fp, a, quantized(a, r), reference_mean=mu, reference_cov=cov, n_boot=100, seed=seed)
        assert pred.debiased == pytest.approx(pred.value - pred.bias) and pred.bias > 0
        plain.append(pred.value - truth)
        debiased.append(pred.debiased - truth)
        extrapolated.append(pred.extrapolated - truth)
    assert np.mean(np.abs(debiased)) <= 0.5 * np.mean(np.abs(plain))
    assert np.mean(np.abs(extrapolated)) <= 0.5 * np.mean(np.abs(plain))
    if pairs > d:
        assert abs(np.mean(debiased)) <= 0.05
    else:
        assert np.mean(np.abs(extrapolated)) < np.mean(np.abs(debiased))


def test_extrapolation_is_twice_the_value_less_two_random_halves():
    """The split-half extrapolation against its definition, recomputed from the same halves
    (``torch.randperm`` drawn after the bootstrap from the seed's generator): (M v - h v_h)/(M - h),
    twice the value less the halves' mean for even M; with fewer than 4
    pairs there are no halves with a covariance and it is the plain value; the bootstrap's
    interval and bias do not depend on it."""
    rng = np.random.default_rng(3)
    real, fp, a = rng.normal(size=(500, 3)), rng.normal(size=(400, 3)), rng.normal(size=(9, 3))
    b = a * 1.2 + 0.3
    mu, cov = real.mean(0), np.cov(real, rowvar=False)
    pred = sampled_dfid(fp, a, b, reference_mean=mu, reference_cov=cov, n_boot=7, seed=4)
    gen = torch.Generator().manual_seed(4)
    reps = [sampled_dfid(fp, a[i], b[i], reference_mean=mu, reference_cov=cov, n_boot=2).value
            for i in (torch.randint(9, (9,), generator=gen).numpy() for _ in range(7))]
    perm = torch.randperm(9, generator=gen).numpy()
    halves = [sampled_dfid(fp, a[i], b[i], reference_mean=mu, reference_cov=cov, n_boot=2).value
              for i in (perm[:4], perm[4:8])]
    assert pred.bias == pytest.approx(np.mean(reps) - pred.value, rel=1e-12, abs=1e-12)
    assert pred.extrapolated == pytest.approx((9 * pred.value - 4 * np.mean(halves)) / 5, rel=1e-12, abs=1e-12)
    paired_halves = [sampled_dfid(fp, a[i], b[i], reference_mean=mu, reference_cov=cov, n_boot=2).paired
                     for i in (perm[:4], perm[4:8])]
    assert pred.paired_extrapolated == pytest.approx((9 * pred.paired - 4 * np.mean(paired_halves)) / 5,
                                                     rel=1e-12, abs=1e-12)
    even = sampled_dfid(fp, a[:8], b[:8], reference_mean=mu, reference_cov=cov, n_boot=7, seed=4)
    gen = torch.Generator().manual_seed(4)
    for _ in range(7):
        torch.randint(8, (8,), generator=gen)
    perm = torch.randperm(8, generator=gen).numpy()
    halves = [sampled_dfid(fp, a[i], b[i], reference_mean=mu, reference_cov=cov, n_boot=2).value
              for i in (perm[:4], perm[4:])]
    assert even.extrapolated == pytest.approx(2 * even.value - np.mean(halves), rel=1e-12, abs=1e-12)
    few = sampled_dfid(fp, a[:3], b[:3], reference_mean=mu, reference_cov=cov, n_boot=7, seed=4)
    assert few.extrapolated == few.value and few.paired_extrapolated == few.paired


def test_paired_difference_is_the_difference_of_the_pairs_own_fids(feats):
    """``paired`` against the textbook formula (scipy's sqrtm) on the pairs' moments alone; it does
    not depend on the full-precision samples, and its basic interval holds it."""
    real, fp, mix = feats
    rng = np.random.default_rng(7)
    a = rng.normal(size=(300, fp.shape[1])) @ mix + 0.05
    b = 0.9 * a + 0.2 * rng.normal(size=a.shape) @ mix
    mu, cov = real.mean(0), np.cov(real, rowvar=False)
    oracle = (_scipy_fd(b.mean(0), np.cov(b, rowvar=False), mu, cov)
              - _scipy_fd(a.mean(0), np.cov(a, rowvar=False), mu, cov))
    pred = sampled_dfid(fp, a, b, reference_mean=mu, reference_cov=cov, n_boot=30)
    other = sampled_dfid(fp[:500] * 1.3, a, b, reference_mean=mu, reference_cov=cov, n_boot=30)
    assert pred.paired == pytest.approx(oracle, rel=1e-6)
    assert other.paired == pred.paired and other.paired_low == pred.paired_low and other.value != pred.value
    assert pred.paired_low <= pred.paired <= pred.paired_high


def _synthetic_errors(quantized, *, pairs, d=32, seeds=8):
    """Errors of each estimate against the change 200,000 samples measure, over ``seeds`` draws."""
    rng = np.random.default_rng(5)
    mix = rng.normal(size=(d, d)) / np.sqrt(d) * (1.0 / np.arange(1, d + 1) ** 0.5)

    def draw(n, r):
        return r.normal(size=(n, d)) @ mix.T

    real = draw(20000, rng) * 1.05
    mu, cov = real.mean(0), np.cov(real, rowvar=False)
    big = np.random.default_rng(9)
    xb = draw(200000, big)
    truth = fid_from_features(real, quantized(xb, big, draw)) - fid_from_features(real, xb)
    errors = {k: [] for k in ("value", "extrapolated", "paired", "paired_extrapolated")}
    for seed in range(seeds):
        r = np.random.default_rng(100 + seed)
        fp, a = draw(3000, r), draw(pairs, r)
        pred = sampled_dfid(fp, a, quantized(a, r, draw), reference_mean=mu, reference_cov=cov, n_boot=20, seed=seed)
        for k in errors:
            errors[k].append(getattr(pred, k) - truth)
    return {k: float(np.mean(np.abs(v))) for k, v in errors.items()}


def test_paired_difference_where_the_law_is_kept_but_each_sample_moves():
    """A quantized model whose samples move but whose law does not (the true change is 0): with
    fewer pairs than dimensions (24 against 32) the control variate's excess is large and both its
    corrections keep much of it, while the paired difference's two FIDs share their bias (measured
    mean absolute errors 0.633 plain, 0.276 extrapolated, 0.110 paired over 8 seeds)."""
    err = _synthetic_errors(lambda x, r, draw: 0.8 * x + 0.6 * draw(len(x), r), pairs=24)
    assert err["paired"] <= 0.5 * err["extrapolated"] and err["paired"] <= 0.25 * err["value"]


def test_paired_extrapolation_where_the_spread_changes():
    """A quantized law of another spread (every feature scaled by 1.2): the paired difference keeps
    a bias (c_q - c_fp)/M, which its split-half extrapolation removes (measured mean absolute
    errors 0.239 paired, 0.068 extrapolated at 24 pairs, 0.130 and 0.066 at 48; the control variate
    errs less here, 0.070 and 0.021 at 24 pairs)."""
    for pairs in (24, 48):
        err = _synthetic_errors(lambda x, r, draw: 1.2 * x, pairs=pairs)
        assert err["paired_extrapolated"] <= 0.6 * err["paired"], pairs


def test_few_pairs_recover_the_change_of_many(feats):
    """400 pairs predict the change measured on 3000 samples within the interval's width (seeded)."""
    real, fp, mix = feats
    rng = np.random.default_rng(3)

    def quantized(x):  # a smooth distortion of every sample, like a small weight error
        return x + 0.3 * np.tanh(x) @ mix + 0.1

    x_pairs = rng.normal(size=(400, fp.shape[1])) @ mix + 0.05
    mu, cov = real.mean(0), np.cov(real, rowvar=False)
    pred = sampled_dfid(fp, x_pairs, quantized(x_pairs), reference_mean=mu, reference_cov=cov, n_boot=200)
    measured = fid_from_features(real, quantized(fp)) - fid_from_features(real, fp)
    assert measured > 0.05
    assert pred.low - 0.02 <= measured <= pred.high + 0.02
    assert 0.5 * measured <= pred.value <= 2 * measured


@pytest.mark.parametrize("bad, match", [
    (dict(pairs_q=np.zeros((5, 6))), "paired"),
    (dict(n_boot=1), "n_boot"),
    (dict(level=1.0), "level"),
    (dict(pairs_q=np.full((10, 6), np.nan)), "pairs_q"),
    (dict(reference_mean=np.zeros(5)), "reference_mean"),
])
def test_bad_input_names_the_argument(feats, bad, match):
    real, fp, _ = feats
    kwargs = dict(features_fp=fp, pairs_fp=fp[:10], pairs_q=fp[:10], reference_mean=real.mean(0),
                  reference_cov=np.cov(real, rowvar=False), n_boot=5) | bad
    with pytest.raises(ValueError, match=match):
        sampled_dfid(**kwargs)
