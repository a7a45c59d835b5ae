"""Sensitivity-weighted exact k-means (fmq_theory.plan.weighted) against brute force."""

import itertools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fmq_theory.plan.weighted import (SENSITIVITY_FLOOR, nearest_codes, weighted_codebook, weighted_codebooks,
                                      weighted_cost)


def brute_force_cost(x: np.ndarray, s: np.ndarray, n_levels: int) -> float:
    """Every assignment of the points to at most ``n_levels`` clusters, each at its weighted mean."""
    best = np.inf
    n = x.size
    for labels in itertools.product(range(n_levels), repeat=n):
        labels = np.array(labels)
        cost = 0.0
        for k in set(labels.tolist()):
            m = labels == k
            mu = np.sum(s[m] * x[m]) / np.sum(s[m])
            cost += float(np.sum(s[m] * (x[m] - mu) ** 2))
        best = min(best, cost)
    return best


values = st.lists(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.25, 1.0, 3.0]), min_size=1, max_size=5)


@given(values, st.data(), st.integers(1, 2))
@example([0.0, 1.0, 10.0, 11.0], None, 1)
@example([0.0, 0.0, 1.0], None, 1)
def test_weighted_dp_equals_brute_force(xs, data, bits):
    x = np.array(xs)
    if data is None:
        s = np.array([1.0, 3.0, 1.0, 1.0])[: x.size]
        s = np.concatenate([s, np.ones(x.size - s.size)])
    else:
        s = np.array(data.draw(st.lists(st.sampled_from([0.1, 0.5, 1.0, 2.0, 7.0]), min_size=x.size,
                                        max_size=x.size)))
    codebook, codes = weighted_codebook(x[None, :], s[None, :], bits=bits)
    twin_codebook, _ = weighted_codebook(x[None, :], s[None, :], bits=bits, exact_twin=True)
    got = weighted_cost(x[None, :], s[None, :], codebook, codes)
    want = brute_force_cost(x, s, 1 << bits)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert weighted_cost(x[None, :], s[None, :], twin_codebook, codes) == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert np.all(np.diff(codebook[0]) >= 0)


def test_unit_sensitivity_is_plain_lloyd_max():
    """With s = 1 the weighted DP is the package's lloyd_max (same levels to rounding)."""
    from fmq_theory.quantizers import quantize

    x = np.random.default_rng(0).standard_normal((3, 200))
    codebook, codes = weighted_codebook(x, np.ones_like(x), bits=3)
    qt = quantize(x, method="lloyd_max", bits=3, granularity="channel")
    np.testing.assert_allclose(codebook, qt.levels, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(codes, qt.codes)


def test_weighting_lowers_the_weighted_cost():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 500))
    s = np.exp(3 * rng.standard_normal((1, 500)))
    w_cb, w_codes = weighted_codebook(x, s, bits=2)
    u_cb, u_codes = weighted_codebook(x, np.ones_like(x), bits=2)
    assert weighted_cost(x, s, w_cb, w_codes) < weighted_cost(x, s, u_cb, u_codes)


def test_nearest_codes_ties_go_low():
    assert nearest_codes(np.array([[0.5, 0.49, 0.51]]), np.array([[0.0, 1.0]])).tolist() == [[0, 0, 1]]


@pytest.mark.parametrize("shape, n_levels", [((3, 7), 4), ((2048, 64), 8), ((1, 300_000), 16), ((40, 64), 256),
                                             ((5, 100), 512)])
def test_nearest_codes_equal_a_searchsorted_per_row(shape, n_levels):
    """The oracle is ``numpy.searchsorted`` (side left) on each row's mid-points, with repeated
    levels and values exactly on a mid-point; the larger shapes take the kernel's parallel path."""
    rng = np.random.default_rng(1)
    levels = np.sort(np.round(rng.standard_normal((shape[0], n_levels)), 1), axis=1)
    mids = 0.5 * (levels[:, 1:] + levels[:, :-1])
    x = rng.standard_normal(shape)
    x[:, ::5] = mids[:, rng.integers(0, n_levels - 1, size=x[:, ::5].shape[1])]
    want = np.stack([np.searchsorted(m, row, side="left") for m, row in zip(mids, x)])
    codes = nearest_codes(x, levels)
    assert codes.dtype == (np.uint8 if n_levels <= 256 else np.uint16)
    np.testing.assert_array_equal(codes, want)


@pytest.mark.parametrize("bad", [np.array([[-1.0, 1.0]]), np.array([[np.nan, 1.0]])])
def test_bad_sensitivity_is_refused(bad):
    with pytest.raises(ValueError, match="s must be finite"):
        weighted_codebook(np.zeros((1, 2)), bad, bits=1)


def test_near_zero_sensitivities_keep_a_positive_cell_mass():
    """Regression (the 55.7M network, 2026-12-03): 50 sensitive values below 19,950 of zero
    sensitivity.  With a floor of 1e-12 times the mean, a cell of floored values cancelled to a
    zero mass in the DP's prefix sums (ZeroDivisionError).  Now the codebook is finite, sorted,
    and, in the cost it minimises (the floored masses), no worse than a feasible codebook: the
    optimal one of the 50 sensitive values alone (1e-9 relative); in the unfloored cost the
    floor costs at most 1e-5 relative."""
    x = np.sort(np.random.default_rng(0).normal(size=20_000))[None]
    s = np.zeros_like(x)
    s[0, :50] = 1.0
    codebook, codes = weighted_codebook(x, s, bits=4)
    assert np.all(np.isfinite(codebook)) and np.all(np.diff(codebook) >= 0)
    alone, _ = weighted_codebook(x[:, :50], s[:, :50], bits=4)
    alone_codes = nearest_codes(x, alone)
    floored = np.maximum(s, SENSITIVITY_FLOOR * s.mean())
    assert weighted_cost(x, floored, codebook, codes) <= weighted_cost(x, floored, alone, alone_codes) * (1 + 1e-9)
    assert weighted_cost(x, s, codebook, codes) <= weighted_cost(x, s, alone, alone_codes) * (1 + 1e-5)


@pytest.mark.parametrize("scale", [1e-300, 1e-8, 1e8, 1e300])
def test_codebook_does_not_depend_on_the_scale_of_the_sensitivities(scale):
    """Scaling every sensitivity of a group leaves the weighted optimum where it is; extreme
    scales neither underflow nor overflow (levels equal to 1e-12 relative)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 400))
    s = rng.exponential(size=(3, 400))
    base, base_codes = weighted_codebook(x, s, bits=3)
    scaled, codes = weighted_codebook(x, s * scale, bits=3)
    np.testing.assert_allclose(scaled, base, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(codes, base_codes)


def test_a_group_without_sensitivity_is_plain_lloyd_max():
    """All-zero sensitivities weigh every value alike: the codebook of unit sensitivities."""
    x = np.random.default_rng(2).normal(size=(2, 300))
    np.testing.assert_array_equal(weighted_codebook(x, np.zeros_like(x), bits=3)[0],
                                  weighted_codebook(x, np.ones_like(x), bits=3)[0])


magnitudes = st.sampled_from([0.0, 0.0, 0.0, 1e-300, 1e-30, 1e-8, 1.0, 1e8, 1e30, 1e300])


@settings(deadline=None)
@given(st.lists(magnitudes, min_size=4, max_size=300), st.integers(1, 4), st.integers(0, 2**32 - 1))
@example([1e300] + [0.0] * 299, 4, 0)
@example([0.0] * 10, 2, 0)
@example([0.0, 0.0, 1e-300, 0.0], 2, 278582)  # a one-value cell's mean rounded an ulp above the value
def test_any_pattern_of_sensitivities_gives_a_finite_sorted_codebook(sens, bits, seed):
    """Zeros and magnitudes from 1e-300 to 1e300 in one group: the codebook is finite, sorted,
    inside the range of the values, and each value's code is its nearest level."""
    x = np.random.default_rng(seed).normal(size=(1, len(sens)))
    codebook, codes = weighted_codebook(x, np.array([sens]), bits=bits)
    assert np.all(np.isfinite(codebook)) and np.all(np.diff(codebook) >= 0)
    assert x.min() <= codebook.min() and codebook.max() <= x.max()
    np.testing.assert_array_equal(codes, nearest_codes(x, codebook))


@given(st.integers(1, 6), st.integers(1, 80), st.sets(st.integers(1, 5), min_size=1, max_size=4),
       st.integers(0, 2**32 - 1), st.booleans())
@example(3, 5, {1, 2, 3, 4}, 0, True)  # fewer distinct values than levels in most rows
def test_one_run_gives_every_widths_codebook(rows, m, widths, seed, ties):
    """weighted_codebooks at several widths equals weighted_codebook at each, bit for bit (the
    numba path and the exact twin), including rows with fewer distinct values than levels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, m))
    if ties:
        x = np.round(x)
    s = rng.exponential(size=(rows, m)) * (rng.random((rows, m)) > 0.2)
    for twin in (False, True):
        books = weighted_codebooks(x, s, bits=sorted(widths), exact_twin=twin)
        assert sorted(books) == sorted(widths)
        for b in widths:
            alone = weighted_codebook(x, s, bits=b, exact_twin=twin)[0]
            np.testing.assert_array_equal(books[b], alone)
    with pytest.raises(ValueError, match="distinct"):
        weighted_codebooks(x, s, bits=(2, 2))
    with pytest.raises(ValueError, match="bits=13"):
        weighted_codebooks(x, s, bits=(2, 13))
