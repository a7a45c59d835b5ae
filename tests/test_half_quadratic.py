"""half_quadratic: HQQ's zero-point fit, held to the authors' package (``hqq``).

Two oracles.  The package's own proximal step (``hqq.core.optimize.optimize_weights_proximal_legacy_step``)
driven in float64 for ``iters`` steps on a batch of groups (initial inverse step ``(K-1)/(max-min)``, zero
``-min * step^-1``, beta grown by kappa): the trajectory both fits follow.  The package's arithmetic works in
weight units (``round(w * t + z)``), ours in code units relative to the group minimum, so the two agree to
rounding, not bit for bit.  And the package's public quantizer (``Quantizer.quantize``, float32 on the CPU,
its ``BaseQuantizeConfig`` defaults, the whole tensor stopped at once) on whole tensors of many groups, as
the peer runs it: our squared error per tensor is held below a stated margin above its own.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hqq.core.optimize import optimize_weights_proximal_legacy_step
from hqq.core.quantize import Quantizer

from fmq_theory.quantizers import levels_from_stored, quantize
from fmq_theory.quantizers.half_quadratic import DEFAULT_OPTIONS, zero_points


def package_fit(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The package's zero points (code units, its convention ``w ~ (q - z) / t``) and final codes for every
    row of ``x`` (one group each), its proximal step driven in float64 for ``iters`` steps."""
    w = torch.from_numpy(np.asarray(x, dtype=np.float64))
    top = 2**bits - 1
    inv = top / (w.max(dim=1, keepdim=True)[0] - w.min(dim=1, keepdim=True)[0])
    zero = -w.min(dim=1, keepdim=True)[0] * inv
    beta = DEFAULT_OPTIONS["beta"]
    for _ in range(DEFAULT_OPTIONS["iters"]):
        _, _, zero, inv = optimize_weights_proximal_legacy_step(w, inv, zero, [0, top], beta,
                                                               DEFAULT_OPTIONS["lp_norm"], 1)
        beta *= DEFAULT_OPTIONS["kappa"]
    codes = torch.round(w * inv + zero).clamp(0, top).numpy()
    return zero.numpy().reshape(-1), codes


def group(seed: int, m: int, spread: float) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(4, size=m) * spread


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("m", [16, 64, 128, 257])
@pytest.mark.parametrize("spread", [0.01, 0.05, 2.0])
def test_zero_points_and_codes_equal_the_package_step_in_float64(bits, m, spread):
    x = np.stack([group(seed, m, spread) for seed in range(6)])
    z_pkg, codes_pkg = package_fit(x, bits)
    lo, step, shift = zero_points(x, bits=bits)
    # ours: levels min + (k - z') s, the package's (k - z) / t with t = 1/s: z = z' - min / s
    np.testing.assert_allclose(shift - lo / step, z_pkg, rtol=0, atol=1e-9)
    qt = quantize(x, method="half_quadratic", bits=bits, granularity="channel")
    np.testing.assert_array_equal(qt.codes, codes_pkg)


def test_groups_are_fitted_independently():
    """Each group runs its own iteration: a tensor in groups equals its groups quantized one by one."""
    w = np.random.default_rng(3).standard_normal((5, 96)) * np.array([0.01, 0.1, 1.0, 3.0, 0.05])[:, None]
    whole = quantize(w, method="half_quadratic", bits=3, granularity="channel")
    for i in range(w.shape[0]):
        alone = quantize(w[i], method="half_quadratic", bits=3)
        np.testing.assert_array_equal(whole.levels[i], alone.levels[0])
        np.testing.assert_array_equal(whole.codes[i], alone.codes[0])


@settings(deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(2, 200), bits=st.integers(1, 6),
       log_spread=st.floats(-20, -5))
def test_no_step_raises_the_squared_error(seed, m, bits, log_spread):
    """Weights within the shrinkage threshold of their levels (here: standard deviation at most 2**-5, a
    step below 0.29), so e = 0: a step is the nearest codes for z, then the least-squares z for those codes,
    a block coordinate descent on the squared error.  Stopping after k + 1 steps is never worse than after k
    (to float64 rounding of the levels)."""
    x = np.random.default_rng(seed).standard_normal(m) * 2.0**log_spread
    mse = [float(np.mean((quantize(x, method="half_quadratic", bits=bits, iters=k).dequantize() - x) ** 2))
           for k in range(DEFAULT_OPTIONS["iters"] + 1)]
    slack = 64 * np.finfo(np.float64).eps * float(np.max(x ** 2))
    assert np.all(np.diff(mse) <= slack), mse


def test_no_iterations_is_the_min_max_grid():
    w = np.random.default_rng(4).standard_normal((6, 40))
    hq = quantize(w, method="half_quadratic", bits=3, granularity="channel", iters=0)
    mm = quantize(w, method="uniform_minmax", bits=3, granularity="channel")
    np.testing.assert_allclose(hq.levels, mm.levels, rtol=4e-16, atol=1e-15)
    assert np.all(hq.info["zero_point"] == 0)


def test_stored_scale_and_offset_rebuild_the_levels_at_float16_input():
    w = torch.randn(8, 64, dtype=torch.float16) * 0.05
    qt = quantize(w, method="half_quadratic", bits=2, granularity="group:32")
    assert {k: v.dtype for k, v in qt.stored.items()} == {"scale": np.float32, "offset": np.float32}
    np.testing.assert_array_equal(levels_from_stored("half_quadratic", 2, qt.stored), qt.levels)
    assert qt.bits_per_weight == pytest.approx(2 + 2 * 32 / 32)


@settings(deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 80), bits=st.integers(1, 6),
       log_spread=st.floats(-30, 30), ties=st.booleans())
@example(seed=0, m=1, bits=1, log_spread=0.0, ties=False)
@example(seed=5, m=80, bits=6, log_spread=-30.0, ties=True)
def test_every_weight_goes_to_its_nearest_level(seed, m, bits, log_spread, ties):
    """Any finite group, tiny or huge, tied or not: finite sorted levels, every weight on its nearest level
    (up to a half-way tie)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(m) * 2.0**log_spread
    if ties:
        x = np.round(x / 2.0**log_spread) * 2.0**log_spread
    qt = quantize(x, method="half_quadratic", bits=bits)
    levels = qt.levels[0]
    assert np.all(np.isfinite(levels)) and np.all(np.diff(levels) >= 0)
    err = np.abs(qt.dequantize() - x)
    nearest = np.min(np.abs(x[:, None] - levels[None, :]), axis=1)
    slack = 4 * np.finfo(np.float64).eps * max(np.abs(x).max(), 1e-300)
    assert np.all(err <= nearest + slack)


@pytest.mark.parametrize("option, value, error", [
    ("lp_norm", 0.0, ValueError), ("lp_norm", 1.5, ValueError), ("beta", -1.0, ValueError),
    ("beta", float("inf"), ValueError), ("kappa", 0.5, ValueError), ("iters", -1, ValueError),
    ("iters", 2.5, ValueError), ("lp_norm", "0.7", TypeError)])
def test_bad_options_are_named(option, value, error):
    with pytest.raises(error, match=option):
        quantize(np.ones((2, 4)) * np.arange(4), method="half_quadratic", bits=2, **{option: value})
