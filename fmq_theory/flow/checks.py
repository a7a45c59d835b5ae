"""Argument checks shared by everything that integrates a model from Gaussian noise.

The sensitivity pass (:mod:`fmq_theory.plan.sensitivity`), the bound constants and
certificates (:mod:`fmq_theory.bounds`) take the same noise and the same probe settings; each
refuses them here, naming the argument, before any work.

Examples
--------
>>> import torch
>>> check_noise(torch.zeros(2, 3))
>>> try:
...     check_probe_settings(solver="euler", steps=0)
... except ValueError as exc:
...     print(exc)
steps must be a positive int, got 0
"""

from __future__ import annotations

import torch

from fmq_theory._util import check_positive_int
from fmq_theory.flow.solvers import solver_spec

__all__ = ["check_noise", "check_probe_settings"]


def check_noise(noise) -> None:
    """``ValueError`` naming ``noise`` unless it is a floating tensor of shape ``(n, *event)`` with
    ``n >= 1`` samples, every entry finite."""
    if not torch.is_tensor(noise) or noise.ndim < 2 or not noise.is_floating_point():
        raise ValueError("noise must be a floating tensor of shape (n, *event)")
    if noise.shape[0] == 0 or noise.numel() == 0:
        raise ValueError(f"noise of shape {tuple(noise.shape)} holds no samples")
    if not bool(torch.isfinite(noise).all()):
        raise ValueError("noise holds NaN or infinite entries")


def check_probe_settings(*, solver: str | None = None, **counts) -> None:
    """``ValueError`` naming ``solver`` unless it is a fixed-step solver (when given), or the first of
    ``counts`` (``steps``, ``projections``, ``batch_size`` ...) that is not a positive int."""
    if solver is not None:
        solver_spec(solver, fixed_step=True)
    for name, value in counts.items():
        check_positive_int(value, name=name)
