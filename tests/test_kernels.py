"""Every numba kernel equals its plain-numpy twin (property 6 of issue 2).

The twins use different algorithms (``numpy.searchsorted`` per row, cumulative sums,
``numpy.bincount``, the quadratic DP), so agreement is a real cross-check.  Integer
outputs must match exactly; float outputs to a stated tolerance (different summation
orders: ``1e-12`` relative to the sum of magnitudes involved).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fmq_theory.quantizers import _kernels as K
from fmq_theory.quantizers.equal_mass import chunk_ends

pytestmark = pytest.mark.skipif(not K.HAVE_NUMBA, reason="numba not installed: kernels are the twins")

seeds = st.integers(0, 2**32 - 1)


def _rows(seed, r, m, dtype, ties):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((r, m)) * rng.uniform(0.01, 100)
    if ties:
        x = np.round(x * 2) / 2
    return np.ascontiguousarray(x.astype(dtype))


def _thresholds(seed, x, n_thr, n_inf):
    rng = np.random.default_rng(seed + 1)
    pool = np.concatenate([x, rng.standard_normal(x.shape) * np.abs(x).max()], axis=1)
    t = np.sort(np.stack([rng.choice(row, n_thr) for row in pool]).astype(np.float64), axis=1)
    if n_inf:
        t[:, n_thr - n_inf :] = np.inf
    return np.ascontiguousarray(t)


@given(
    seed=seeds,
    r=st.integers(1, 5),
    m=st.integers(1, 300),
    bits=st.integers(1, 9),
    dtype=st.sampled_from([np.float32, np.float64]),
    ties=st.booleans(),
    n_inf=st.integers(0, 3),
)
def test_assign_codes_equals_twin(seed, r, m, bits, dtype, ties, n_inf):
    x = _rows(seed, r, m, dtype, ties)
    t = _thresholds(seed, x, 2**bits - 1, min(n_inf, 2**bits - 1))
    got = np.empty(x.shape, dtype=np.uint16)
    want = np.empty(x.shape, dtype=np.uint16)
    K.assign_codes(x, t, got)
    K.assign_codes_numpy(x, t, want)
    np.testing.assert_array_equal(got, want)


def test_assign_codes_long_rows_span_several_chunks():
    x = _rows(7, 1, 3 * K._RUN + 5, np.float32, False)
    for n_thr in (3, 255):
        t = _thresholds(7, x, n_thr, 0)
        got = np.empty(x.shape, dtype=np.uint8)
        want = np.empty(x.shape, dtype=np.uint8)
        K.assign_codes(x, t, got)
        K.assign_codes_numpy(x, t, want)
        np.testing.assert_array_equal(got, want)


@given(seed=seeds, r=st.integers(1, 5), m=st.integers(1, 300), bits=st.integers(1, 8), ties=st.booleans())
def test_sorted_cell_stats_equals_twin(seed, r, m, bits, ties):
    x = np.sort(_rows(seed, r, m, np.float32, ties), axis=1)
    t = _thresholds(seed, x, 2**bits - 1, 0)
    first, shifted, counts = K.sorted_cell_stats(x, t)
    first0, shifted0, counts0 = K.sorted_cell_stats_numpy(x, t)
    np.testing.assert_array_equal(counts, counts0)
    np.testing.assert_array_equal(first, first0)
    scale = np.abs(x.astype(np.float64)).sum(axis=1, keepdims=True)
    assert np.all(np.abs(shifted - shifted0) <= 1e-12 * scale)


@given(seed=seeds, r=st.integers(1, 4), m=st.integers(2, 200), bits=st.integers(1, 4))
def test_uniform_grid_mse_equals_twin(seed, r, m, bits):
    x = _rows(seed, r, m, np.float64, False)
    rng = np.random.default_rng(seed)
    lo = x.min(axis=1) * rng.uniform(0, 1, r)
    hi = x.max(axis=1) * rng.uniform(0, 1, r)
    hi[0] = lo[0]  # a degenerate (single-point) grid
    got = K.uniform_grid_mse(x, lo, hi, 2**bits)
    want = K.uniform_grid_mse_numpy(x, lo, hi, 2**bits)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@given(seed=seeds, r=st.integers(1, 4), m=st.integers(2, 200), grids=st.integers(1, 9), bits=st.integers(1, 6),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_uniform_grid_mse_many_is_each_grid_bit_for_bit(seed, r, m, grids, bits, dtype):
    """All grids in one pass equal uniform_grid_mse on each grid exactly (the same sums in the
    same order: what keeps uniform_mse's search unchanged), and the twin to its tolerance;
    degenerate grids (lo = hi) and grids that clip included."""
    x = _rows(seed, r, m, dtype, False)
    rng = np.random.default_rng(seed)
    lo = x.min(axis=1, keepdims=True).astype(np.float64) * rng.uniform(0, 1, (r, grids))
    hi = x.max(axis=1, keepdims=True).astype(np.float64) * rng.uniform(0, 1, (r, grids))
    hi[0, 0] = lo[0, 0]
    got = K.uniform_grid_mse_many(x, lo, hi, 2**bits)
    each = np.stack([K.uniform_grid_mse(x, np.ascontiguousarray(lo[:, g]), np.ascontiguousarray(hi[:, g]), 2**bits)
                     for g in range(grids)], axis=1)
    np.testing.assert_array_equal(got, each)
    np.testing.assert_allclose(got, K.uniform_grid_mse_many_numpy(x, lo, hi, 2**bits), rtol=1e-12, atol=0)


@given(seed=seeds, r=st.integers(1, 4), m=st.integers(1, 200), bits=st.integers(1, 5))
def test_nearest_level_mse_equals_twin(seed, r, m, bits):
    x = _rows(seed, r, m, np.float32, False)
    levels = _thresholds(seed, x, 2**bits, 0)
    got = K.nearest_level_mse(x, levels)
    want = K.nearest_level_mse_numpy(x, levels)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@given(seed=seeds, n=st.integers(1, 40), cells=st.integers(1, 6), weighted=st.booleans())
def test_lloyd_dp_equals_quadratic_twin(seed, n, cells, weighted):
    rng = np.random.default_rng(seed)
    values = np.unique(rng.standard_normal(n) * 3)
    weights = rng.integers(1, 5, values.size).astype(np.float64) if weighted else np.ones(values.size)
    k = min(cells, values.size)
    ends, cost = K.lloyd_dp(values, weights, k)
    ends0, cost0 = K.lloyd_dp_numpy(values, weights, k)
    scale = np.sum(weights * (values - np.average(values, weights=weights)) ** 2)
    # relative to the spread, plus the rounding of the oracle's own means (~eps * sum w v^2)
    tol = 1e-10 * scale + 1e-14 * np.sum(weights * values**2)
    assert abs(cost - cost0) <= tol
    # the partition the kernel returns has the cost it claims
    starts = np.concatenate(([0], ends[:-1]))
    sse = sum(
        np.sum(weights[a:b] * (values[a:b] - np.average(values[a:b], weights=weights[a:b])) ** 2)
        for a, b in zip(starts, ends)
    )
    assert abs(sse - cost) <= tol


@given(seed=seeds, n=st.integers(1, 60), counts=st.lists(st.integers(1, 16), min_size=1, max_size=5, unique=True),
       weighted=st.booleans())
def test_lloyd_dp_nested_is_lloyd_dp_for_every_count(seed, n, counts, weighted):
    """One run of the layers gives, for every cell count, exactly :func:`lloyd_dp`'s partition and
    cost (bit for bit: the same code), and the twin's partitions to the twin's tolerance."""
    rng = np.random.default_rng(seed)
    values = np.unique(rng.standard_normal(n) * 3)
    weights = rng.uniform(0.1, 5.0, values.size) if weighted else np.ones(values.size)
    cells = np.array(sorted({min(c, values.size) for c in counts}), dtype=np.int64)
    ends, costs = K.lloyd_dp_nested(values, weights, cells)
    ends0, costs0 = K.lloyd_dp_nested_numpy(values, weights, cells)
    assert ends.shape == ends0.shape == (cells.size, cells.max())
    scale = np.sum(weights * (values - np.average(values, weights=weights)) ** 2)
    tol = 1e-10 * scale + 1e-14 * np.sum(weights * values**2)
    for j, k in enumerate(cells):
        alone, cost = K.lloyd_dp(values, weights, int(k))
        np.testing.assert_array_equal(ends[j, :k], alone)
        assert costs[j] == cost
        assert np.all(ends[j, k:] == values.size)
        assert abs(costs0[j] - cost) <= tol


@given(seed=seeds, r=st.integers(1, 4), m=st.integers(1, 120), bits=st.integers(1, 4), ties=st.booleans())
def test_lloyd_rows_equals_twin(seed, r, m, bits, ties):
    x = np.sort(_rows(seed, r, m, np.float64, ties), axis=1)
    got = K.lloyd_rows(x, 2**bits)
    want = K.lloyd_rows_numpy(x, 2**bits)
    # both are optimal; compare the resulting cell costs (ties between optimal partitions
    # are possible in principle, so thresholds are compared through the cost)
    for row, a, b in zip(x, got, want):
        ca = _partition_sse(row, a)
        cb = _partition_sse(row, b)
        assert abs(ca - cb) <= 1e-10 * np.sum((row - row.mean()) ** 2) + 1e-14 * np.sum(row**2)


def _partition_sse(row, thresholds):
    codes = np.searchsorted(thresholds, row, side="left")
    return sum(np.sum((row[codes == k] - row[codes == k].mean()) ** 2) for k in np.unique(codes))


@given(seed=seeds, n=st.integers(1, 3000), n_bins=st.integers(1, 64), ties=st.booleans())
def test_histogram_stats_equals_twin(seed, n, n_bins, ties):
    x = _rows(seed, 1, n, np.float32, ties)[0]
    lo = float(x.min())
    width = (float(x.max()) - lo) / n_bins or 1.0
    got = K.histogram_stats(x, lo, width, n_bins)
    want = K.histogram_stats_numpy(x, lo, width, n_bins)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[3], want[3])
    for a, b in zip(got[1:3], want[1:3]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * width * width * n)


def test_serial_kernels_is_thread_local_and_changes_no_result():
    """Inside ``serial_kernels`` a kernel on a large input gives the parallel run's result
    bit for bit; the switch holds for the calling thread only and is restored on exit,
    also when the block raises or is nested."""
    import threading

    x = _rows(7, 64, K._PARALLEL_MIN // 64 + 1, np.float32, ties=False)
    lo, hi = x.min(axis=1).astype(np.float64), x.max(axis=1).astype(np.float64)
    t = _thresholds(7, x, 15, 0)
    wide_mse = K.uniform_grid_mse(x, lo, hi, 16)
    wide_codes = np.empty(x.shape, dtype=np.uint8)
    K.assign_codes(x, t, wide_codes)
    seen = {}

    def other_thread():
        seen["other"] = getattr(K._LOCAL, "serial", False)

    with K.serial_kernels():
        with K.serial_kernels():
            assert K._LOCAL.serial
        assert K._LOCAL.serial
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
        narrow_codes = np.empty(x.shape, dtype=np.uint8)
        K.assign_codes(x, t, narrow_codes)
        np.testing.assert_array_equal(K.uniform_grid_mse(x, lo, hi, 16), wide_mse)
        np.testing.assert_array_equal(narrow_codes, wide_codes)
    big = _rows(8, 64, 2 * K._SORT_SPLIT_MIN // 64, np.float32, ties=False)  # two row blocks' worth of threads
    ends = chunk_ends(big.shape[1], 16)
    threaded_codes, serial_codes = (np.empty(big.shape, dtype=np.uint8) for _ in range(2))
    threaded = K.chunk_stats_rows(big, ends, threaded_codes)
    with K.serial_kernels():
        serial = K.chunk_stats_rows(big, ends, serial_codes)
    for a, b in zip(threaded, serial):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(threaded_codes, serial_codes)
    assert seen == {"other": False} and not K._LOCAL.serial
    with pytest.raises(RuntimeError, match="inside"):
        with K.serial_kernels():
            raise RuntimeError("inside")
    assert not K._LOCAL.serial
