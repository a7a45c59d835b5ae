"""half_quadratic: HQQ's zero-point fit, held to the authors' package (``hqq``) group by group.

The oracle is the package's own proximal step (``hqq.core.optimize.optimize_weights_proximal_legacy_step``)
driven in float64 by the package's loop (initial inverse step ``(K-1)/(max-min)``, zero ``-min * step^-1``,
beta grown by kappa, stop at the first step whose mean absolute error does not decrease; a decrease within
rounding counts as none, as in ours).  The package's arithmetic works in weight units (``round(w * t + z)``),
ours in code units relative to the group minimum, so the two agree to rounding, not bit for bit.  Against the
package's public quantizer (``Quantizer.quantize``, float32 on the CPU, the whole tensor stopped at once) the
fits agree in the mean squared error to within its float32 rounding of the trajectory.
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
from fmq_theory.quantizers.half_quadratic import DEFAULT_OPTIONS, PLATEAU, zero_points


def package_fit(x: np.ndarray, bits: int) -> tuple[float, np.ndarray]:
    """The package's zero point (code units, its convention ``w ~ (q - z) / t``) and its final codes for one
    group, its proximal step driven in float64."""
    w = torch.from_numpy(np.asarray(x, dtype=np.float64)).reshape(1, -1)
    top = 2**bits - 1
    inv = (top / (w.max() - w.min())).reshape(1, 1)
    zero = (-w.min() * inv).reshape(1, 1)
    beta, best = DEFAULT_OPTIONS["beta"], np.inf
    for _ in range(DEFAULT_OPTIONS["iters"]):
        recon, _, zero, inv = optimize_weights_proximal_legacy_step(w, inv, zero, [0, top], beta,
                                                                   DEFAULT_OPTIONS["lp_norm"], 1)
        error = float(torch.abs(w - recon).mean())
        if not error < best * (1 - PLATEAU):
            break
        best = error
        beta *= DEFAULT_OPTIONS["kappa"]
    codes = torch.round(w * inv + zero).clamp(0, top).numpy().reshape(-1)
    return float(zero), codes


def group(seed: int, m: int, spread: float) -> np.ndarray:
    return np.random.default_rng(seed).standard_t(4, size=m) * spread


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("m", [16, 64, 128, 257])
@pytest.mark.parametrize("spread", [0.01, 0.05, 2.0])
def test_zero_point_and_codes_equal_the_package_step_in_float64(bits, m, spread):
    for seed in range(6):
        x = group(seed, m, spread)
        z_pkg, codes_pkg = package_fit(x, bits)
        lo, step, shift = zero_points(x[None], bits=bits)
        # ours: levels min + (k - z') s, the package's (k - z) / t with t = 1/s: z = z' - min / s
        assert shift[0] - lo[0] / step[0] == pytest.approx(z_pkg, abs=1e-9)
        qt = quantize(x, method="half_quadratic", bits=bits)
        np.testing.assert_array_equal(qt.codes.reshape(-1), codes_pkg)


def test_mse_matches_the_package_quantizer_in_float32():
    """The package's own entry point (float32 on the CPU): one group per call, so that its tensor-wide
    stop is the group's.  Rounding in float32 moves its trajectory (a code flips at a half-way point and
    the next steps differ), so the MSEs are compared in distribution over 240 groups: the median ratio is 1
    to 1e-6, and 9 groups in 10 are within 2%."""
    ratios = []
    for seed in range(20):
        for bits in (1, 2, 3, 4):
            for m, spread in ((64, 0.02), (128, 0.05), (128, 0.5)):
                x = group(seed, m, spread).astype(np.float32)
                codes, meta = Quantizer.quantize(torch.from_numpy(x).reshape(1, -1), nbits=bits, group_size=m,
                                                 optimize=True, round_zero=False, axis=1, bitpack=False,
                                                 device="cpu", compute_dtype=torch.float32)
                theirs = ((codes.float() - meta["zero"]) * meta["scale"]).numpy().reshape(-1)
                ours = quantize(x, method="half_quadratic", bits=bits).dequantize()
                ratios.append(np.mean((ours - x) ** 2) / np.mean((theirs - x) ** 2))
    ratios = np.array(ratios)
    assert np.median(ratios) == pytest.approx(1.0, abs=1e-6)
    assert np.mean(np.abs(ratios - 1) <= 0.02) >= 0.9


def test_groups_are_fitted_independently():
    """Each group stops on its own error: a tensor in groups equals its groups quantized one by one."""
    w = np.random.default_rng(3).standard_normal((5, 96)) * np.array([0.01, 0.1, 1.0, 3.0, 0.05])[:, None]
    whole = quantize(w, method="half_quadratic", bits=3, granularity="channel")
    for i in range(w.shape[0]):
        alone = quantize(w[i], method="half_quadratic", bits=3)
        np.testing.assert_array_equal(whole.levels[i], alone.levels[0])
        np.testing.assert_array_equal(whole.codes[i], alone.codes[0])


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
