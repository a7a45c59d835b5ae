"""The two Frechet-distance implementations are twins and must agree.

``fmq_theory.theory.fid_chain.frechet_distance`` (numpy, torch-free: the citable calculator)
and ``fmq_theory.flow.frechet.frechet_distance`` (torch, float64 on the features'
device: used inside bootstrap loops on the GPU) compute the same formula by the same
symmetric eigen-decompositions; each is the other's oracle.
"""

import numpy as np
from hypothesis import given, strategies as st

from fmq_theory.theory.fid_chain import frechet_distance as frechet_numpy
from fmq_theory.flow.frechet import FrechetToReference, gaussian_fit
from fmq_theory.flow.frechet import frechet_distance as frechet_torch


@given(d=st.integers(1, 12), rank=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_numpy_and_torch_twins_agree(d, rank, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, min(rank, d)))
    b = rng.standard_normal((d, d))
    s1, s2 = a @ a.T, b @ b.T / d  # s1 possibly singular
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    x, y = frechet_numpy(mu1, s1, mu2, s2), frechet_torch(mu1, s1, mu2, s2)
    # both round the cross term tr((S1^1/2 S2 S1^1/2)^1/2) through eigh in float64; near-zero
    # eigenvalues are only accurate to sqrt(eps * lambda_max) each, hence the d*sqrt(eps) scale
    scale = np.trace(s1) + np.trace(s2) + np.sum((mu1 - mu2) ** 2)
    assert abs(x - y) <= 4 * d * np.sqrt(np.finfo(float).eps) * scale


def test_frechet_to_reference_equals_frechet_distance():
    """The cached-root form gives frechet_distance with the reference first, bit for bit."""
    rng = np.random.default_rng(5)
    ref = gaussian_fit(rng.normal(size=(300, 7)) @ rng.normal(size=(7, 7)))
    to_ref = FrechetToReference(*ref)
    for scale in (0.5, 1.0, 3.0):
        mu, cov = gaussian_fit(scale * rng.normal(size=(200, 7)) + 0.3)
        assert to_ref(mu, cov) == frechet_torch(ref[0], ref[1], mu, cov)
