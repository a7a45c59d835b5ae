"""The certificate certifies the sampled trajectory: one solver step, bit for bit.

:func:`fmq_theory.bounds.estimate_w2_trajectory` runs the full-precision and the quantized model through
:func:`fmq_theory.bounds.one_step_map`; sampling runs :func:`fmq_theory.flow.solvers.integrate`.
Both must be :func:`fmq_theory.flow.solvers.step` over :func:`fmq_theory.flow.solvers.time_grid`,
or the certificate bounds a trajectory nobody samples.  Here every evaluation of the
full-precision model inside ``estimate_w2_trajectory`` (state and time) is recorded and compared with those
of ``integrate`` by ``torch.equal``, and the certificate's measured end-point distance with
the distance between the two ``integrate`` end points by exact equality.
"""

import numpy as np
import pytest
import torch

from fmq_theory.bounds import estimate_w2_trajectory, one_step_map
from fmq_theory.flow.solvers import integrate, step, time_grid
from fmq_theory.flow.velocity import XT
from fmq_theory.vocab import FIXED_STEP_SOLVERS


class Recorder(torch.nn.Module):
    """A float64 MLP velocity ``model(x, t)`` that records every input it is called with.

    ``estimate_w2_trajectory`` evaluates the full-precision model only on the trajectory (the Lanczos
    estimates differentiate the quantized one), so every call recorded is a trajectory state.
    """

    def __init__(self, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.w1 = torch.nn.Parameter(torch.randn(16, 3, generator=gen, dtype=torch.float64))
        self.w2 = torch.nn.Parameter(torch.randn(2, 16, generator=gen, dtype=torch.float64) / 4)
        self.calls = []

    def forward(self, x, t):
        self.calls.append((x.detach().clone(), t.detach().clone()))
        return torch.tanh(torch.cat([x, t[:, None]], 1) @ self.w1.T) @ self.w2.T


@pytest.mark.parametrize("t0,t1", [(0.0, 1.0), (0.2, 0.9)])
@pytest.mark.parametrize("solver", FIXED_STEP_SOLVERS)
def test_certificate_trajectory_is_integrate_bit_for_bit(solver, t0, t1):
    fp, q = Recorder(0), Recorder(1)
    noise = torch.randn(9, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    steps = 7  # h = 1/7 is not a binary fraction: a different grid would show in the last bits
    cert = estimate_w2_trajectory(fp, q, noise, solver=solver, steps=steps, t0=t0, t1=t1, lanczos_iterations=2,
                   segment_points=(0.0,))
    in_certify, fp.calls = fp.calls, []
    with torch.no_grad():
        x_fp = integrate(XT().bind(fp), noise, solver=solver, steps=steps, t_start=t0, t_end=t1).x
        x_q = integrate(XT().bind(q), noise, solver=solver, steps=steps, t_start=t0, t_end=t1).x
    in_integrate = fp.calls
    assert len(in_certify) == len(in_integrate) == steps * (1 if solver == "euler" else 2)
    for (xa, ta), (xb, tb) in zip(in_certify, in_integrate):
        assert torch.equal(xa, xb) and torch.equal(ta, tb)
    assert np.array_equal(cert.paired_distance, (x_q - x_fp).flatten(1).norm(dim=1).double().numpy())


@pytest.mark.parametrize("solver", FIXED_STEP_SOLVERS)
def test_one_step_map_is_the_solver_step(solver):
    v = XT().bind(Recorder(3))
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for t, h in time_grid(3, t_start=0.1, t_end=0.8):
        assert torch.equal(one_step_map(v, t, h, solver=solver)(x), step(v, x, t, h, solver=solver))
