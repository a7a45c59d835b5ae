"""sampled_dfid: exact identities against frechet_distance, and its Monte Carlo accuracy."""

import numpy as np
import pytest
import scipy.linalg

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
