"""The paired difference of two variants' shifts (scripts/shift_draws_cpu.py), against a plain numpy oracle."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fmq_theory.plan.selection import distribution_shift

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def shift_draws():
    sys.path.insert(0, str(SCRIPTS))  # the script imports gpu_plan_eval beside it
    try:
        spec = importlib.util.spec_from_file_location("shift_draws_cpu", SCRIPTS / "shift_draws_cpu.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


def _oracle_w2(x: np.ndarray, y: np.ndarray) -> float:
    """Squared W2 of diagonal Gaussian fits per entry, written out entry by entry."""
    total = 0.0
    for j in range(x.shape[1]):
        total += (x[:, j].mean() - y[:, j].mean()) ** 2 + (x[:, j].std(ddof=1) - y[:, j].std(ddof=1)) ** 2
    return total / x.shape[1]


@settings(deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(3, 40), d=st.integers(1, 5))
def test_the_point_difference_is_the_oracle_and_lies_in_its_interval(shift_draws, seed, n, d):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n, d))
    x, y = ref + 0.3 * rng.normal(size=(n, d)), ref + 0.1 * rng.normal(size=(n, d))
    value, low, high = shift_draws.paired_difference(x, y, ref)
    assert value == pytest.approx(_oracle_w2(x, ref) - _oracle_w2(y, ref), rel=1e-10, abs=1e-12)
    assert low <= value <= high
    back = shift_draws.paired_difference(y, x, ref)
    assert back[0] == pytest.approx(-value, rel=1e-12, abs=1e-15)


def test_a_variant_against_itself_differs_by_exactly_zero(shift_draws):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 4))
    x = ref + rng.normal(size=(50, 4))
    assert shift_draws.paired_difference(x, x, ref) == (0.0, 0.0, 0.0)


def test_pairing_resolves_a_difference_that_the_two_intervals_do_not(shift_draws):
    """Two variants sharing most of their error: each shift alone is noisy, their difference is not."""
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(400, 8))
    common = rng.normal(size=(400, 8))
    x, y = ref + 0.5 * common + 0.05, ref + 0.5 * common
    value, low, high = shift_draws.paired_difference(x, y, ref)
    assert value == pytest.approx(0.05**2 + 0.05 * 2 * (0.5 * common).mean(0).mean(), rel=1e-9)  # same spreads
    _, x_low, x_high = distribution_shift(torch.as_tensor(x), torch.as_tensor(ref))
    _, y_low, y_high = distribution_shift(torch.as_tensor(y), torch.as_tensor(ref))
    assert x_low < y_high and y_low < x_high  # the two intervals overlap
    assert low > 0  # the paired one does not hold 0
