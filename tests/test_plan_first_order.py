"""The first-order displacement of a weight error (:mod:`fmq_theory.plan.first_order`).

Oracles: central finite differences of the sampler in float64 for :math:`E_z |J e|^2` (error
:math:`O(h^2)`, far below the tolerances), the sensitivity estimate of the same probes for the
diagonal, and the exact identity of the two for an error on a single weight.
"""

from __future__ import annotations

import math

import pytest
import torch

from fmq_theory.flow.solvers import sample
from fmq_theory.flow.velocity import with_parameters
from fmq_theory.plan import first_order_displacement, weight_sensitivity

SOLVER, STEPS = "midpoint", 3


class TwoLayer(torch.nn.Module):
    """v(x, t) = tanh(x W1^T) W2^T + t b: nonlinear, so J depends on z."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.W1 = torch.nn.Parameter(torch.randn(6, 4, generator=g, dtype=torch.float64) * 0.5)
        self.W2 = torch.nn.Parameter(torch.randn(4, 6, generator=g, dtype=torch.float64) * 0.5)
        self.b = torch.nn.Parameter(torch.randn(4, generator=g, dtype=torch.float64) * 0.1)

    def forward(self, x, t):
        return torch.tanh(x @ self.W1.T) @ self.W2.T + t.reshape(-1, 1) * self.b


@pytest.fixture(scope="module")
def model_and_noise():
    return TwoLayer(), torch.randn(64, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _exact(model, noise, error, h=1e-5):
    """E_z |J e|^2 per sample and entry by central differences of the sampler."""
    params = dict(model.named_parameters())

    def x_at(sign):
        moved = {k: (p + sign * h * error[k] if k in error else p).detach() for k, p in params.items()}
        return sample(with_parameters(model, moved), noise, solver=SOLVER, steps=STEPS).x

    je = (x_at(1) - x_at(-1)) / (2 * h)
    return float((je ** 2).sum(dim=1).mean()) / noise.shape[1]


def _errors(model):
    g = torch.Generator().manual_seed(11)
    w1, w2 = model.W1.detach(), model.W2.detach()
    return [
        {"W1": 0.01 * torch.randn(w1.shape, generator=g, dtype=torch.float64)},     # noise-like
        {"W1": -0.05 * w1, "W2": -0.05 * w2},                                         # anti-aligned: every tensor shrinks
        {"W2": 0.02 * torch.sign(w2), "b": torch.full((4,), 0.01, dtype=torch.float64)},  # one-signed
    ]


def test_the_estimate_matches_finite_differences(model_and_noise):
    """With 4,096 probes the whole form equals E|J e|^2 within 10% (its interval's half-width is ~6%)."""
    model, noise = model_and_noise
    errors = _errors(model)
    got = first_order_displacement(model, noise, errors, solver=SOLVER, steps=STEPS, projections=512, batch_size=8)
    for e, d in zip(errors, got):
        exact = _exact(model, noise, e)
        assert d.value == pytest.approx(exact, rel=0.1) and d.low <= exact <= d.high
        assert d.low <= d.value <= d.high and d.n_probes == 8 * 512 and d.level == 0.95


def test_the_cross_terms_matter_for_correlated_errors(model_and_noise):
    """For the one-signed error the diagonal misses the exact value by a third, outside the whole
    form's interval; for one weight alone the two are identical."""
    model, noise = model_and_noise
    signed = _errors(model)[2]
    d = first_order_displacement(model, noise, [signed], solver=SOLVER, steps=STEPS, projections=512, batch_size=8)[0]
    exact = _exact(model, noise, signed)
    assert d.diagonal > 1.3 * exact and d.diagonal > d.high and d.low <= exact <= d.high
    single = {"W1": torch.zeros(6, 4, dtype=torch.float64).index_put_((torch.tensor(2), torch.tensor(1)),
                                                                     torch.tensor(0.03, dtype=torch.float64))}
    one = first_order_displacement(model, noise, [single], solver=SOLVER, steps=STEPS, projections=4, batch_size=8)[0]
    assert one.value == pytest.approx(one.diagonal, rel=1e-12)


def test_the_diagonal_is_the_sensitivitys_prediction(model_and_noise):
    """Same seed, batches and projections: the probes are the sensitivity's, the diagonal its prediction."""
    model, noise = model_and_noise
    errors = _errors(model)
    sens = weight_sensitivity(model, noise, solver=SOLVER, steps=STEPS, projections=2, replicates=4, batch_size=8,
                              seed=9)
    got = first_order_displacement(model, noise, errors, solver=SOLVER, steps=STEPS, projections=2, batch_size=8,
                                   seed=9)
    for e, d in zip(errors, got):
        predicted = sens.predicted({k: (t ** 2).numpy() for k, t in e.items()})[0]
        assert d.diagonal == pytest.approx(predicted / noise.shape[1], rel=1e-12)


def test_one_batch_has_no_spread(model_and_noise):
    model, noise = model_and_noise
    d = first_order_displacement(model, noise[:8], [_errors(model)[0]], solver=SOLVER, steps=STEPS, batch_size=8)[0]
    assert d.low == d.value == d.high and math.isfinite(d.value)


@pytest.mark.parametrize("errors, match", [
    ([], "non-empty"),
    ({"W1": torch.zeros(6, 4)}, "non-empty sequence"),
    ([{"nope": torch.zeros(2)}], "not a parameter"),
    ([{"W1": torch.zeros(4, 6)}], "has shape"),
    ([{"W1": torch.full((6, 4), float("nan"))}], "NaN or Inf"),
    ([3.0], "errors\\[0\\] must be a mapping"),
])
def test_bad_errors_are_named(model_and_noise, errors, match):
    model, noise = model_and_noise
    with pytest.raises(ValueError, match=match):
        first_order_displacement(model, noise, errors, solver=SOLVER, steps=STEPS)


@pytest.mark.parametrize("kwargs, match", [({"level": 1.0}, "level"), ({"projections": 0}, "projections"),
                                           ({"batch_size": True}, "batch_size"), ({"steps": 0}, "steps"),
                                           ({"solver": "dopri5"}, "solver")])
def test_bad_settings_are_named(model_and_noise, kwargs, match):
    model, noise = model_and_noise
    with pytest.raises(ValueError, match=match):
        first_order_displacement(model, noise, [_errors(model)[0]], **({"solver": SOLVER, "steps": STEPS} | kwargs))
