"""Conditional-OT probability path and ODE sampling for flow-matching models.

Path (Lipman et al. 2023; Liu et al. 2023, rectified flow), with ``x0 ~ N(0, I)`` noise and
``x1`` data:

.. math::

    x_t = (1 - t)\\, x_0 + t\\, x_1, \\qquad u_t(x_t \\mid x_0, x_1) = x_1 - x_0,

and the model is trained by regressing ``v_theta(x_t, t)`` on ``x1 - x0``. Sampling integrates
``dx/dt = v_theta(x, t)`` from ``t = 0`` (noise) to ``t = 1`` (data); inversion integrates
backwards.

Solvers: fixed-step ``euler`` (1 evaluation per step), ``midpoint`` and ``heun`` (2 per
step), and adaptive ``dopri5`` through ``torchdiffeq`` (Chen et al. 2018), the integrator that
facebookresearch's ``flow_matching.solver.ODESolver`` itself wraps. We use torchdiffeq
directly rather than the ``flow-matching`` package: it installs cleanly with torch 2.13, but
its licence is CC-BY-NC (this package is MIT) and its ODESolver adds nothing beyond the
torchdiffeq call. Every result records its number of function evaluations (NFE).

Classifier-free guidance (Ho & Salimans 2022) in the flow-matching example's convention:
``v = (1 + w) v(x, t, y) - w v(x, t, null)`` for guidance scale ``w`` (``w = 0``: plain
conditional field, one evaluation per NFE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["SOLVERS", "PathSample", "ODEResult", "cond_ot_path", "flow_matching_loss",
           "integrate", "make_noise", "balanced_labels", "guided_velocity", "sample"]

#: Fixed-step solvers with their evaluations per step; ``dopri5`` is adaptive.
SOLVERS = {"euler": 1, "midpoint": 2, "heun": 2, "dopri5": None}


@dataclass(frozen=True)
class PathSample:
    """A draw from the conditional-OT path.

    Attributes
    ----------
    t : torch.Tensor
        Times, shape ``(B,)``.
    x_t : torch.Tensor
        Points on the path, shape ``(B, C, H, W)``.
    target : torch.Tensor
        Conditional velocity ``x1 - x0``, shape ``(B, C, H, W)``.
    """

    t: torch.Tensor
    x_t: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class ODEResult:
    """End point of an ODE solve.

    Attributes
    ----------
    x : torch.Tensor
        State at the final time, shape ``(B, C, H, W)`` (same device/dtype as the start).
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


def cond_ot_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> PathSample:
    """Sample ``x_t = (1 - t) x0 + t x1`` with target velocity ``x1 - x0``."""
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have one shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if t.shape != (x0.shape[0],):
        raise ValueError(f"t must have shape ({x0.shape[0]},), got {tuple(t.shape)}")
    tb = t.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return PathSample(t=t, x_t=(1 - tb) * x0 + tb * x1, target=x1 - x0)


def flow_matching_loss(model: Callable, x1: torch.Tensor, *, y: torch.Tensor | None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Conditional flow-matching loss ``E |v(x_t, t, y) - (x1 - x0)|^2`` (mean over pixels)."""
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    t = torch.rand(x1.shape[0], generator=generator, device=x1.device, dtype=x1.dtype)
    ps = cond_ot_path(x0, x1, t)
    v = model(ps.x_t, ps.t, y)
    return torch.mean((v.float() - ps.target.float()) ** 2)


def make_noise(n: int, shape: tuple[int, ...], *, seed: int) -> torch.Tensor:
    """Standard normal noise ``(n, *shape)`` drawn on the CPU from ``seed`` (device-independent).

    The same ``(n, shape, seed)`` gives bit-identical noise on every machine, so full-precision
    and quantized models are sampled from exactly the same starting points.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn((n, *shape), generator=g, dtype=torch.float32)


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """Labels ``0, 1, ..., num_classes - 1, 0, 1, ...`` of length ``n`` (int64)."""
    return torch.arange(n, dtype=torch.long) % num_classes


def guided_velocity(model: Callable, y: torch.Tensor | None, cfg_scale: float) -> Callable:
    """Return ``f(t, x)`` evaluating the (guided) velocity for labels ``y``.

    ``cfg_scale = 0`` evaluates ``model(x, t, y)`` once; otherwise the conditional and the
    null-label branch are evaluated in one doubled batch and combined as
    ``(1 + w) v_cond - w v_null``.
    """
    if cfg_scale < 0:
        raise ValueError(f"cfg_scale must be >= 0, got {cfg_scale!r}")

    def f(t, x):
        tt = torch.as_tensor(t, device=x.device, dtype=torch.float32).expand(x.shape[0])
        if cfg_scale == 0.0 or y is None:
            return model(x, tt, y)
        null = torch.full_like(y, model.config.num_classes)
        v = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, null]))
        vc, vu = v.chunk(2)
        return (1 + cfg_scale) * vc - cfg_scale * vu

    return f


def integrate(velocity: Callable, x: torch.Tensor, *, solver: str = "midpoint", steps: int = 20,
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
        Fixed-step schemes use ``steps`` equal steps; ``dopri5`` is adaptive (torchdiffeq)
        with tolerances ``atol``/``rtol``.
    steps : int
        Number of fixed steps (ignored by ``dopri5``).
    t_start, t_end : float
        Integration interval; ``t_end < t_start`` integrates backwards (inversion).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {solver!r}")
    if SOLVERS[solver] is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if solver == "dopri5":
        import torchdiffeq

        count = [0]

        def f(t, state):
            count[0] += 1
            return velocity(float(t), state)

        ts = torch.tensor([t_start, t_end], dtype=torch.float32, device=x.device)
        out = torchdiffeq.odeint(f, x, ts, method="dopri5", atol=atol, rtol=rtol)
        return ODEResult(x=out[-1], nfe=count[0], solver=solver, steps=0)
    h = (t_end - t_start) / steps
    for i in range(steps):
        t = t_start + i * h
        if solver == "euler":
            x = x + h * velocity(t, x)
        elif solver == "midpoint":
            x = x + h * velocity(t + h / 2, x + (h / 2) * velocity(t, x))
        else:  # heun
            k1 = velocity(t, x)
            k2 = velocity(t + h, x + h * k1)
            x = x + (h / 2) * (k1 + k2)
    return ODEResult(x=x, nfe=SOLVERS[solver] * steps, solver=solver, steps=steps)


@torch.no_grad()
def sample(model: torch.nn.Module, noise: torch.Tensor, *, labels: torch.Tensor | None,
           solver: str = "midpoint", steps: int = 20, cfg_scale: float = 0.0,
           batch_size: int = 1000, device: str | torch.device = "cpu",
           autocast: bool = False) -> ODEResult:
    """Generate images from ``noise`` (``(N, C, H, W)``, on any device) by solving the ODE.

    Returns an :class:`ODEResult` whose ``x`` is on the CPU, float32, clamped to [-1, 1]
    (pixel value ``(x + 1) * 127.5``). ``nfe`` is the largest per-batch NFE (equal for every
    batch with fixed-step solvers). ``autocast`` runs the network in bfloat16 on CUDA.
    """
    if labels is not None and labels.shape != (noise.shape[0],):
        raise ValueError(f"labels must have shape ({noise.shape[0]},), got {tuple(labels.shape)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    device = torch.device(device)
    model.eval()
    outs, nfe, steps_done = [], 0, 0
    for start in range(0, noise.shape[0], batch_size):
        x0 = noise[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device) if labels is not None else None
        f = guided_velocity(model, y, cfg_scale)
        if autocast and device.type == "cuda":
            inner = f

            def f(t, x, inner=inner):
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return inner(t, x).float()

        res = integrate(f, x0, solver=solver, steps=steps)
        outs.append(res.x.clamp(-1, 1).float().cpu())
        nfe, steps_done = max(nfe, res.nfe), res.steps
    return ODEResult(x=torch.cat(outs), nfe=nfe, solver=solver, steps=steps_done)
