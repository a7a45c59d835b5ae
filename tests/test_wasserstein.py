"""Exact 1-D Wasserstein distances, cross-checked against POT's ``ot.wasserstein_1d``.

POT returns :math:`W_p^p`; both are exact sums over the merged cumulative masses, so
they agree to float64 rounding: tolerance ``1e-9`` relative (a few hundred ulps of the
cumulated sums) plus ``1e-12`` absolute for distances near 0.
"""

import doctest

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fmq_theory.theory.wasserstein as wmod
from fmq_theory.quantizers import quantize
from fmq_theory.theory.wasserstein import quantization_w2, wasserstein_1d

ot = pytest.importorskip("ot")

seeds = st.integers(0, 2**32 - 1)


@given(
    seed=seeds,
    n=st.integers(1, 50),
    m=st.integers(1, 50),
    p=st.sampled_from([1.0, 1.5, 2.0, 3.0]),
    weighted=st.booleans(),
    ties=st.booleans(),
)
def test_agrees_with_pot(seed, n, m, p, weighted, ties):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(n) * 3
    v = rng.standard_t(3, m) + 1
    if ties:
        u, v = np.round(u), np.round(v)
    uw = rng.random(n) + (0.0 if weighted else 1.0) if weighted else None
    vw = rng.random(m) if weighted else None
    got = wasserstein_1d(u, v, u_weights=uw, v_weights=vw, p=p)
    a = np.full(n, 1 / n) if uw is None else uw / uw.sum()
    b = np.full(m, 1 / m) if vw is None else vw / vw.sum()
    want = ot.wasserstein_1d(u, v, a, b, p=p) ** (1 / p)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


@given(seed=seeds, n=st.integers(1, 60))
def test_equal_size_shortcut_equals_general_formula(seed, n):
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal(n), rng.laplace(size=n)
    fast = wasserstein_1d(u, v)
    general = wasserstein_1d(u, v, u_weights=np.ones(n), v_weights=np.ones(n))
    assert fast == pytest.approx(general, rel=1e-12, abs=1e-15)


def test_zero_weight_points_are_ignored():
    assert wasserstein_1d([0.0, 100.0], [0.0], u_weights=[1.0, 0.0]) == 0.0


def test_metric_axioms_on_examples():
    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal(20), rng.standard_normal(30) + 1, rng.laplace(size=25)
    assert wasserstein_1d(a, a) == 0.0
    assert wasserstein_1d(a, b) == pytest.approx(wasserstein_1d(b, a), rel=1e-12)
    assert wasserstein_1d(a, c) <= wasserstein_1d(a, b) + wasserstein_1d(b, c) + 1e-12
    # translation by s moves every quantile by s: W_p = |s| for every p
    assert wasserstein_1d(a, a + 2.5, p=3) == pytest.approx(2.5, rel=1e-12)


def test_quantization_w2_accepts_quantized_tensor_and_torch():
    w = torch.randn(16, 9, dtype=torch.float64)
    qt = quantize(w, method="equal_mass", bits=2)
    d = quantization_w2(w, qt)
    assert d == pytest.approx(wasserstein_1d(w.numpy(), qt.dequantize().numpy()), rel=1e-15)
    assert d**2 == pytest.approx(float(torch.mean((w - qt.dequantize()) ** 2)), rel=1e-9)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: wasserstein_1d([], [1.0]), "u is empty"),
        (lambda: wasserstein_1d([np.nan], [1.0]), "u contains non-finite"),
        (lambda: wasserstein_1d([1.0], [np.inf]), "v contains non-finite"),
        (lambda: wasserstein_1d([1.0], [1.0], p=0.5), "p=0.5"),
        (lambda: wasserstein_1d([1.0, 2.0], [1.0], u_weights=[1.0]), "u_weights has 1"),
        (lambda: wasserstein_1d([1.0], [1.0], v_weights=[-1.0]), "v_weights has negative"),
        (lambda: wasserstein_1d([1.0], [1.0], u_weights=[0.0]), "u_weights sums to 0"),
        (lambda: quantization_w2(np.ones(3), np.ones(4)), "w has 3 entries"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_doctests():
    failures, _ = doctest.testmod(wmod)
    assert failures == 0
