"""The torch quantizers of :mod:`fmq_theory.quantizers.torch_rows`, run on the CPU (their
fallback), equal the numpy twins and the CPU quantizers (tiny sizes; no speed assertion:
``benchmarks/gpu.py`` measures speed on a GPU).

``lloyd_thresholds_sorted`` is checked against ``lloyd_rows_numpy`` (the quadratic DP, a
different algorithm): equal thresholds on tie-free continuous data (no two partitions with
equal cost), equal optimal cost (1e-10 of the spread) on tied data, where several optimal
partitions can exist.
"""

import numpy as np
import pytest
import torch

from fmq_theory import quantize
from fmq_theory.quantizers import _kernels
from fmq_theory.quantizers.torch_rows import (
    affine_dequantize_rows,
    lloyd_max_rows,
    lloyd_thresholds_sorted,
    uniform_minmax_rows,
)


def _sse(row, thresholds):
    codes = np.searchsorted(thresholds, row, side="left")
    return sum(np.sum((row[codes == k] - row[codes == k].mean()) ** 2) for k in np.unique(codes))


@pytest.mark.parametrize("seed, r, m, bits", [(0, 5, 40, 1), (1, 7, 100, 2), (2, 4, 300, 4), (3, 3, 600, 3)])
def test_lloyd_thresholds_equal_quadratic_twin(seed, r, m, bits):
    x = np.sort(np.random.default_rng(seed).standard_normal((r, m)) * 3, axis=1)
    got = lloyd_thresholds_sorted(torch.from_numpy(x), 2**bits, batch=2 * m).numpy()  # several batches
    np.testing.assert_array_equal(got, _kernels.lloyd_rows_numpy(x, 2**bits))


@pytest.mark.parametrize("seed, levels", [(0, 4), (1, 8), (2, 16)])
def test_lloyd_thresholds_ties_and_few_distinct_values(seed, levels):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 12, (6, 50)).astype(np.float64)
    x[0] = 3.0  # one distinct value
    x[1, :] = np.repeat(np.arange(5.0), 10)  # fewer distinct values than levels for levels > 5
    x = np.sort(x, axis=1)
    got = lloyd_thresholds_sorted(torch.from_numpy(x), levels).numpy()
    want = _kernels.lloyd_rows_numpy(x, levels)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    for row, a, b in zip(x, got, want):
        assert abs(_sse(row, a) - _sse(row, b)) <= 1e-10 * np.sum((row - row.mean()) ** 2) + 1e-14


@pytest.mark.parametrize("seed, bits", [(0, 2), (1, 4)])
def test_lloyd_max_rows_equals_cpu_quantizer(seed, bits):
    w = np.random.default_rng(seed).standard_normal((6, 200)).astype(np.float32)
    codes, levels = lloyd_max_rows(torch.from_numpy(w), bits=bits)
    cpu = quantize(w, method="lloyd_max", bits=bits, granularity="channel")
    np.testing.assert_array_equal(codes.numpy(), cpu.codes)
    np.testing.assert_array_equal(levels.numpy(), cpu.levels)


@pytest.mark.parametrize("bits", [1, 3, 4, 8])
def test_uniform_minmax_rows_equals_cpu_quantizer(bits):
    w = np.random.default_rng(bits).standard_normal((5, 300)).astype(np.float32)
    w[1] = 0.25  # constant row: scale 0, codes 0
    w[2, ::2] = -1.0
    w[2, 1::2] = 2.0
    codes, scale, offset = uniform_minmax_rows(torch.from_numpy(w), bits=bits)
    cpu = quantize(w, method="uniform_minmax", bits=bits, granularity="channel")
    np.testing.assert_array_equal(codes.numpy(), cpu.codes)
    np.testing.assert_array_equal(affine_dequantize_rows(codes, scale, offset).numpy(), cpu.dequantize())


@pytest.mark.parametrize("fn", [uniform_minmax_rows, lloyd_max_rows])
def test_bad_input_is_refused_by_name(fn):
    with pytest.raises(ValueError, match="bits"):
        fn(torch.zeros(2, 8), bits=0)
    with pytest.raises(ValueError, match="weights"):
        fn(torch.zeros(8), bits=2)
    with pytest.raises(ValueError, match="NaN"):
        fn(torch.tensor([[0.0, float("nan")]]), bits=1)
