"""Spectral norms of one-step solver maps by batched Lanczos on ``J^T J``.

For an explicit one-step ODE solver the step is a map ``Phi(x) = x + h * incr(x)``; its
Jacobian ``D Phi(z)`` is available through forward-mode (JVP) and reverse-mode (VJP)
automatic differentiation without ever forming a matrix.  The step gain that enters the
discrete error recursion of :mod:`fmq_theory.bounds.certificate` is

.. math::

    g(z) = \\|D\\Phi(z)\\|_2 = \\sqrt{\\lambda_{\\max}(D\\Phi(z)^\\top D\\Phi(z))},

computed here per sample of a batch (the maps act sample-wise, so the batch Jacobian is block
diagonal) by a few Lanczos iterations with full re-orthogonalisation on the symmetric
positive semi-definite operator ``u -> J^T (J u)`` (one JVP and one VJP per iteration).

What this is and is not
-----------------------
A Ritz value from a Krylov space is a *lower* estimate of the largest eigenvalue
(Courant-Fischer); it converges from below.  The returned value is therefore an *estimate*
of the true spectral norm, accompanied by its Lanczos residual
``|A y - theta y| = beta_k |s_k|`` (Parlett, *The Symmetric Eigenvalue Problem*, 1998,
Ch. 13): some eigenvalue of ``A`` lies within the residual of ``theta``, so a small
relative residual says the Ritz pair is an eigenpair to that accuracy (it does not prove
that it is the largest one).  Warm starts (passing the previous Ritz vector) make a few
iterations per call enough along a trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from fmq_theory._util import check_positive_int

__all__ = ["SpectralNormEstimate", "jacobian_spectral_norm"]


@dataclass(frozen=True)
class SpectralNormEstimate:
    """Per-sample Lanczos estimate of ``||D Phi(z)||_2``.

    Attributes
    ----------
    norm : torch.Tensor, shape (n,)
        ``sqrt(theta_max)``, the largest Ritz value of ``J^T J`` (an estimate from below).
    residual : torch.Tensor, shape (n,)
        Relative Lanczos residual ``|A y - theta y| / theta`` of the top Ritz pair.
    vector : torch.Tensor, shape ``(n, *event_shape)``
        Unit top Ritz vector per sample (use it to warm-start the next call).
    iterations : int
        Krylov dimension used.
    """

    norm: torch.Tensor
    residual: torch.Tensor
    vector: torch.Tensor
    iterations: int


def _batch_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(1)


def _unit(v: torch.Tensor) -> torch.Tensor:
    norm = v.flatten(1).norm(dim=1).clamp_min(torch.finfo(v.dtype).tiny)
    return v / norm.view(-1, *([1] * (v.dim() - 1)))


def _orthogonalize(w: torch.Tensor, basis: list) -> torch.Tensor:
    """Remove the components along an orthonormal basis (twice: "twice is enough")."""
    for _ in range(2):
        for q in basis:
            w = w - _batch_dot(w, q).view(-1, *([1] * (w.dim() - 1))) * q
    return w


def jacobian_spectral_norm(
    step_map: Callable[[torch.Tensor], torch.Tensor],
    point: torch.Tensor,
    *,
    iterations: int = 6,
    start: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> SpectralNormEstimate:
    """Estimate ``||D step_map(point_i)||_2`` for every sample ``i`` of a batch.

    Parameters
    ----------
    step_map : callable
        Sample-wise map ``(n, *event) -> (n, *event)`` (output ``i`` depends on input ``i``
        only), differentiable by :func:`torch.func.jvp` and :func:`torch.func.vjp`.
    point : torch.Tensor, shape ``(n, *event)``
        Where the Jacobian is taken.
    iterations : int, default 6
        Lanczos steps ``k`` (Krylov dimension); at most the event size.
    start : torch.Tensor, shape ``(n, *event)``, optional
        Starting vectors (e.g. the previous call's :attr:`SpectralNormEstimate.vector`);
        random Gaussian vectors when omitted.
    generator : torch.Generator, optional
        Source of the random start.

    Returns
    -------
    SpectralNormEstimate

    Raises
    ------
    ValueError
        If ``iterations`` is not a positive integer, ``point`` is not a floating tensor
        ``(n >= 1, ...)`` of finite entries, ``start`` has the wrong shape or a non-finite entry,
        or the Jacobian products of ``step_map`` at ``point`` are not finite.
    """
    iterations = check_positive_int(iterations, name="iterations")
    if point.ndim < 1 or point.shape[0] == 0 or not point.is_floating_point():
        raise ValueError(f"point must be a floating tensor of shape (n >= 1, ...), got {tuple(point.shape)} "
                         f"{point.dtype}")
    if not bool(torch.isfinite(point).all()):
        raise ValueError("point holds NaN or infinite entries")
    if start is not None and not bool(torch.isfinite(start).all()):
        raise ValueError("start holds NaN or infinite entries")
    n = point.shape[0]
    event = point[0].numel()
    k = min(iterations, event)
    if start is None:
        start = torch.randn(point.shape, generator=generator, dtype=point.dtype).to(point.device)
    elif start.shape != point.shape:
        raise ValueError(f"start has shape {tuple(start.shape)}, expected {tuple(point.shape)}")
    point = point.detach()
    _, vjp_fn = torch.func.vjp(step_map, point)

    def apply(v: torch.Tensor) -> torch.Tensor:
        _, jv = torch.func.jvp(step_map, (point,), (v,))
        (jtjv,) = vjp_fn(jv.detach())
        return jtjv.detach()

    basis = [_unit(start.detach())]
    alphas, betas = [], []
    tol = torch.finfo(point.dtype).eps ** 0.5
    for j in range(k):
        w = apply(basis[j])
        scale = w.flatten(1).norm(dim=1)
        alpha = _batch_dot(w, basis[j])
        alphas.append(alpha)
        w = _orthogonalize(w, basis)
        beta = w.flatten(1).norm(dim=1)
        # Breakdown: the Krylov space of this sample is invariant (e.g. A = c I).  Its
        # coupling is exactly zero; continue with a fresh random direction orthogonal to
        # the basis, so the basis stays orthonormal and every Ritz value stays <= lambda_max.
        broken = beta <= tol * scale
        beta = torch.where(broken, torch.zeros_like(beta), beta)
        betas.append(beta)
        if j + 1 < k:
            if bool(broken.any()):
                fresh = _orthogonalize(torch.randn(w.shape, generator=generator, dtype=w.dtype).to(w.device), basis)
                w = torch.where(broken.view(-1, *([1] * (w.dim() - 1))), fresh, w)
            basis.append(_unit(w))
    t = torch.diag_embed(torch.stack(alphas, 1).double())
    if k > 1:
        off = torch.stack(betas[:-1], 1).double()
        t = t + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("step_map: its Jacobian products at point are not finite (NaN or overflow)")
    evals, evecs = torch.linalg.eigh(t)
    theta = evals[:, -1].clamp_min(0.0)
    top = evecs[:, :, -1]  # (n, k)
    resid = betas[-1].double().abs() * top[:, -1].abs()
    q = torch.stack(basis, 1)  # (n, k, *event)
    ritz = (top.to(q.dtype).view(n, k, *([1] * (q.dim() - 2))) * q).sum(1)
    rel = resid / theta.clamp_min(torch.finfo(torch.float64).tiny)
    return SpectralNormEstimate(
        norm=theta.sqrt().to(point.dtype),
        residual=rel.to(point.dtype),
        vector=_unit(ritz),
        iterations=k,
    )
