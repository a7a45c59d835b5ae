"""The noise check shared by everything that integrates a model from Gaussian noise.

The sampler (:func:`fmq_theory.flow.solvers.sample`), the sensitivity pass
(:mod:`fmq_theory.plan.sensitivity`), the bound constants and certificates
(:mod:`fmq_theory.bounds`) take the same noise; each refuses it here, naming the argument, before
any work.  The probe settings that go with it are checked by
:func:`fmq_theory.flow.solvers.check_probe_settings`.

Examples
--------
>>> import torch
>>> check_noise(torch.zeros(2, 3))
>>> try:
...     check_noise(torch.zeros(3))
... except ValueError as exc:
...     print(exc)
noise must be a floating tensor of shape (n, *event), got shape (3,)
"""

from __future__ import annotations

import torch

__all__ = ["check_noise"]


def check_noise(noise) -> None:
    """``ValueError`` naming ``noise`` unless it is a floating tensor of shape ``(n, *event)`` with
    ``n >= 1`` samples, every entry finite."""
    if not torch.is_tensor(noise) or noise.ndim < 2 or not noise.is_floating_point():
        got = (type(noise).__name__ if not torch.is_tensor(noise) else f"shape {tuple(noise.shape)}"
               + ("" if noise.is_floating_point() else f", dtype {noise.dtype}"))
        raise ValueError(f"noise must be a floating tensor of shape (n, *event), got {got}")
    if noise.shape[0] == 0 or noise.numel() == 0:
        raise ValueError(f"noise of shape {tuple(noise.shape)} holds no samples")
    if not bool(torch.isfinite(noise).all()):
        raise ValueError("noise holds NaN or infinite entries")

