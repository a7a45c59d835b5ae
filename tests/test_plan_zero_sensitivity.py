"""A plan on a model with weights the samples do not depend on (zero sensitivity).

A tensor that does not move the samples must still get a code, a zero predicted
contribution, and a plan within its budget.  (The weighted codebook's failure on the paper's
55.7M network, near-zero sensitivities cancelling in the DP, is pinned in
``tests/test_plan_weighted.py``; this checks the exact-zero case end to end.)
"""

import math

import pytest
import torch

from fmq_theory.plan import plan_quantization, weight_sensitivity


class NetWithUnused(torch.nn.Module):
    """A tiny velocity field and a parameter that ``forward`` never reads."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.out = torch.nn.Conv2d(8, 1, 3, padding=1)
        self.unused = torch.nn.Linear(16, 16)

    def forward(self, x, t):
        return self.out(torch.nn.functional.silu(self.c1(x))) * (1 + t[:, None, None, None])


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = NetWithUnused()
    noise = torch.randn(8, 1, 8, 8)
    sens = weight_sensitivity(model, noise, solver="midpoint", steps=2, replicates=4, batch_size=2)
    return model, noise, sens


def test_the_unused_weights_have_zero_sensitivity(setup):
    _, _, sens = setup
    for name in ("unused.weight", "unused.bias"):
        assert float(abs(sens.replicates[name]).max()) == 0.0


@pytest.mark.parametrize("budget", [6.5, 8.0, 12.0])  # the cheapest plan of this tiny model is 6.2 bits/weight
def test_plan_is_finite_and_within_budget(setup, budget):
    model, noise, sens = setup
    plan = plan_quantization(model, budget_bits=budget, noise=noise, steps=2, sensitivity=sens, progress=False)
    assert plan.bits_per_weight <= budget
    assert {c.name for c in plan.choices} == set(model.state_dict())
    assert all(math.isfinite(c.predicted) and c.predicted >= 0 for c in plan.choices)
    unused = [c for c in plan.choices if c.name.startswith("unused.")]
    assert all(c.predicted == 0 for c in unused)
    d = plan.predicted_delta
    assert all(math.isfinite(v) for v in (d.value, d.low, d.high))
    for name, value in plan.state_dict().items():
        assert torch.isfinite(value).all(), name
