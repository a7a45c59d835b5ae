"""Constants of the naive bound chain, each estimator named for what it returns.

The textbook chain of :mod:`fmq_theory.theory.fid_chain` needs three Lipschitz constants:

.. math::

    L_x = \\sup_{t, x} \\|\\partial_x v_\\theta(t, x)\\|_2, \\qquad
    L_\\theta = \\sup_{t, x} \\|\\partial_\\theta v_\\theta(t, x)\\|_2, \\qquad
    \\mathrm{Lip}(\\varphi) = \\sup_x \\|\\partial_x \\varphi(x)\\|_2,

the velocity's in the state, in the parameters (output change per unit norm of the whole
parameter vector) and the feature map's.  None of them can be computed exactly for a network.
This module offers two kinds of estimate, and every name says which one it is:

``_lower``
    the largest Jacobian norm found at sampled points.  Each point's norm is a Krylov estimate
    that converges from below (a Lanczos Ritz value, :mod:`fmq_theory.bounds.spectral`, or a
    power-iteration Rayleigh quotient), and the largest over finitely many points is below
    the supremum: the constant is *at least* this large, so a chain evaluated with it is, if
    anything, too small.

``_upper``
    the product of upper bounds on the spectral norms of the layers of a feed-forward network
    whose other maps are 1-Lipschitz (ReLU, max-pooling, flattening): an upper bound on
    :math:`\\mathrm{Lip}(\\varphi)`, exact up to float64 round-off (a linear layer's norm by SVD,
    a convolution's by the DFT of the circular convolution that contains it,
    :func:`layer_norm_upper`).

Points are states of trajectories of the deployed fixed-step solver
(:func:`trajectory_points`), which is where the chain's Gronwall step uses :math:`L_x`.

Examples
--------
A linear field ``v(t, x) = A x`` with ``A = diag(2, 1)``: every estimate finds ``||A|| = 2``.

>>> import torch
>>> a = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
>>> velocity = lambda t, x: x @ a.T
>>> points = trajectory_points(velocity, torch.ones(3, 2), solver="euler", steps=4, every=2)
>>> [t for t, _ in points]
[0.0, 0.5]
>>> lipschitz_x_lower(velocity, points, iterations=2).round(4).tolist()
[[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
>>> lin = torch.nn.Linear(2, 2, bias=False)
>>> _ = lin.weight.data.copy_(a)
>>> round(lip_features_upper(lin, lin, input_shape=(2,)), 4)
2.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch.func import jvp, vjp

from fmq_theory._util import check_positive_int
from fmq_theory.bounds.spectral import jacobian_spectral_norm
from fmq_theory.flow.checks import check_noise
from fmq_theory.flow.solvers import solver_spec, step, time_grid
from fmq_theory.flow.velocity import XT, Adapter, Velocity, with_parameters

__all__ = ["TrajectoryConstants", "layer_norm_upper", "lip_features_lower", "lip_features_upper", "lipschitz_theta_lower",
           "lipschitz_x_lower", "trajectory_constants", "trajectory_points"]

#: Modules that :func:`lip_features_upper` takes as 1-Lipschitz (no parameters, norm <= 1).
ONE_LIPSCHITZ = (torch.nn.ReLU, torch.nn.MaxPool2d, torch.nn.Flatten, torch.nn.Identity)

#: A point of a trajectory: its time and the states of a batch of samples there.
Point = tuple[float, torch.Tensor]


@torch.no_grad()
def trajectory_points(velocity: Velocity, x0: torch.Tensor, *, solver: str, steps: int,
                      every: int = 1) -> tuple[Point, ...]:
    """States of the fixed-step solver's trajectories from ``x0`` at every ``every``-th grid time.

    Parameters
    ----------
    velocity : callable
        ``velocity(t, x)``.
    x0 : torch.Tensor, shape ``(n, *event)``
        Start states at ``t = 0``.
    solver : {"euler", "midpoint", "heun"}
    steps : int
        Steps of :func:`fmq_theory.flow.solvers.time_grid` over ``[0, 1]``.
    every : int
        Keep the state at grid times ``t_k`` with ``k % every == 0``.

    Returns
    -------
    tuple of (float, torch.Tensor)
        ``(t_k, x_k)`` before step ``k``.

    Raises
    ------
    ValueError
        Not a fixed-step ``solver``, ``steps`` or ``every`` not a positive int, or ``x0`` with a
        NaN or infinite entry.
    """
    solver_spec(solver, fixed_step=True)
    every = check_positive_int(every, name="every")
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 holds NaN or infinite entries")
    points, x = [], x0
    for k, (t, h) in enumerate(time_grid(steps)):
        if k % every == 0:
            points.append((t, x))
        x = step(velocity, x, t, h, solver=solver)
    return tuple(points)


def _jacobian_norms(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, iterations: int,
                    generator: torch.Generator | None) -> np.ndarray:
    est = jacobian_spectral_norm(fn, x, iterations=iterations, generator=generator)
    return est.norm.detach().double().cpu().numpy()


def lipschitz_x_lower(velocity: Velocity, points: Sequence[Point], *, iterations: int = 8,
                      generator: torch.Generator | None = None) -> np.ndarray:
    """Lanczos estimates of ``||d v(t, x) / d x||_2`` at every sample of every point.

    Parameters
    ----------
    velocity : callable
        ``velocity(t, x)``, sample-wise.
    points : sequence of (float, torch.Tensor)
        ``(t, x)`` with ``x`` of shape ``(n, *event)`` (e.g. :func:`trajectory_points`).
    iterations : int
        Lanczos steps (:func:`fmq_theory.bounds.spectral.jacobian_spectral_norm`).
    generator : torch.Generator, optional
        Source of the random start vectors (the global generator when omitted).

    Returns
    -------
    numpy.ndarray, shape ``(len(points), n)``
        Each an estimate from below; their maximum is a lower estimate of ``L_x``.

    Raises
    ------
    ValueError
        ``points`` is empty, or as :func:`~fmq_theory.bounds.spectral.jacobian_spectral_norm`
        (``iterations``, a non-finite state or Jacobian product).
    """
    if not points:
        raise ValueError("points is empty: give at least one (t, x)")
    return np.stack([_jacobian_norms(lambda z, t=t: velocity(t, z), x, iterations, generator) for t, x in points])


def lipschitz_theta_lower(velocity_of: Callable[[Mapping[str, torch.Tensor]], Velocity],
                          params: Mapping[str, torch.Tensor], points: Sequence[Point], *,
                          iterations: int = 10, generator: torch.Generator | None = None) -> np.ndarray:
    """Power-iteration estimates of ``||d v_theta(t, x) / d theta||_2`` at every point.

    The operator ``J = d v / d theta`` maps the parameters to the velocity of the point's batch
    ``x``; its norm is found by power iteration on ``J J^T`` in the output space (one VJP and
    one JVP per iteration), reported as the Rayleigh quotient ``sqrt(u^T J J^T u) = |J^T u|``
    of the last unit iterate ``u``: an estimate from below.

    Parameters
    ----------
    velocity_of : callable
        ``velocity_of(params)`` -> ``v(t, x)`` of the model with parameters ``params`` (e.g.
        through :func:`torch.func.functional_call`), for the samples of the points' batches.
    params : mapping of str to torch.Tensor
        The parameters at which ``J`` is taken.
    points : sequence of (float, torch.Tensor)
        ``(t, x)``; the whole batch ``x`` is one map (use a batch of one for a per-sample norm).
    iterations : int
    generator : torch.Generator, optional
        CPU source of the start vectors (the global generator when omitted).

    Returns
    -------
    numpy.ndarray, shape ``(len(points),)``
        Their maximum is a lower estimate of ``L_theta``.

    Raises
    ------
    ValueError
        ``points`` is empty, ``iterations`` is not a positive int (0 gave a norm of 0), or the
        estimate at a point is not finite (a NaN or infinite state or velocity).
    """
    if not points:
        raise ValueError("points is empty: give at least one (t, x)")
    iterations = check_positive_int(iterations, name="iterations")
    out = []
    for k, (t, x) in enumerate(points):
        def f(p, t=t, x=x):
            return velocity_of(p)(t, x)

        _, vjp_fn = vjp(f, params)
        u = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        sigma = 0.0
        for _ in range(iterations):
            u = u / u.norm()
            (g,) = vjp_fn(u)
            _, ju = jvp(f, (params,), (g,))
            sigma = float(ju.flatten() @ u.flatten()) ** 0.5
            u = ju
        if not math.isfinite(sigma):
            raise ValueError(f"points[{k}]: ||d v / d theta|| is not finite there (a NaN or infinite state or "
                             "velocity)")
        out.append(sigma)
    return np.array(out)


def lip_features_lower(feature_fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, *,
                       iterations: int = 8, generator: torch.Generator | None = None) -> np.ndarray:
    """Lanczos estimates of ``||d feature_fn(x) / d x||_2`` at every image (a batch ``(n, *event)``).

    Returns
    -------
    numpy.ndarray, shape ``(n,)``
        Their maximum is a lower estimate of ``Lip(feature_fn)``.
    """
    return _jacobian_norms(feature_fn, images, iterations, generator)


def _layers(feature_fn: Callable, net: torch.nn.Module, input_shape: tuple) -> list:
    """``(layer, input shape)`` of the Conv2d and Linear layers ``feature_fn`` calls, in order."""
    calls = []
    hooks = [m.register_forward_hook(lambda m, args, out: calls.append((m, tuple(args[0].shape[1:]))))
             for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            param = next(net.parameters(), None)
            if param is None:
                raise ValueError(f"net ({type(net).__name__}) has no parameters: no layer whose norm could be bounded")
            feature_fn(torch.zeros(2, *input_shape, dtype=param.dtype, device=param.device))
    finally:
        for h in hooks:
            h.remove()
    layers = []
    for module, shape in calls:
        if isinstance(module, torch.nn.Conv2d) and module.padding_mode == "zeros":
            layers.append((module, shape))
        elif isinstance(module, torch.nn.Linear):
            layers.append((module, shape))
        elif not isinstance(module, ONE_LIPSCHITZ):
            raise ValueError(f"lip_features_upper: {type(module).__name__} is neither a zero-padded Conv2d, a "
                             f"Linear nor one of the 1-Lipschitz {[c.__name__ for c in ONE_LIPSCHITZ]}")
    return layers


def _conv_norm_upper(layer: torch.nn.Conv2d, in_shape: tuple) -> float:
    """``max_w ||W_hat(w)||_2`` of the circular convolution that contains the zero-padded one.

    Embed the zero-padded input in an ``N x N`` grid with ``N >= H + 2p + d (k - 1)`` (no index
    wraps around): the layer is ``S C E``, ``E`` the isometric embedding, ``C`` the circular
    cross-correlation on the grid and ``S`` the selection of the (strided) outputs, so
    ``||layer|| <= ||C||``, and ``C`` is block-diagonalised by the 2-D DFT: its norm is the largest
    singular value of the ``c_out x c_in`` matrices ``W_hat(w)`` over the ``N^2`` frequencies
    (Sedghi, Gupta & Long, ICLR 2019).  Groups are blocks of one block-diagonal operator.
    """
    weight = layer.weight.detach().double().cpu()
    c_out, c_in_group, kh, kw = weight.shape
    (ph, pw), (dh, dw) = _pair(layer.padding, in_shape), layer.dilation
    size = max(in_shape[1] + 2 * ph + dh * (kh - 1), in_shape[2] + 2 * pw + dw * (kw - 1))
    grid = torch.zeros(c_out, c_in_group, size, size, dtype=torch.float64)
    grid[:, :, : dh * (kh - 1) + 1 : dh, : dw * (kw - 1) + 1 : dw] = weight
    spectrum = torch.fft.fft2(grid).permute(2, 3, 0, 1)  # (N, N, c_out, c_in / groups)
    per_group = c_out // layer.groups
    return max(float(torch.linalg.matrix_norm(spectrum[:, :, g * per_group:(g + 1) * per_group], ord=2).max())
               for g in range(layer.groups))


def _pair(padding, in_shape: tuple) -> tuple:
    """Padding of a Conv2d as ``(ph, pw)`` (``"same"``: the largest one-sided amount suffices)."""
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        return (in_shape[1], in_shape[2])
    return tuple(padding)


def layer_norm_upper(layer: torch.nn.Module, in_shape: tuple) -> float:
    """An upper bound on the spectral norm of a layer's weight operator (no bias), exact up to round-off.

    :class:`torch.nn.Linear`: the largest singular value of the weight (float64 SVD).
    Zero-padded :class:`torch.nn.Conv2d`: the norm of the circular convolution that contains it
    (see :func:`_conv_norm_upper`); equal to the layer's norm up to boundary effects.

    Parameters
    ----------
    layer : torch.nn.Linear or torch.nn.Conv2d
    in_shape : tuple of int
        Shape of one input of the layer (``(c, h, w)`` for a convolution).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``layer`` is neither a Linear nor a Conv2d, or its weight holds a NaN or infinite entry;
        ``in_shape`` of a Conv2d is not ``(c, h, w)``.

    Examples
    --------
    >>> lin = torch.nn.Linear(3, 2, bias=False)
    >>> _ = lin.weight.data.copy_(torch.tensor([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]))
    >>> layer_norm_upper(lin, (3,))
    4.0
    """
    if not isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
        raise ValueError(f"layer must be a Linear or Conv2d, got {type(layer).__name__}")
    if not bool(torch.isfinite(layer.weight).all()):
        raise ValueError(f"layer ({layer!r}): its weight holds NaN or infinite entries")
    if isinstance(layer, torch.nn.Conv2d):
        if len(in_shape) != 3:
            raise ValueError(f"in_shape={tuple(in_shape)!r} must be (c, h, w) for a Conv2d")
        return _conv_norm_upper(layer, tuple(in_shape))
    return float(torch.linalg.matrix_norm(layer.weight.detach().double().cpu(), ord=2))


def lip_features_upper(feature_fn: Callable[[torch.Tensor], torch.Tensor], net: torch.nn.Module, *,
                       input_shape: tuple) -> float:
    """Product of upper bounds on the spectral norms of the layers ``feature_fn`` runs through.

    An upper bound on ``Lip(feature_fn)`` for a feed-forward chain (each factor from
    :func:`layer_norm_upper`, exact up to float64 round-off): ``feature_fn`` must be the
    composition, in call order, of the zero-padded :class:`torch.nn.Conv2d` and
    :class:`torch.nn.Linear` layers of ``net`` and of maps in :data:`ONE_LIPSCHITZ`; a biased
    layer has the norm of its weight.  The layers and their input shapes are found by running
    ``feature_fn`` once on two zero inputs; a leaf module of another kind raises.  Maps
    ``feature_fn`` applies without a module (a residual sum, a functional activation) cannot be
    seen, and are the caller's to rule out.

    Parameters
    ----------
    feature_fn : callable
        The feature map, ``(n, *input_shape) -> (n, d)``.
    net : torch.nn.Module
        The module holding its layers.
    input_shape : tuple of int
        Shape of one input.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``net`` has no parameters, holds a leaf module of another kind, or a layer with a NaN or
        infinite weight (:func:`layer_norm_upper`).
    """
    prod = 1.0
    for layer, shape in _layers(feature_fn, net, tuple(input_shape)):
        prod *= layer_norm_upper(layer, shape)
    return prod


@dataclass(frozen=True)
class TrajectoryConstants:
    """Lower estimates of ``L_x`` and ``L_theta`` at the states of sampled trajectories.

    Attributes
    ----------
    times : numpy.ndarray, shape (P,)
        Time of each probed state.
    lipschitz_x_per_point : numpy.ndarray, shape (P, n)
        Lanczos estimate of ``||dv/dx||_2`` per time and sample.
    lipschitz_theta_per_point : numpy.ndarray, shape (P, m)
        Power-iteration estimate of ``||dv/dtheta||_2`` per time and probed sample.
    """

    times: np.ndarray
    lipschitz_x_per_point: np.ndarray
    lipschitz_theta_per_point: np.ndarray

    @property
    def lipschitz_x_lower(self) -> float:
        """The largest ``||dv/dx||_2`` found: a lower estimate of ``L_x``."""
        return float(self.lipschitz_x_per_point.max())

    @property
    def lipschitz_theta_lower(self) -> float:
        """The largest ``||dv/dtheta||_2`` found: a lower estimate of ``L_theta``."""
        return float(self.lipschitz_theta_per_point.max())


def trajectory_constants(model: torch.nn.Module, noise: torch.Tensor, *, adapter: Adapter = XT(), solver: str,
                         steps: int, every: int = 1, theta_samples: int = 1, x_iterations: int = 8,
                         theta_iterations: int = 10,
                         generator: torch.Generator | None = None) -> TrajectoryConstants:
    """Probe ``L_x`` and ``L_theta`` along the solver's trajectories from ``noise``.

    The states of :func:`trajectory_points` at every ``every``-th grid time get
    :func:`lipschitz_x_lower` for all samples (all points first), then
    :func:`lipschitz_theta_lower` for each of the first ``theta_samples`` samples alone.

    Parameters
    ----------
    model : torch.nn.Module
        The velocity model; ``L_theta`` is taken with respect to its ``named_parameters()``
        (through :func:`fmq_theory.flow.velocity.with_parameters`).
    noise : torch.Tensor, shape ``(n, *event)``
        Start states, on the model's device.
    adapter : fmq_theory.flow.velocity.Adapter
        How to call ``model``, with the per-sample conditioning of the ``n`` samples (as in
        :func:`fmq_theory.bounds.estimate_w2_trajectory`).
    solver, steps, every : as for :func:`trajectory_points`
    theta_samples : int
        Samples probed for ``L_theta`` (``1 <= theta_samples <= n``).
    x_iterations, theta_iterations : int
    generator : torch.Generator, optional
        As for :func:`lipschitz_x_lower` and :func:`lipschitz_theta_lower`.

    Returns
    -------
    TrajectoryConstants

    Raises
    ------
    ValueError
        ``noise`` is not a floating tensor ``(n >= 1, *event)`` of finite entries (it gave NaN
        constants), ``theta_samples`` is not an int in ``[1, n]``, or as the functions above.
    """
    check_noise(noise)
    n = noise.shape[0]
    if isinstance(theta_samples, bool) or not isinstance(theta_samples, int) or not 1 <= theta_samples <= n:
        raise ValueError(f"theta_samples={theta_samples!r} must be an int in [1, {n}]")
    adapter.check(noise.shape[0])
    params = {name: p.detach() for name, p in model.named_parameters()}

    def velocity_of(p, rows):
        return adapter.bind(with_parameters(model, p), rows=rows)

    velocity = velocity_of(params, slice(None))
    points = trajectory_points(velocity, noise, solver=solver, steps=steps, every=every)
    lx = lipschitz_x_lower(velocity, points, iterations=x_iterations, generator=generator)
    lt = np.stack([lipschitz_theta_lower(lambda p, i=i: velocity_of(p, slice(i, i + 1)), params,
                                         [(t, x[i:i + 1]) for t, x in points], iterations=theta_iterations,
                                         generator=generator)
                   for i in range(theta_samples)], axis=1)
    return TrajectoryConstants(times=np.array([t for t, _ in points]), lipschitz_x_per_point=lx,
                               lipschitz_theta_per_point=lt)
