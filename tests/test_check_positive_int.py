"""The one check of a positive count, ``fmq_theory._util.check_positive_int``, and its callers.

Oracle: the definition itself (an integer, not a bool, ``>= 1``), stated independently of the
helper's code; the callers are checked to name their argument for the same bad values.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from fmq_theory._util import check_positive_int
from fmq_theory.bounds.spectral import jacobian_spectral_norm
from fmq_theory.flow.solvers import make_noise, time_grid
from fmq_theory.harness.models.unet import UNetConfig
from fmq_theory.harness.train import TrainConfig
from fmq_theory.theory.distortion import monte_carlo_replicates
from fmq_theory.theory.laws import Gaussian

NUMPY_INTS = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)


@given(value=st.integers(min_value=1, max_value=2**70), as_numpy=st.sampled_from((None,) + NUMPY_INTS))
@example(value=1, as_numpy=None).via("the smallest count")
@example(value=255, as_numpy=np.uint8).via("an unsigned numpy scalar at its top")
def test_accepts_exactly_the_positive_integers_as_python_ints(value, as_numpy):
    if as_numpy is not None:
        value = int(min(value, np.iinfo(as_numpy).max))
        given_value = as_numpy(value)
    else:
        given_value = value
    out = check_positive_int(given_value, name="steps")
    assert out == value and type(out) is int


@given(value=st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
    st.just(np.float64(3.0)),
    st.just(np.array(3)),
    st.just(torch.tensor(3)),
))
@example(value=3.0).via("a whole float is still refused")
@example(value=True).via("a bool is an int subclass, refused")
@example(value=None).via("None without allow_none")
def test_refuses_everything_else_naming_the_argument(value):
    with pytest.raises(ValueError, match=r"^batch_size must be a positive int, got "):
        check_positive_int(value, name="batch_size")


@given(value=st.one_of(st.none(), st.integers(min_value=1, max_value=10**6), st.integers(max_value=0)))
def test_allow_none_adds_none_only(value):
    if value is None or value >= 1:
        assert check_positive_int(value, name="limit", allow_none=True) == value
    else:
        with pytest.raises(ValueError, match=r"^limit must be a positive int or None, got "):
            check_positive_int(value, name="limit", allow_none=True)


CALLERS = {
    "time_grid steps": (lambda v: time_grid(v), "steps"),
    "make_noise n": (lambda v: make_noise(v, (2,), seed=0), "n"),
    "jacobian_spectral_norm iterations": (
        lambda v: jacobian_spectral_norm(lambda x: 2 * x, torch.ones(2, 2), iterations=v), "iterations"),
    "UNetConfig base_channels": (lambda v: UNetConfig(base_channels=v), "base_channels"),
    "TrainConfig steps": (lambda v: TrainConfig(steps=v), "steps"),
    "monte_carlo_replicates replicates": (
        lambda v: monte_carlo_replicates(Gaussian(), method="uniform_minmax", bits=[2], n=64, replicates=v),
        "replicates"),
}


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None], ids=repr)
@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_callers_refuse_a_bad_count_naming_their_argument(caller, bad):
    call, name = CALLERS[caller]
    with pytest.raises(ValueError, match=rf"\b{name} must be a positive int"):
        call(bad)
