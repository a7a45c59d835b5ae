"""The quantizer API: contract, definitions against independent references, fixed values
from the literature, state dicts and bad input."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

import fmq_theory
from fmq_theory.quantizers import (
    METHODS,
    QuantizedStateDict,
    QuantizedTensor,
    levels_from_stored,
    parse_granularity,
    quantize,
    quantize_state_dict,
)
from fmq_theory.quantizers import api as api_mod
from fmq_theory.quantizers.normal_float import nf_codebook



def rng():
    """A fresh generator per use, so that test data do not depend on test order."""
    return np.random.default_rng(20251124)


def paper_equal_mass(w, k):
    """The paper's reference algorithm: argsort, array_split, chunk means, inverse permutation."""
    w = np.asarray(w)
    if w.size < k:
        return w.copy()
    order = np.argsort(w.reshape(-1))
    flat = w.reshape(-1)[order]
    out = np.empty_like(flat)
    for chunk_idx in np.array_split(np.arange(flat.size), k):
        out[chunk_idx] = flat[chunk_idx].mean()
    res = np.empty_like(out)
    res[order] = out
    return res.reshape(w.shape)


# -- contract ------------------------------------------------------------------------
def test_public_names():
    assert METHODS == (
        "uniform_minmax",
        "uniform_absmax",
        "uniform_mse",
        "half_quadratic",
        "piecewise_quantile",
        "pwlq",
        "log2",
        "equal_mass",
        "lloyd_max",
        "normal_float",
    )
    assert fmq_theory.quantize is quantize and fmq_theory.METHODS is METHODS
    assert fmq_theory.QuantizedTensor is QuantizedTensor
    assert fmq_theory.quantize_state_dict is quantize_state_dict
    assert parse_granularity("group:8") == ("group", 8)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("gran", ["tensor", "channel", ("group", 10)])
def test_levels_rebuilt_from_stored_and_bit_accounting(method, bits, gran):
    w = rng().standard_normal((6, 17)).astype(np.float32)
    qt = quantize(w, method=method, bits=bits, granularity=gran)
    rebuilt = levels_from_stored(method, bits, qt.stored)
    assert rebuilt.dtype == qt.levels.dtype == np.float32
    np.testing.assert_array_equal(rebuilt, qt.levels)
    assert all(a.dtype == np.float32 and a.shape[0] == qt.codes.shape[0] for a in qt.stored.values())
    n_groups = qt.codes.shape[0]
    per_group = {"uniform_absmax": 1, "normal_float": 1, "uniform_minmax": 2, "uniform_mse": 2, "half_quadratic": 2,
                 "pwlq": 2}
    floats = per_group.get(method, 2**bits) * n_groups
    assert qt.bits_per_weight == pytest.approx((bits * w.size + 32 * floats) / w.size, rel=1e-15)
    assert qt.codes.dtype == np.uint8 and qt.codes.max() < 2**bits
    assert qt.dequantize().shape == w.shape and qt.dequantize().dtype == np.float32


@pytest.mark.parametrize(
    ("gran", "shape", "codes_shape", "used"),
    [
        ("tensor", (6, 17), (1, 102), ("tensor",)),
        ("channel", (6, 17), (6, 17), ("channel",)),
        ("channel", (6, 2, 3), (6, 6), ("channel",)),
        ("channel", (17,), (1, 17), ("tensor",)),  # 1-D: per tensor (the paper's rule)
        (("group", 10), (6, 17), (11, 10), ("group", 10)),  # 102 = 10 * 10 + 2: padded
        ("group:200", (6, 17), (1, 102), ("group", 102)),  # capped at the tensor: no padding
    ],
)
def test_granularity_layout(gran, shape, codes_shape, used):
    w = rng().standard_normal(shape)
    qt = quantize(w, method="equal_mass", bits=2, granularity=gran)
    assert qt.codes.shape == codes_shape and qt.granularity == used
    flat = w.reshape(-1)
    n_full = flat.size // codes_shape[1]
    if used[0] == "group" and flat.size % codes_shape[1]:
        np.testing.assert_array_equal(qt.codes[-1, flat.size % codes_shape[1] :], 0)  # padding
        last = flat[n_full * codes_shape[1] :]
        np.testing.assert_allclose(qt.dequantize().reshape(-1)[n_full * codes_shape[1] :], paper_equal_mass(last, 4))


def test_normal_float_blocks():
    w = rng().standard_normal((5, 30)).astype(np.float32)
    assert quantize(w, method="normal_float", bits=4).granularity == ("group", 64)
    assert quantize(w, method="normal_float", bits=4, granularity="channel").granularity == ("group", 64)
    assert quantize(w, method="normal_float", bits=4, granularity=("group", 8)).granularity == ("group", 8)
    qt = quantize(w, method="normal_float", bits=4, granularity="channel", block_size=None)
    assert qt.granularity == ("channel",)
    np.testing.assert_array_equal(qt.stored["absmax"], np.abs(w).max(axis=1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("method", METHODS)
def test_torch_dtype_and_device_round_trip(dtype, method):
    w = torch.randn(8, 12, dtype=dtype)
    qt = quantize(w, method=method, bits=3, granularity="channel")
    out = qt.dequantize()
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.device == w.device
    assert out.shape == w.shape and qt.dtype == str(dtype).removeprefix("torch.")
    assert qt.levels.dtype == (np.float64 if dtype == torch.float64 else np.float32)
    # the computation is the float32 (float64) one on the exactly widened input
    ref = quantize(w.to(torch.float64 if dtype == torch.float64 else torch.float32).numpy(), method=method, bits=3,
                   granularity="channel")
    torch.testing.assert_close(out, torch.from_numpy(ref.dequantized_numpy()).to(dtype), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_dtypes(dtype):
    w = rng().standard_normal((4, 9)).astype(dtype)
    out = quantize(w, method="lloyd_max", bits=2, granularity="channel").dequantize()
    assert isinstance(out, np.ndarray) and out.dtype == dtype


def test_non_contiguous_input_is_copied_and_gives_the_same_result():
    base = rng().standard_normal((9, 14)).astype(np.float32)
    for method in METHODS:
        a = quantize(base.T, method=method, bits=2, granularity="channel").dequantize()
        b = quantize(np.ascontiguousarray(base.T), method=method, bits=2, granularity="channel").dequantize()
        np.testing.assert_array_equal(a, b)
    t = torch.from_numpy(base)
    tq = quantize(t.T, method="equal_mass", bits=2, granularity="channel").dequantize()
    eps32 = np.finfo(np.float32).eps * np.abs(base).max()
    np.testing.assert_allclose(tq.numpy(), paper_equal_mass_rows(base.T, 4), rtol=0, atol=4 * eps32)


def paper_equal_mass_rows(w, k):
    return np.stack([paper_equal_mass(row, k) for row in w])


# -- definitions against independent references ----------------------------------------
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize("m", [1, 3, 64, 100, 1001])
def test_equal_mass_equals_paper_reference_per_channel(bits, m):
    w = rng().standard_normal((7, m)).astype(np.float32)  # continuous draws: tie-free
    assert all(np.unique(row).size == m for row in w)
    got = quantize(w, method="equal_mass", bits=bits, granularity="channel").dequantize()
    want = paper_equal_mass_rows(w, 2**bits)
    # float32 reference means vs float64-accumulated means rounded once: a few float32 ulps
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * np.finfo(np.float32).eps * np.abs(w).max())


def test_equal_mass_per_tensor_matches_reference_on_a_large_tensor():
    w = rng().standard_normal(200_003)
    got = quantize(w, method="equal_mass", bits=4).dequantize()
    np.testing.assert_allclose(got, paper_equal_mass(w, 16), rtol=1e-12, atol=1e-12)


def test_equal_mass_tie_rule():
    # sorted [0 0 0 | 0 1 2] with K=2: the run of zeros straddles the boundary -> lower cell
    w = np.array([2.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    qt = quantize(w, method="equal_mass", bits=1)
    np.testing.assert_array_equal(qt.dequantize(), [1.5, 0.0, 1.5, 0.0, 0.0, 0.0])
    # a run covering a whole chunk empties it; the empty cell repeats the level below
    w = np.array([0.0] * 5 + [1.0, 2.0, 3.0])
    qt = quantize(w, method="equal_mass", bits=2)
    np.testing.assert_array_equal(qt.levels[0], [0.0, 0.0, 1.0, 2.5])
    np.testing.assert_array_equal(qt.dequantize(), [0.0] * 5 + [1.0, 2.5, 2.5])


def test_groups_smaller_than_levels_are_left_as_they_are():
    w = np.array([3.0, -1.0, 2.0])
    for method in ("equal_mass", "lloyd_max"):
        qt = quantize(w, method=method, bits=3)
        np.testing.assert_array_equal(qt.dequantize(), w)
        np.testing.assert_array_equal(qt.levels[0], [-1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0])


def test_uniform_minmax_is_the_paper_formula():
    w = rng().standard_normal((5, 40))
    for bits in (1, 2, 4):
        k = 2**bits
        lo, hi = w.min(axis=1, keepdims=True), w.max(axis=1, keepdims=True)
        delta = (hi - lo) / (k - 1)
        want = np.round((w - lo) / delta) * delta + lo
        got = quantize(w, method="uniform_minmax", bits=bits, granularity="channel").dequantize()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_uniform_absmax_grid():
    w = np.array([-1.0, -0.49, 0.0, 0.26, 1.0])
    qt = quantize(w, method="uniform_absmax", bits=2)
    np.testing.assert_array_equal(qt.levels[0], [-2.0, -1.0, 0.0, 1.0])
    np.testing.assert_array_equal(qt.dequantize(), [-1.0, 0.0, 0.0, 0.0, 1.0])
    assert 0.0 in quantize(rng().standard_normal(50), method="uniform_absmax", bits=4).levels[0]


def test_uniform_mse_never_worse_than_minmax_and_clips_heavy_tails():
    w = rng().standard_t(2, (4, 500))
    for bits in (2, 3, 4):
        mm = quantize(w, method="uniform_minmax", bits=bits, granularity="channel").dequantize()
        ms = quantize(w, method="uniform_mse", bits=bits, granularity="channel").dequantize()
        e_mm = np.mean((w - mm) ** 2, axis=1)
        e_ms = np.mean((w - ms) ** 2, axis=1)
        assert np.all(e_ms <= e_mm * (1 + 1e-12))
        assert np.mean(e_ms) < np.mean(e_mm)


def test_uniform_mse_search_finds_the_grid_optimum():
    """Brute force over a fine grid of clip ratios (independent oracle): the golden-section
    result is at least as good as the best of 4000 ratios, up to 1e-9 relative."""
    w = rng().laplace(size=300)
    qt = quantize(w, method="uniform_mse", bits=3)
    got = np.mean((w - qt.dequantize()) ** 2)
    c, lo, hi = w.mean(), w.min(), w.max()
    best = np.inf
    for a in np.linspace(1e-3, 1, 4000):
        a_lo, a_hi = lo + (1 - a) * (c - lo), hi - (1 - a) * (hi - c)
        step = (a_hi - a_lo) / 7
        qv = a_lo + step * np.clip(np.floor((w - a_lo) / step + 0.5), 0, 7)
        best = min(best, np.mean((w - qv) ** 2))
    assert got <= best * (1 + 1e-9)


def test_piecewise_quantile_definition():
    w = rng().standard_normal(101)
    qt = quantize(w, method="piecewise_quantile", bits=2)
    q = np.quantile(w, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(qt.levels[0], (q[1:] + q[:-1]) / 2, rtol=1e-15)
    cell = np.clip(np.searchsorted(q[1:4], w, side="right"), 0, 3)  # left-closed cells, as the reference
    np.testing.assert_array_equal(qt.dequantize(), qt.levels[0][cell])


def test_pwlq_levels_and_bit_accounting():
    w = rng().laplace(size=1000)
    qt = quantize(w, method="pwlq", bits=3)
    m, p = qt.stored["absmax"][0], qt.stored["breakpoint"][0]
    assert m == np.abs(w).max() and 0 < p <= m
    np.testing.assert_allclose(
        qt.levels[0], [-m, -p, -p, -p / 3, p / 3, p, p, m] if False else
        np.concatenate([[-(p + (m - p) * 2 / 2), -(p + (m - p) / 2)], np.linspace(-p, p, 4), [p + (m - p) / 2, m]]),
        rtol=1e-14,
    )
    assert qt.bits_per_weight == 3 + 2 * 64 / 1000
    assert np.mean((w - qt.dequantize()) ** 2) < np.mean(
        (w - quantize(w, method="uniform_absmax", bits=3).dequantize()) ** 2
    )


def test_log2_definition():
    w = np.array([-4.0, -1.0, -0.5, 0.0, 0.25, 0.3, 2.0, 16.0])
    qt = quantize(w, method="log2", bits=3)
    pos = 2.0 ** np.linspace(np.log2(0.25), np.log2(16.0), 4)
    neg = -(2.0 ** np.linspace(np.log2(0.5), np.log2(4.0), 4))[::-1]
    np.testing.assert_allclose(qt.levels[0], np.concatenate([neg, pos]), rtol=1e-15)
    lev = qt.levels[0]
    want = lev[np.argmin(np.abs(w[:, None] - lev[None, :]), axis=1)]
    want[3] = lev[np.argmin(np.abs(lev))]  # zero -> smallest-magnitude level
    np.testing.assert_array_equal(qt.dequantize(), want)


def test_nf4_codebook_equals_published_table():
    """bitsandbytes' NF4 table (QLoRA, float32 values).  Its offset 0.9677083 is rounded
    at 7 digits, ours is exact: levels agree to 1e-6."""
    nf4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
           -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
           0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
           0.7229568362236023, 1.0]
    np.testing.assert_allclose(nf_codebook(4), nf4, rtol=0, atol=1e-6)
    for bits in range(1, 9):
        cb = nf_codebook(bits)
        assert cb.size == 2**bits and 0.0 in cb and cb.max() == 1.0 and np.all(np.diff(cb) > 0)


def _lloyd_max_gaussian(k):
    """Lloyd iteration on the N(0,1) law with closed-form cell moments, to convergence."""
    c = norm.ppf((np.arange(k) + 0.5) / k)
    for _ in range(200_000):
        t = np.concatenate(([-np.inf], (c[1:] + c[:-1]) / 2, [np.inf]))
        new = -np.diff(norm.pdf(t)) / np.diff(norm.cdf(t))
        if np.max(np.abs(new - c)) < 1e-13:
            c = new
            break
        c = new
    else:
        raise AssertionError("Lloyd iteration did not converge")
    t = np.concatenate(([-np.inf], (c[1:] + c[:-1]) / 2, [np.inf]))
    return 1.0 - np.sum(c**2 * np.diff(norm.cdf(t)))


@pytest.mark.parametrize(("k", "max1960"), [(2, 0.3634), (4, 0.1175), (8, 0.03454), (16, 0.009497)])
def test_gaussian_lloyd_max_against_max_1960(k, max1960):
    law = _lloyd_max_gaussian(k)
    # Max's printed values are rounded and the last ones slightly off: within 5e-4 relative
    assert law == pytest.approx(max1960, rel=5e-4)
    # the exact empirical optimum of n Gaussian draws estimates the law's optimum; its
    # sampling error is sd((w - Q(w))^2) / sqrt(n) (plus a downward bias O(K/n), far
    # smaller): accept 4 standard errors
    n = 1 << 17
    w = np.random.default_rng(k).standard_normal(n)
    err2 = (w - quantize(w, method="lloyd_max", bits=int(np.log2(k))).dequantize()) ** 2
    se = err2.std() / np.sqrt(n)
    assert abs(err2.mean() - law) <= 4 * se


def test_lloyd_max_histogram_mode_bound_holds():
    w = rng().standard_t(4, 6000)
    exact = quantize(w, method="lloyd_max", bits=3)
    approx = quantize(w, method="lloyd_max", bits=3, exact_limit=512)
    d_star = np.mean((w - exact.dequantize()) ** 2)
    d_h = np.mean((w - approx.dequantize()) ** 2)
    assert approx.info["histogram"].tolist() == [True] and exact.info["histogram"].tolist() == [False]
    assert exact.info["excess_mse_bound"][0] == 0.0
    bound = approx.info["excess_mse_bound"][0]
    assert d_star <= d_h + 1e-12 and d_h - d_star <= bound
    assert bound < 0.1 * d_h  # informative even with only 512 bins (it scales as 2 sqrt(W / D))
    assert "info" not in approx.stored


# -- state dicts ------------------------------------------------------------------------
def _model_state():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4, 3))
    return m.state_dict()


@pytest.mark.parametrize("method", METHODS)
def test_quantize_state_dict_torch(method):
    sd = _model_state()
    res = quantize_state_dict(sd, method=method, bits=2)
    assert isinstance(res, QuantizedStateDict)
    assert list(res.passthrough) == ["1.num_batches_tracked"]
    out = res.state_dict()
    assert list(out) == list(sd)
    for k, v in sd.items():
        assert out[k].dtype == v.dtype and out[k].shape == v.shape and out[k].device == v.device
    assert out["1.num_batches_tracked"] is sd["1.num_batches_tracked"]
    reports = {r.name: r for r in res.report}
    assert reports["0.weight"].granularity == ("group:64" if method == "normal_float" else "channel")
    assert reports["0.bias"].granularity == ("group:64" if method == "normal_float" else "tensor")
    for r in res.report:
        ref = quantize(sd[r.name], method=method, bits=2, granularity="channel")
        assert r.mse == pytest.approx(float(torch.mean((sd[r.name].double() - ref.dequantize().double()) ** 2)))
        assert r.bits_per_weight == ref.bits_per_weight and r.n_weights == sd[r.name].numel()
        assert r.w2 <= np.sqrt(r.mse) * (1 + 1e-9) + 1e-15  # the identity coupling is one coupling
    n = sum(r.n_weights for r in res.report)
    assert res.n_weights == n
    assert res.mse == pytest.approx(sum(r.mse * r.n_weights for r in res.report) / n)
    assert res.total_bytes * 8 == res.total_bits
    assert res.bits_per_weight == pytest.approx(sum(r.bits_per_weight * r.n_weights for r in res.report) / n)


def test_quantize_state_dict_numpy_and_empty():
    sd = {"w": rng().standard_normal((3, 5)).astype(np.float32), "idx": np.arange(4), "e": np.zeros((0, 3), np.float32)}
    res = quantize_state_dict(sd, method="equal_mass", bits=1)
    assert list(res.quantized) == ["w"] and list(res.passthrough) == ["idx", "e"]
    out = res.state_dict()
    assert out["w"].dtype == np.float32 and out["idx"] is sd["idx"]


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"w": np.array([1.0, np.nan])}, ValueError, "1 non-finite"),
        ({"w": np.array([np.inf, 1.0, -np.inf])}, ValueError, "2 non-finite"),
        ({"w": torch.tensor([float("nan")])}, ValueError, "non-finite"),
        ({"w": np.zeros((0, 4))}, ValueError, r"w is empty \(shape \(0, 4\)\)"),
        ({"w": np.arange(6)}, TypeError, "dtype int64"),
        ({"w": torch.arange(6)}, TypeError, "dtype torch.int64"),
        ({"w": np.ones(3, dtype=bool)}, TypeError, "dtype bool"),
        ({"w": np.ones(3, dtype=np.complex64)}, TypeError, "dtype complex64"),
        ({"w": [1.0, 2.0]}, TypeError, "not list"),
        ({"bits": 0}, ValueError, "bits=0 is out of range"),
        ({"bits": 17}, ValueError, "bits=17 is out of range"),
        ({"bits": 13, "method": "lloyd_max"}, ValueError, "bits=13 is out of range for method 'lloyd_max'"),
        ({"bits": 2.0}, TypeError, "bits=2.0 must be an integer"),
        ({"bits": True}, TypeError, "bits=True"),
        ({"method": "kmeans"}, ValueError, "method='kmeans' is not one of"),
        ({"granularity": "row"}, ValueError, "granularity='row'"),
        ({"granularity": ("group", 0)}, ValueError, "granularity"),
        ({"block_size": 64}, TypeError, "option 'block_size' is not accepted by method 'equal_mass'"),
        ({"method": "normal_float", "block_size": 0}, ValueError, "block_size must be a positive int or None, got 0"),
        ({"method": "lloyd_max", "exact_limit": 1}, ValueError, "exact_limit=1"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"w": np.ones((2, 3), np.float32), "method": "equal_mass", "bits": 2, **kwargs}
    w = args.pop("w")
    with pytest.raises(error, match=match):
        quantize(w, **args)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [0.0, -2.5, 3.0])
def test_constant_tensors_have_zero_error(method, value):
    for dtype in (np.float32, np.float64):
        w = np.full((3, 70), value, dtype=dtype)
        for bits in (1, 2, 4):
            with np.errstate(all="raise"):  # no division by zero anywhere
                out = quantize(w, method=method, bits=bits, granularity="channel").dequantize()
            if method == "uniform_absmax" and bits == 1 and value > 0:
                continue  # {-max|w|, 0}: positive weights go to 0 by that grid's definition
            if method == "normal_float" and bits == 1 and value < 0:
                continue  # {0, 1} * absmax: negative weights go to 0 by the NF1 codebook
            np.testing.assert_array_equal(out, w)


def test_sixteen_bits_uses_uint16_codes():
    w = rng().standard_normal(3000)
    qt = quantize(w, method="equal_mass", bits=12)
    assert qt.codes.dtype == np.uint16
    np.testing.assert_array_equal(qt.dequantize(), w)  # fewer weights than levels: exact
    assert quantize(w, method="uniform_minmax", bits=16).codes.dtype == np.uint16


def test_doctest_of_quantize():
    import doctest

    failures, _ = doctest.testmod(api_mod)
    assert failures == 0


def test_works_without_numba():
    """The package must run where numba is missing (kernels fall back to their twins)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from fmq_theory.quantizers import quantize, METHODS\n"
        "from fmq_theory.quantizers import _kernels\n"
        "assert not _kernels.HAVE_NUMBA and _kernels.assign_codes is _kernels.assign_codes_numpy\n"
        "w = np.random.default_rng(0).standard_normal((5, 40)).astype(np.float32)\n"
        "for m in METHODS:\n"
        "    quantize(w, method=m, bits=2, granularity='channel').dequantize()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# -- issue 14: weights near the float limit, 0-d tensors, huge groups, lloyd_max cost ------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weights_near_the_float_limit_give_finite_scaled_output(method, dtype):
    """max|w| near the largest float: the result is the exact power-of-two rescaling of the
    result on moderate weights (so finite and within the method's usual error), or a
    ValueError naming the weights (only uniform_minmax/uniform_mse/half_quadratic at 1 bit, whose stored
    step exceeds the largest float).  half_quadratic's fit is not scale-equivariant (its beta is in
    weight units), so its moderate weights are the ones ``quantize`` fits: ``w * 2**-e`` with max-abs
    in [1/2, 1)."""
    top = np.finfo(dtype).max
    base = rng().standard_normal((4, 33)) * 0.4
    base[0, 0], base[1, 1] = 0.97, -0.99
    e = int(np.frexp(top)[1]) - 1
    moderate = base.astype(dtype)
    huge = np.ldexp(moderate, e)
    assert np.all(np.isfinite(huge)) and np.abs(huge).max() > 0.4 * top
    for bits in (1, 2, 4):
        for gran in ("tensor", "channel"):
            try:
                got = quantize(huge, method=method, bits=bits, granularity=gran).dequantize()
            except ValueError as err:
                assert "weights" in str(err) and bits == 1 and method in ("uniform_minmax", "uniform_mse", "half_quadratic")
                continue
            shift = e + int(np.frexp(np.abs(moderate).max())[1]) if method == "half_quadratic" else e
            fitted = np.ldexp(huge, -shift)
            want = np.ldexp(quantize(fitted, method=method, bits=bits, granularity=gran).dequantize(), shift)
            assert np.all(np.isfinite(got))
            rtol = 1e-5 if method == "log2" and dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, want, rtol=rtol, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_zero_dimensional_input_keeps_its_shape(method):
    for w in (np.array(0.37), np.array(-2.5, dtype=np.float32), torch.tensor(0.37), torch.tensor(1.5).double()):
        out = quantize(w, method=method, bits=3).dequantize()
        assert tuple(out.shape) == () and type(out) is type(w) and out.dtype == w.dtype
    sd = {"scale": torch.tensor(0.37)}
    assert quantize_state_dict(sd, method=method, bits=3).state_dict()["scale"].shape == ()


def test_group_size_is_capped_at_the_tensor():
    """("group", 10**12) on 10 weights: one group of 10, codes (1, 10), no padding to g."""
    w = rng().standard_normal((2, 5))
    qt = quantize(w, method="equal_mass", bits=2, granularity=("group", 10**12))
    assert qt.codes.shape == (1, 10) and qt.granularity == ("group", 10)
    np.testing.assert_array_equal(qt.dequantize(), quantize(w, method="equal_mass", bits=2).dequantize())


def test_lloyd_max_work_limit_switches_to_histogram():
    """K * n > WORK_LIMIT (2**26): histogram mode with WORK_LIMIT // K bins, its excess
    over the optimum bounded; the MSE is at most equal_mass's (an upper bound on the
    optimum) plus that bound."""
    from fmq_theory.quantizers.lloyd_max import WORK_LIMIT

    w = rng().standard_normal(1 << 15).astype(np.float32)
    assert 2**12 * w.size > WORK_LIMIT
    qt = quantize(w, method="lloyd_max", bits=12)
    assert qt.info["histogram"].all()
    mse = np.mean((w.astype(np.float64) - qt.dequantize()) ** 2)
    em = np.mean((w.astype(np.float64) - quantize(w, method="equal_mass", bits=12).dequantize()) ** 2)
    assert 0 <= qt.info["excess_mse_bound"][0] < np.inf and mse <= em + qt.info["excess_mse_bound"][0]
    small = quantize(w[:1 << 13], method="lloyd_max", bits=12)  # 2**12 * 2**13 = WORK_LIMIT: exact
    assert not small.info["histogram"].any() and small.info["excess_mse_bound"][0] == 0
