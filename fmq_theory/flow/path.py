"""The conditional-OT probability path and the flow-matching loss.

Path (Lipman et al. 2023; Liu et al. 2023, rectified flow), with ``x0 ~ N(0, I)`` noise and
``x1`` data:

.. math::

    x_t = (1 - t)\\, x_0 + t\\, x_1, \\qquad u_t(x_t \\mid x_0, x_1) = x_1 - x_0,

and the model is trained by regressing ``v_theta(x_t, t)`` on ``x1 - x0``; sampling then
integrates ``dx/dt = v_theta(x, t)`` (:mod:`fmq_theory.flow.solvers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["PathSample", "cond_ot_path", "flow_matching_loss"]


@dataclass(frozen=True)
class PathSample:
    """A draw from the conditional-OT path.

    Attributes
    ----------
    t : torch.Tensor
        Times, shape ``(B,)``.
    x_t : torch.Tensor
        Points on the path, shape ``(B, ...)``.
    target : torch.Tensor
        Conditional velocity ``x1 - x0``, shape ``(B, ...)``.
    """

    t: torch.Tensor
    x_t: torch.Tensor
    target: torch.Tensor


def cond_ot_path(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> PathSample:
    """Sample ``x_t = (1 - t) x0 + t x1`` with target velocity ``x1 - x0``.

    Raises
    ------
    ValueError
        ``x0`` and ``x1`` differ in shape or have no batch axis, or ``t`` is not of shape ``(B,)``.

    Examples
    --------
    >>> ps = cond_ot_path(torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([0.25]))
    >>> ps.x_t, ps.target
    (tensor([[0.2500, 0.2500]]), tensor([[1., 1.]]))
    """
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have one shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
    if x0.ndim == 0:
        raise ValueError("x0 and x1 must have a batch axis (B, ...), got 0-d tensors")
    if t.shape != (x0.shape[0],):
        raise ValueError(f"t must have shape ({x0.shape[0]},), got {tuple(t.shape)}")
    tb = t.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return PathSample(t=t, x_t=(1 - tb) * x0 + tb * x1, target=x1 - x0)


def flow_matching_loss(model: Callable, x1: torch.Tensor, *, y: torch.Tensor | None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Conditional flow-matching loss ``E |v(x_t, t, y) - (x1 - x0)|^2`` (mean over entries).

    ``model`` is class-conditional, ``model(x, t, y)`` (``y = None`` for an unconditional one).

    Raises
    ------
    ValueError
        ``x1`` has no batch axis or no samples (the mean of an empty batch is NaN).
    """
    if x1.ndim == 0 or x1.numel() == 0:
        raise ValueError(f"x1 must be a non-empty batch (B >= 1, ...), got shape {tuple(x1.shape)}")
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    t = torch.rand(x1.shape[0], generator=generator, device=x1.device, dtype=x1.dtype)
    ps = cond_ot_path(x0, x1, t)
    v = model(ps.x_t, ps.t, y)
    return torch.mean((v.float() - ps.target.float()) ** 2)
