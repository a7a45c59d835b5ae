"""Conditional-OT path (fmq_theory.flow.path) and ODE solvers (fmq_theory.flow.solvers) against exact solutions."""

import numpy as np
import pytest
import torch
import torchdiffeq
from hypothesis import given, strategies as st

from fmq_theory.flow.path import cond_ot_path
from fmq_theory.flow.solvers import balanced_labels, integrate, make_noise
from fmq_theory.harness.models.unet import guided_velocity
from fmq_theory.vocab import SOLVERS


def _linear_field(seed=0, d=6):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) / np.sqrt(d)
    return a, (lambda t, x: x @ a.T)


@given(t=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_path_endpoints_and_velocity(t, seed):
    g = torch.Generator().manual_seed(seed)
    x0, x1 = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)
    ps = cond_ot_path(x0, x1, torch.full((3,), t))
    # x_t is affine in t with derivative x1 - x0: exact up to float32 rounding (|x| < 10)
    torch.testing.assert_close(ps.x_t, (1 - t) * x0 + t * x1, rtol=0, atol=1e-5)
    torch.testing.assert_close(ps.target, x1 - x0)
    if t in (0.0, 1.0):
        torch.testing.assert_close(ps.x_t, x0 if t == 0.0 else x1)


@pytest.mark.parametrize("solver,order", [("euler", 1), ("midpoint", 2), ("heun", 2)])
def test_fixed_step_order_on_linear_field(solver, order):
    """Global error of a p-th order scheme falls by 2^p when the step halves (dx/dt = A x)."""
    a, f = _linear_field()
    x0 = torch.ones(2, 6, dtype=torch.float64)
    exact = x0 @ torch.linalg.matrix_exp(a).T
    errs = [float((integrate(f, x0, solver=solver, steps=n).x - exact).norm()) for n in (64, 128)]
    # asymptotic ratio 2^p; +-15% covers the higher-order terms at these step sizes
    assert errs[0] / errs[1] == pytest.approx(2.0 ** order, rel=0.15)


def test_midpoint_matches_torchdiffeq_fixed_grid():
    """Independent oracle: torchdiffeq's fixed-grid explicit midpoint on the same grid."""
    a, f = _linear_field(seed=3)
    x0 = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = integrate(f, x0, solver="midpoint", steps=10)
    ref = torchdiffeq.odeint(f, x0, torch.tensor([0.0, 1.0], dtype=torch.float64),
                             method="midpoint", options={"step_size": 0.1})[-1]
    torch.testing.assert_close(ours.x, ref, rtol=1e-12, atol=1e-12)
    assert ours.nfe == 20 and ours.steps == 10


def test_dopri5_accuracy_and_backward_inversion():
    a, f = _linear_field(seed=5)
    x0 = torch.ones(1, 6, dtype=torch.float64)
    res = integrate(f, x0, solver="dopri5", atol=1e-10, rtol=1e-10)
    exact = x0 @ torch.linalg.matrix_exp(a).T
    assert float((res.x - exact).norm() / exact.norm()) < 1e-8
    assert res.nfe > 0
    back = integrate(f, res.x, solver="dopri5", t_start=1.0, t_end=0.0, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(back.x, x0, rtol=1e-7, atol=1e-7)


def test_noise_is_seeded_and_labels_balanced():
    torch.testing.assert_close(make_noise(5, (1, 2, 2), seed=7), make_noise(5, (1, 2, 2), seed=7))
    assert not torch.equal(make_noise(5, (1, 2, 2), seed=7), make_noise(5, (1, 2, 2), seed=8))
    assert balanced_labels(23, 10).bincount().tolist() == [3, 3, 3] + [2] * 7


def test_guided_velocity_combination():
    class M(torch.nn.Module):
        class config:
            num_classes = 3

        def forward(self, x, t, y):
            return x * (y.float()[:, None] + 1)

    x = torch.ones(2, 1)
    y = torch.tensor([0, 1])
    v = guided_velocity(M(), y, 0.5)(0.0, x)
    # (1 + w) v(y) - w v(null = 3)
    torch.testing.assert_close(v, 1.5 * x * (y.float()[:, None] + 1) - 0.5 * 4 * x)


def test_bad_arguments():
    f = lambda t, x: x
    with pytest.raises(ValueError, match="solver"):
        integrate(f, torch.zeros(1), solver="rk45")
    with pytest.raises(ValueError, match="steps"):
        integrate(f, torch.zeros(1), solver="euler", steps=0)
    with pytest.raises(ValueError, match="n must"):
        make_noise(0, (1,), seed=0)
    with pytest.raises(ValueError, match="x0 and x1"):
        cond_ot_path(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2))
    assert set(SOLVERS) == {"euler", "midpoint", "heun", "dopri5"}
