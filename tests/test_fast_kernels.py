"""The speed kernels equal their plain-numpy twins, and the selection path of per-tensor
``equal_mass`` equals the sorting path.

Integer outputs (codes, counts, order statistics) must match exactly; cell sums to
``1e-12`` relative to the sum of magnitudes involved (different summation orders).
"""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fmq_theory import quantize
from fmq_theory.quantizers import _kernels as K
from fmq_theory.quantizers import equal_mass

pytestmark = pytest.mark.skipif(not K.HAVE_NUMBA, reason="numba not installed: kernels are the twins")

seeds = st.integers(0, 2**32 - 1)


def _data(seed, shape, dtype, ties):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * rng.uniform(0.01, 100)
    if ties:
        x = np.round(x * 2) / 2
    return np.ascontiguousarray(x.astype(dtype))


@given(seed=seeds, r=st.integers(1, 4), m=st.integers(1, 300), bits=st.integers(1, 9),
       dtype=st.sampled_from([np.float16, np.float32, np.float64]))
def test_gather_levels_equals_twin(seed, r, m, bits, dtype):
    rng = np.random.default_rng(seed)
    levels = rng.standard_normal((r, 2**bits)).astype(dtype)
    codes = rng.integers(0, 2**bits, (r, m)).astype(np.uint8 if bits <= 8 else np.uint16)
    np.testing.assert_array_equal(K.gather_levels(levels, codes), K.gather_levels_numpy(levels, codes))


@given(seed=seeds, r=st.integers(1, 4), m=st.integers(1, 300), bits=st.integers(1, 9),
       dtype=st.sampled_from([np.float32, np.float64]), symmetric=st.booleans(), zero_row=st.booleans())
def test_grid_codes_equals_twin(seed, r, m, bits, dtype, symmetric, zero_row):
    x = _data(seed, (r, m), dtype, False)
    n_levels = 2**bits
    lowest = -(n_levels // 2) if symmetric else 0
    offset = np.zeros(r) if symmetric else x.min(axis=1).astype(np.float64)
    scale = (x.max(axis=1).astype(np.float64) - x.min(axis=1)) / (n_levels - 1)
    if zero_row:
        scale[0] = 0.0
    got = np.empty(x.shape, dtype=np.uint16)
    want = np.empty(x.shape, dtype=np.uint16)
    K.grid_codes(x, offset, scale, lowest, n_levels, got)
    K.grid_codes_numpy(x, offset, scale, lowest, n_levels, want)
    np.testing.assert_array_equal(got, want)


@given(seed=seeds, n=st.integers(1, 5000), n_ranks=st.integers(1, 20), ties=st.booleans(), negzero=st.booleans())
def test_order_statistics_equal_twin(seed, n, n_ranks, ties, negzero):
    x = _data(seed, n, np.float32, ties)
    if negzero:
        x[::3] = -0.0
    ranks = np.unique(np.random.default_rng(seed).integers(0, n, n_ranks)).astype(np.int64)
    got = K.order_statistics(x, ranks)
    if got is not None:  # None: too concentrated, the caller sorts
        np.testing.assert_array_equal(got, K.order_statistics_numpy(x, ranks))


def test_order_statistics_long_array_with_ties():
    x = _data(3, 1 << 20, np.float32, False)
    x[: 1 << 16] = x[5]  # a run of ties inside one radix bin
    ranks = np.arange(1, 17) * (x.size // 16) - 1
    got = K.order_statistics(x, ranks)
    assert got is not None
    np.testing.assert_array_equal(got, np.sort(x)[ranks])


@given(seed=seeds, r=st.integers(1, 4), m=st.integers(1, 300), bits=st.integers(1, 8),
       dtype=st.sampled_from([np.float32, np.float64]), ties=st.booleans())
def test_assign_cell_sums_equals_twin(seed, r, m, bits, dtype, ties):
    x = _data(seed, (r, m), dtype, ties)
    rng = np.random.default_rng(seed + 1)
    t = np.sort(np.stack([rng.choice(row, 2**bits - 1) for row in x]), axis=1)
    refs = np.concatenate([t, x.max(axis=1, keepdims=True)], axis=1).astype(np.float64)
    got = np.empty(x.shape, dtype=np.uint16)
    want = np.empty(x.shape, dtype=np.uint16)
    shifted, counts = K.assign_cell_sums(x, t, refs, got)
    shifted0, counts0 = K.assign_cell_sums_numpy(x, t, refs, want)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(counts, counts0)
    scale = np.abs(x.astype(np.float64)).sum(axis=1, keepdims=True) + np.abs(refs).max() * m
    assert np.all(np.abs(shifted - shifted0) <= 1e-12 * scale)


@pytest.mark.parametrize("ties", [False, True])
def test_equal_mass_selection_path_equals_sort_path(monkeypatch, ties):
    n = equal_mass.SELECT_MIN + 12345  # n mod K != 0: chunks of two sizes
    x = _data(11, n, np.float32, False)
    if ties:
        x[::7] = np.round(x[::7])  # many ties straddling chunk ends
    fast = quantize(x, method="equal_mass", bits=4)
    monkeypatch.setattr(equal_mass, "SELECT_MIN", 2 * n)
    slow = quantize(x, method="equal_mass", bits=4)
    np.testing.assert_array_equal(fast.codes, slow.codes)
    np.testing.assert_allclose(fast.levels, slow.levels, rtol=2e-7, atol=0)  # one float32 rounding apart


def test_equal_mass_selection_falls_back_on_concentrated_data():
    x = np.zeros(equal_mass.SELECT_MIN, dtype=np.float32)
    x[:100] = np.arange(100)
    qt = quantize(x, method="equal_mass", bits=2)
    assert np.all(qt.dequantize()[100:] == 0.0)


@given(seed=seeds, r=st.integers(1, 4), m=st.integers(1, 5000), ties=st.booleans(), special=st.booleans())
@example(seed=0, r=1, m=1, ties=False, special=False)
@example(seed=1, r=2, m=8, ties=True, special=True)
def test_radix_sort_rows_equals_twin(seed, r, m, ties, special):
    x = _data(seed, (r, m), np.float32, ties)
    if special:  # both zeros, infinities, subnormals and the extremes of float32
        rng = np.random.default_rng(seed)
        info = np.finfo(np.float32)
        values = np.array([0.0, -0.0, np.inf, -np.inf, info.smallest_subnormal, -info.smallest_subnormal,
                           info.max, info.min, info.tiny], dtype=np.float32)
        mask = rng.random((r, m)) < 0.5
        x[mask] = rng.choice(values, size=int(mask.sum()))
    got, want = x.copy(), x.copy()
    K.radix_sort_rows(got)
    K.radix_sort_rows_numpy(want)
    np.testing.assert_array_equal(got, want)  # the same values in the same order (-0.0 == +0.0 here)
    for row in got:  # the documented order of the zeros: every -0.0 before every +0.0
        assert np.all(np.diff(np.signbit(row[row == 0]).astype(np.int8)) <= 0)


def test_radix_sort_rows_parallel_compilation_equals_twin():
    x = _data(3, (64, 4096), np.float32, ties=True)  # 262,144 values: the parallel compilation
    assert x.size >= K._PARALLEL_MIN
    got, want = x.copy(), x.copy()
    K.radix_sort_rows(got)
    K.radix_sort_rows_numpy(want)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape, ties", [((3, 5), False), ((2048, 1100), False), ((2048, 1100), True)])
def test_chunk_stats_rows_equals_twin(shape, ties):
    # the larger shapes are split between threads (>= 2 cores) and into several blocks
    x = _data(0, shape, np.float32, ties=ties)
    ends = equal_mass.chunk_ends(shape[1], 4)
    codes, codes0 = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
    got_all, want_all = K.chunk_stats_rows(x, ends, codes), K.chunk_stats_rows_numpy(x, ends, codes0)
    np.testing.assert_array_equal(codes, codes0)
    for got, want in zip(got_all, want_all):
        if got.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(x).sum(axis=1).max())
        else:
            np.testing.assert_array_equal(got, want)
