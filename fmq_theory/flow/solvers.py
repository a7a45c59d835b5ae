"""ODE sampling for flow-matching models: one step function for sampling and the certificate.

Sampling integrates ``dx/dt = v(t, x)`` from ``t = 0`` (noise) to ``t = 1`` (data); inversion
integrates backwards.  The velocity is any callable ``v(t, x)`` (``t`` a float); the adapters
of :mod:`fmq_theory.flow.velocity` make one from a model's own call signature.

Solvers (:data:`fmq_theory.vocab.SOLVERS`): fixed-step ``euler`` (1 evaluation per step),
``midpoint`` and ``heun`` (2 per step), and adaptive ``dopri5`` through ``torchdiffeq``
(Chen et al. 2018), the integrator that facebookresearch's ``flow_matching.solver.ODESolver``
itself wraps.  We use torchdiffeq directly rather than the ``flow-matching`` package: it
installs cleanly with torch 2.13, but its licence is CC-BY-NC (this package is MIT) and its
ODESolver adds nothing beyond the torchdiffeq call.  Every result records its number of
function evaluations (NFE).

One fixed step from ``t`` with step ``h`` (Hairer, Norsett & Wanner, *Solving ODEs I*,
Sec. II.1):

.. math::

    \\text{euler:}\\quad & x + h\\, v(t, x) \\\\
    \\text{midpoint:}\\quad & x + h\\, v\\bigl(t + h/2,\\; x + (h/2)\\, v(t, x)\\bigr) \\\\
    \\text{heun:}\\quad & x + (h/2)(k_1 + k_2), \\quad k_1 = v(t, x),\\; k_2 = v(t + h, x + h k_1).

:func:`step` is that map and :func:`time_grid` the grid ``t_k = t_start + k h``; the sampler
(:func:`integrate`) and the certificate (:mod:`fmq_theory.bounds.certificate`) both iterate
:func:`step` over :func:`time_grid`, so the certified trajectory is the sampled one, bit for
bit.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import torch
import torchdiffeq

from fmq_theory._util import check_positive_int
from fmq_theory.flow.checks import check_noise
from fmq_theory.flow.velocity import XT, Adapter, Velocity, placement
from fmq_theory.vocab import FIXED_STEP_SOLVERS, SOLVER_STAGES, SOLVERS

__all__ = ["ODEResult", "SolverSpec", "balanced_labels", "check_probe_settings", "integrate", "make_noise", "sample",
           "solver_spec", "step", "time_grid"]


@dataclass(frozen=True)
class SolverSpec:
    """A sampling solver and its cost.

    Attributes
    ----------
    name : str
        One of :data:`fmq_theory.vocab.SOLVERS`.
    stages : int or None
        Velocity evaluations per step (:data:`fmq_theory.vocab.SOLVER_STAGES`); ``None`` for
        the adaptive ``dopri5``, whose evaluation count is only known after the solve.

    Examples
    --------
    >>> solver_spec("heun")
    SolverSpec(name='heun', stages=2)
    >>> solver_spec("dopri5").fixed_step
    False
    """

    name: str
    stages: int | None

    @property
    def fixed_step(self) -> bool:
        """Whether the solver takes equal explicit steps (what the certificate needs)."""
        return self.stages is not None


def solver_spec(name: str, *, fixed_step: bool = False) -> SolverSpec:
    """The :class:`SolverSpec` of ``name``, validated.

    Parameters
    ----------
    name : str
        A solver name.
    fixed_step : bool
        Require a fixed-step explicit solver (:data:`fmq_theory.vocab.FIXED_STEP_SOLVERS`).

    Returns
    -------
    SolverSpec

    Raises
    ------
    ValueError
        If ``name`` is not a solver, or not a fixed-step one when ``fixed_step`` is set.

    Examples
    --------
    >>> solver_spec("euler").stages
    1
    >>> try:
    ...     solver_spec("dopri5", fixed_step=True)
    ... except ValueError as exc:
    ...     print(exc)
    solver='dopri5' is not one of ['euler', 'heun', 'midpoint'] (a fixed-step explicit solver is needed)
    """
    if name not in (FIXED_STEP_SOLVERS if fixed_step else SOLVERS):
        raise _unknown_solver(name, fixed_step=fixed_step)
    return SolverSpec(name=name, stages=SOLVER_STAGES.get(name))


def _unknown_solver(name: str, *, fixed_step: bool) -> ValueError:
    if fixed_step:
        return ValueError(f"solver={name!r} is not one of {sorted(FIXED_STEP_SOLVERS)} "
                          "(a fixed-step explicit solver is needed)")
    return ValueError(f"solver={name!r} is not one of {sorted(SOLVERS)}")


def time_grid(steps: int, *, t_start: float = 0.0, t_end: float = 1.0) -> tuple[tuple[float, float], ...]:
    """Start times and the step of ``steps`` equal steps from ``t_start`` to ``t_end``.

    Parameters
    ----------
    steps : int
        Number of steps (positive).
    t_start, t_end : float
        Interval; ``t_end < t_start`` gives negative steps (backward integration).

    Returns
    -------
    tuple of (float, float)
        ``(t_k, h)`` for ``k = 0, ..., steps - 1`` with ``h = (t_end - t_start) / steps`` and
        ``t_k = t_start + k h``: the grid of :func:`integrate` and of the certificate.

    Raises
    ------
    ValueError
        ``steps`` is not a positive int, or ``t_start`` or ``t_end`` is not a finite number.

    Examples
    --------
    >>> time_grid(4)
    ((0.0, 0.25), (0.25, 0.25), (0.5, 0.25), (0.75, 0.25))
    """
    steps = check_positive_int(steps, name="steps")
    _check_interval(t_start, t_end)
    h = (t_end - t_start) / steps
    return tuple((t_start + k * h, h) for k in range(steps))


def _check_interval(t_start, t_end) -> None:
    """``ValueError`` naming ``t_start, t_end`` unless both are finite real numbers (a NaN or
    infinite end gave a grid of NaN times, and ``dopri5`` never finished)."""
    for name, value in (("t_start", t_start), ("t_end", t_end)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name}={value!r} must be a finite number")


def step(velocity: Velocity, x: torch.Tensor, t: float, h: float, *, solver: str) -> torch.Tensor:
    """One explicit fixed step of ``dx/dt = velocity(t, x)`` (the formulas of the module notes).

    Parameters
    ----------
    velocity : callable
        ``velocity(t, x) -> dx/dt`` with ``t`` a float.
    x : torch.Tensor
        State at ``t``, shape ``(n, *event)``.
    t, h : float
        Start time and step.
    solver : {"euler", "midpoint", "heun"}

    Returns
    -------
    torch.Tensor
        State at ``t + h``.

    Examples
    --------
    >>> x = torch.ones(1, 1)
    >>> step(lambda t, x: -x, x, 0.0, 0.5, solver="euler")
    tensor([[0.5000]])
    >>> step(lambda t, x: -x, x, 0.0, 0.5, solver="midpoint")  # 1 - h + h^2/2
    tensor([[0.6250]])
    """
    if solver == "euler":
        return x + h * velocity(t, x)
    if solver == "midpoint":
        return x + h * velocity(t + h / 2, x + (h / 2) * velocity(t, x))
    if solver == "heun":
        k1 = velocity(t, x)
        k2 = velocity(t + h, x + h * k1)
        return x + (h / 2) * (k1 + k2)
    raise _unknown_solver(solver, fixed_step=True)


@dataclass(frozen=True)
class ODEResult:
    """End point of an ODE solve.

    Attributes
    ----------
    x : torch.Tensor
        State at the final time, shape ``(B, ...)`` (same device/dtype as the start).
    nfe : int
        Velocity evaluations per sample (a guided evaluation counts once).
    solver : str
        Solver name.
    steps : int
        Fixed steps taken; for ``dopri5`` the accepted steps are not tracked and this is 0.
    """

    x: torch.Tensor
    nfe: int
    solver: str
    steps: int


def integrate(velocity: Velocity, x: torch.Tensor, *, solver: str = "midpoint", steps: int = 20,
              t_start: float = 0.0, t_end: float = 1.0, atol: float = 1e-5,
              rtol: float = 1e-5) -> ODEResult:
    """Integrate ``dx/dt = velocity(t, x)`` from ``t_start`` to ``t_end``.

    Parameters
    ----------
    velocity : callable
        ``velocity(t, x) -> dx/dt`` with ``t`` a float.
    x : torch.Tensor
        Initial state ``(B, ...)``.
    solver : {"euler", "midpoint", "heun", "dopri5"}
        Fixed-step schemes iterate :func:`step` over :func:`time_grid`; ``dopri5`` is
        adaptive (torchdiffeq) with tolerances ``atol``/``rtol``.
    steps : int
        Number of fixed steps (ignored by ``dopri5``).
    t_start, t_end : float
        Integration interval; ``t_end < t_start`` integrates backwards (inversion).
    atol, rtol : float
        Absolute and relative tolerances of ``dopri5`` (finite, > 0).

    Returns
    -------
    ODEResult

    Raises
    ------
    ValueError
        Unknown ``solver``; ``steps`` not a positive int; ``t_start`` or ``t_end`` not finite;
        for ``dopri5``, ``atol`` or ``rtol`` not a finite number > 0.

    Examples
    --------
    >>> res = integrate(lambda t, x: -x, torch.ones(1, 1), solver="heun", steps=2)
    >>> res.nfe, round(float(res.x), 6)  # (1 - h + h^2/2)^2 with h = 1/2
    (4, 0.390625)
    """
    spec = solver_spec(solver)
    if spec.name == "dopri5":
        _check_interval(t_start, t_end)
        for name, tol in (("atol", atol), ("rtol", rtol)):
            if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (math.isfinite(tol) and tol > 0):
                raise ValueError(f"{name}={tol!r} must be a finite number > 0")
        count = [0]

        def f(t, state):
            count[0] += 1
            return velocity(float(t), state)

        ts = torch.tensor([t_start, t_end], dtype=torch.float32, device=x.device)
        out = torchdiffeq.odeint(f, x, ts, method="dopri5", atol=atol, rtol=rtol)
        return ODEResult(x=out[-1], nfe=count[0], solver=solver, steps=0)
    for t, h in time_grid(steps, t_start=t_start, t_end=t_end):
        x = step(velocity, x, t, h, solver=solver)
    return ODEResult(x=x, nfe=spec.stages * steps, solver=solver, steps=steps)


def make_noise(n: int, shape: tuple[int, ...], *, seed: int) -> torch.Tensor:
    """Standard normal noise ``(n, *shape)`` drawn on the CPU from ``seed`` (device-independent).

    The same ``(n, shape, seed)`` gives bit-identical noise on every machine, so full-precision
    and quantized models are sampled from exactly the same starting points.

    Raises
    ------
    ValueError
        ``n`` is not a positive int, ``shape`` not a sequence of ints ``>= 0``, or ``seed`` not an
        integer in ``[-2**63, 2**64)`` (the range of :meth:`torch.Generator.manual_seed`).
    """
    n = check_positive_int(n, name="n")
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ValueError(f"shape must be a sequence of ints >= 0, got {shape!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not -2**63 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [-2**63, 2**64), got {seed!r}")
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn((n, *shape), generator=g, dtype=torch.float32)


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """Labels ``0, 1, ..., num_classes - 1, 0, 1, ...`` of length ``n`` (int64).

    Raises
    ------
    ValueError
        ``n`` is not an int ``>= 0`` or ``num_classes`` not a positive int.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    num_classes = check_positive_int(num_classes, name="num_classes")
    return torch.arange(n, dtype=torch.long) % num_classes


@torch.no_grad()
def sample(model: Callable, noise: torch.Tensor, *, adapter: Adapter = XT(), solver: str = "midpoint",
           steps: int = 20, clip: tuple[float, float] | None = None, batch_size: int = 1000,
           autocast: bool = False) -> ODEResult:
    """Samples of ``model`` from ``noise`` (``(n, *event)``, on any device): the ODE solved in batches.

    Parameters
    ----------
    model : torch.nn.Module or callable
        The velocity model, called through ``adapter``; it runs on its own device and dtype
        (:func:`~fmq_theory.flow.velocity.placement`), to which each batch of noise is moved.
    noise : torch.Tensor, shape ``(n, *event)``
        Initial points at ``t = 0``.
    adapter : Adapter
        How to call ``model`` (its per-sample conditioning, if any, has ``n`` rows).
    solver, steps
        As for :func:`integrate`.
    clip : (float, float), optional
        Range the samples are clamped to (e.g. ``(-1, 1)`` for images); ``None`` keeps them.
    batch_size : int
        Samples per solve.
    autocast : bool
        Run the network in bfloat16 on CUDA.

    Returns
    -------
    ODEResult
        ``x`` on the CPU in float32; ``nfe`` the largest per-batch NFE.

    Raises
    ------
    ValueError
        ``noise`` is not a floating tensor ``(n >= 1, *event)`` of finite entries, ``clip`` not
        ``None`` or a pair ``(low, high)`` with ``low < high``, ``batch_size`` not a positive int,
        or the conditioning of ``adapter`` does not have ``n`` rows.

    Examples
    --------
    >>> res = sample(lambda x, t: -x, torch.ones(3, 2), solver="euler", steps=2)
    >>> res.x[0], res.nfe
    (tensor([0.2500, 0.2500]), 2)
    """
    check_noise(noise)
    if clip is not None and not (isinstance(clip, (tuple, list)) and len(clip) == 2 and clip[0] < clip[1]):
        raise ValueError(f"clip={clip!r} must be None or a pair (low, high) with low < high")
    adapter.check(noise.shape[0])
    batch_size = check_positive_int(batch_size, name="batch_size")
    device, dtype = placement(model, like=noise)
    if isinstance(model, torch.nn.Module):
        model.eval()
    outs, nfe, steps_done = [], 0, 0
    for start in range(0, noise.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        v = adapter.bind(model, rows=rows, device=device)
        if autocast and device.type == "cuda":
            v = _bfloat16(v)
        res = integrate(v, noise[rows].to(device=device, dtype=dtype), solver=solver, steps=steps)
        x = res.x if clip is None else res.x.clamp(*clip)
        outs.append(x.float().cpu())
        nfe, steps_done = max(nfe, res.nfe), res.steps
    return ODEResult(x=torch.cat(outs), nfe=nfe, solver=solver, steps=steps_done)


def check_probe_settings(*, solver: str | None = None, **counts) -> None:
    """``ValueError`` naming ``solver`` unless it is a fixed-step solver (when given), or the first of
    ``counts`` (``steps``, ``projections``, ``batch_size`` ...) that is not a positive int.

    The sensitivity pass, the first-order and whole-form probes and the bounds integrate with
    these settings; each refuses them here before any work.

    Examples
    --------
    >>> try:
    ...     check_probe_settings(solver="euler", steps=0)
    ... except ValueError as exc:
    ...     print(exc)
    steps must be a positive int, got 0
    """
    if solver is not None:
        solver_spec(solver, fixed_step=True)
    for name, value in counts.items():
        check_positive_int(value, name=name)


def _bfloat16(v: Velocity) -> Velocity:
    def run(t, x):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return v(t, x).float()

    return run
