"""The naive chain's constants (:mod:`fmq_theory.bounds.constants`): lower estimates and the upper bound."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fmq_theory.bounds.constants import (
    layer_norm_upper,
    lip_features_lower,
    lip_features_upper,
    lipschitz_theta_lower,
    lipschitz_x_lower,
    trajectory_constants,
    trajectory_points,
)
from fmq_theory.flow.solvers import integrate, step, time_grid
from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _linear(w):
    return lambda t, x: x @ w.T


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun"])
def test_trajectory_points_are_the_solver_states(solver):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 3, generator=g) / 3
    x0 = torch.randn(5, 3, generator=g)
    v = lambda t, x: torch.tanh(x @ w.T) + t  # noqa: E731
    points = trajectory_points(v, x0, solver=solver, steps=6)
    assert [t for t, _ in points] == [t for t, _ in time_grid(6)]
    assert torch.equal(points[0][1], x0)
    t, h = time_grid(6)[-1]
    assert torch.equal(step(v, points[-1][1], t, h, solver=solver), integrate(v, x0, solver=solver, steps=6).x)
    assert [t for t, _ in trajectory_points(v, x0, solver=solver, steps=6, every=4)] == [0.0, time_grid(6)[4][0]]


def test_lipschitz_x_lower_of_a_linear_field():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 4, generator=g, dtype=torch.float64)
    points = trajectory_points(_linear(a), torch.randn(3, 4, generator=g, dtype=torch.float64), solver="midpoint",
                               steps=4, every=2)
    est = lipschitz_x_lower(_linear(a), points, iterations=4, generator=g)
    norm = float(torch.linalg.matrix_norm(a, ord=2))
    assert est.shape == (2, 3)
    assert est.max() <= norm * (1 + 1e-12)
    assert est.min() == pytest.approx(norm, rel=1e-9)  # a full Krylov space: the exact norm


def test_lipschitz_theta_lower_of_a_parameter_linear_field():
    # v_W(t, x) = x W^T: J maps W to X W^T, J J^T = X X^T on the output rows, so ||J|| = sigma_max(X)
    g = torch.Generator().manual_seed(2)
    params = {"w": torch.randn(3, 3, generator=g, dtype=torch.float64)}
    x = torch.randn(2, 3, generator=g, dtype=torch.float64)
    est = lipschitz_theta_lower(lambda p: _linear(p["w"]), params, [(0.0, x), (0.5, x[:1])], iterations=60,
                                generator=g)
    assert est[0] == pytest.approx(float(torch.linalg.matrix_norm(x, ord=2)), rel=1e-8)
    assert est[1] == pytest.approx(float(x[0].norm()), rel=1e-12)


class _LinearField(torch.nn.Module):
    """``v(x, t) = x W^T`` with the parameter ``w``."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x, t):
        return x @ self.w.T


def test_trajectory_constants_probe_every_point():
    g = torch.Generator().manual_seed(3)
    params = {"w": torch.randn(3, 3, generator=g, dtype=torch.float64) / 2}
    noise = torch.randn(4, 3, generator=g, dtype=torch.float64)
    field = _LinearField(params["w"])
    probe = trajectory_constants(field, noise, solver="heun", steps=6, every=2,
                                 theta_samples=2, x_iterations=3, theta_iterations=40, generator=g)
    assert probe.times.tolist() == [t for t, _ in time_grid(6)][::2]
    assert probe.lipschitz_x_per_point.shape == (3, 4) and probe.lipschitz_theta_per_point.shape == (3, 2)
    assert probe.lipschitz_x_lower == pytest.approx(float(torch.linalg.matrix_norm(params["w"], ord=2)), rel=1e-9)
    states = trajectory_points(_linear(params["w"]), noise, solver="heun", steps=6, every=2)
    assert probe.lipschitz_theta_lower == pytest.approx(max(float(x[i].norm()) for _, x in states for i in (0, 1)))
    with pytest.raises(ValueError, match="theta_samples"):
        trajectory_constants(field, noise, solver="heun", steps=6, theta_samples=5)


def _small_cnn():
    torch.manual_seed(4)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(8, 3)).double()


def _dense_norm(fn, shape) -> float:
    """Brute force: the spectral norm of the explicit Jacobian matrix of a linear map."""
    dense = torch.autograd.functional.jacobian(lambda x: fn(x.reshape(1, *shape)).flatten(),
                                               torch.zeros(math.prod(shape), dtype=torch.float64))
    return float(torch.linalg.matrix_norm(dense, ord=2))


@pytest.mark.parametrize("kwargs, shape", [
    ({"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": 1}, (2, 6, 6)),
    ({"in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}, (2, 7, 7)),
    ({"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": 2, "dilation": 2, "groups": 2}, (4, 5, 5)),
    ({"in_channels": 1, "out_channels": 3, "kernel_size": 5}, (1, 9, 9)),
    ({"in_channels": 3, "out_channels": 2, "kernel_size": 3, "padding": 1}, (3, 24, 24)),
])
def test_layer_norm_upper_is_above_the_brute_force_norm(kwargs, shape):
    torch.manual_seed(sum(shape))
    conv = torch.nn.Conv2d(**kwargs).double()

    def fn(x):
        return torch.nn.functional.conv2d(x, conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)

    exact = _dense_norm(fn, shape)
    upper = layer_norm_upper(conv, shape)
    assert exact <= upper * (1 + 1e-12)
    if shape[1] >= 24:  # boundary effects fade: the circular bound approaches the layer's norm
        assert upper <= 1.05 * exact


def test_lip_features_upper_is_the_product_of_the_layer_norms():
    net = _small_cnn()
    conv, lin = net[0], net[4]
    upper = lip_features_upper(net, net, input_shape=(1, 4, 4))
    assert upper == pytest.approx(layer_norm_upper(conv, (1, 4, 4)) * float(
        torch.linalg.matrix_norm(lin.weight.detach(), ord=2)), rel=1e-12)
    # above the brute-force norm of the network's Jacobian at random points (ReLU, max-pool: 1-Lipschitz)
    x = torch.randn(16, 1, 4, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda z: net(z.reshape(1, 1, 4, 4)).flatten(), xi.flatten())
        assert float(torch.linalg.matrix_norm(jac, ord=2)) <= upper * (1 + 1e-12)
    lower = lip_features_lower(net, x, iterations=3)
    assert lower.shape == (16,) and lower.max() <= upper


def test_lip_features_upper_needs_a_feed_forward_chain():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        lip_features_upper(net, net, input_shape=(2,))


def test_lip_features_upper_of_the_committed_classifier():
    # the committed results/bound_*.json and bound_check_*.csv carry this upper bound, x 1/2 from model space
    for dataset in ("mnist", "fashion_mnist"):
        net = ClassifierFeatures(classifier_checkpoint(dataset)).net
        committed = json.loads((ROOT / "results" / f"bound_{dataset}.json").read_text())["constants"]
        assert 0.5 * lip_features_upper(net.features, net, input_shape=(1, 28, 28)) == pytest.approx(
            committed["lip_features_upper"], rel=1e-12)
