"""Certified and estimated bounds on the sample and FID change caused by weight quantization.

Both models are run from the same initial noise (and labels) with the deployed fixed-step
solver, which couples the two generated laws sample by sample.  Three results, named for what
they are (``proofs/certificate.md`` and ``proofs/law_w2.md`` hold the proofs):

Certified law-level W2 (:func:`certify_w2`) — no Jacobian, no estimated input
---------------------------------------------------------------------------------
With ``x_i`` and ``y_i`` the clipped full-precision and quantized samples of pair ``i`` in a
box of side ``w`` in ``d`` coordinates, ``D_i = |y_i - x_i|^2`` lies in ``[0, R]``,
``R = d w^2`` (the squared diameter of the box), exactly.  The pairing is a coupling, so

.. math::

    W_2(P_q, P_{fp})^2 \\le E\\,|y - x|^2 = E D,

and Hoeffding's (1963, Thm. 1) Chernoff bound for independent variables in ``[0, R]`` gives
the upper confidence bound ``U = R sup{m : n kl(D_bar / R || m) <= ln(1/delta)}`` with
``P(E D > U) <= delta`` (:func:`hoeffding_kl_upper`), so ``W2 <= sqrt(U)`` at confidence
``1 - delta``.  The pairs need only be independent (the balanced labels of the harness are
fixed, the noise i.i.d.); the law is the label mixture with the run's label frequencies.  No
valid bound from ``n`` pairs can be below ``sqrt(R (1 - delta^(1/n)))`` when every
observed distance is 0 (:attr:`W2Certificate.floor`), and :func:`hoeffding_kl_upper` attains
that value there: the concentration term, not the inequality, limits the bound at high bits.

Estimated trajectory recursion (:func:`estimate_w2_trajectory`) — an explanation, not a bound
---------------------------------------------------------------------------------------------
Write ``Phi_fp`` and ``Phi_q`` for the one-step maps of the full-precision and quantized fields,
``x_k`` for the full-precision trajectory and ``y_k`` for the quantized one, ``e_k = y_k - x_k``.
Then exactly

.. math::

    e_{k+1} = \\bigl[\\Phi_q(y_k) - \\Phi_q(x_k)\\bigr] + \\delta_k, \\qquad
    \\delta_k = \\Phi_q(x_k) - \\Phi_{fp}(x_k),

and by the mean-value theorem on the segment ``z_s = x_k + s e_k``

.. math::

    |e_{k+1}| \\le g_k |e_k| + |\\delta_k|, \\qquad
    g_k = \\sup_{s \\in [0, 1]} \\|D\\Phi_q(z_s)\\|_2,

so ``c_0 = 0``, ``c_{k+1} = g_k c_k + |delta_k|`` would give ``|e_N| <= c_N`` per sample with
the true gains.  For Euler ``D Phi = I + h J`` and ``delta_k = h (v_q - v_fp)(x_k)``; for
midpoint and Heun the Jacobian of the one-step map is the product of the stage maps and
``delta_k`` contains the stage terms exactly (Hairer, Norsett & Wanner, *Solving ODEs I*,
Sec. I.10 and II.3; Soederlind, BIT 46 (2006)).  The defects ``|delta_k|`` are exact, but the
gains are *estimated*: each is a Lanczos Ritz value (a lower estimate of the spectral norm,
:mod:`fmq_theory.bounds.spectral`) at a few sampled points ``s`` of the segment.  ``c_N`` and
the law-level number built from it are therefore estimates, reported as
``estimated_w2_trajectory``; what they explain is which steps make the error.

FID step (:func:`certify_fid`) — certified for the empirical FIDs
-----------------------------------------------------------------
``sqrt(FD)`` between Gaussians is the 2-Wasserstein metric between them, so
``|sqrt(FID_q) - sqrt(FID_fp)| <= sqrt(FD(N_q, N_fp))`` for the Gaussian fits of the two
feature sets (triangle inequality both ways), and by Gelbrich's bound applied to the two
empirical feature laws and their paired coupling
``FD(N_q, N_fp) <= n/(n-1) * mean_i |phi(y_i) - phi(x_i)|^2`` (the factor ``n/(n-1)`` because
FID uses the unbiased covariance).  Both hold exactly for the empirical FIDs computed from
the same samples: no Lipschitz constant of the feature network and no concentration term.
The certified change of ``sqrt(FID)`` is reported next to the certified ``dFID`` bound
``(sqrt(FID_fp) + sqrt(FD))^2 - FID_fp``, whose cross term ``2 sqrt(FID_fp FD)`` makes its
ratio to the measured change grow without limit as the change goes to 0.  Pairs whose
classifier labels differ (mode switches) are counted separately: they inflate the paired
distance while moving the law little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from tqdm.auto import tqdm

from fmq_theory._util import check_positive_int
from fmq_theory.bounds.spectral import jacobian_spectral_norm
from fmq_theory.flow.checks import check_noise
from fmq_theory.flow.frechet import frechet_distance, gaussian_fit
from fmq_theory.flow.solvers import check_probe_settings, solver_spec, step, time_grid
from fmq_theory.flow.velocity import XT, Adapter, Velocity, placement

__all__ = [
    "FIDCertificate",
    "TrajectoryEstimate",
    "W2Certificate",
    "certify_fid",
    "certify_w2",
    "empirical_bernstein_upper",
    "estimate_w2_trajectory",
    "hoeffding_kl_upper",
    "one_step_map",
]


def one_step_map(velocity: Velocity, t: float, h: float, *, solver: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``x -> Phi(x)``, one step of the deployed solver from ``t`` with step ``h``.

    ``Phi`` is :func:`fmq_theory.flow.solvers.step`, the step that
    :func:`fmq_theory.flow.solvers.integrate` iterates, so iterating these maps over
    :func:`fmq_theory.flow.solvers.time_grid` reproduces its trajectories bit for bit.

    Parameters
    ----------
    velocity : callable
        ``velocity(t, x) -> dx/dt`` (``t`` a float, ``x`` of shape ``(n, *event)``).
    t, h : float
        Start time and step.
    solver : {"euler", "midpoint", "heun"}

    Returns
    -------
    callable
        ``Phi(x) = x + h v(t, x)`` (Euler), ``x + h v(t + h/2, x + h/2 v(t, x))``
        (midpoint) or ``x + h/2 (k1 + k2)``, ``k2 = v(t + h, x + h k1)`` (Heun).

    Examples
    --------
    >>> phi = one_step_map(lambda t, x: -x, 0.0, 0.5, solver="heun")
    >>> phi(torch.ones(1, 1))  # 1 - h + h^2/2
    tensor([[0.6250]])
    """
    solver_spec(solver, fixed_step=True)

    def phi(x):
        return step(velocity, x, t, h, solver=solver)

    return phi


def _bounded_draws(values, *, upper: float, delta: float, min_size: int) -> np.ndarray:
    """``values`` as a float64 1-D array of at least ``min_size`` finite draws in ``[0, upper]``
    (the common input check of the concentration bounds below)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < min_size:
        raise ValueError(f"values must be 1-D with at least {min_size} entries, got shape {values.shape}")
    if not (math.isfinite(upper) and upper > 0):
        raise ValueError(f"upper={upper!r} must be finite and > 0")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta={delta!r} must lie in (0, 1)")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > upper * (1 + 1e-12):
        raise ValueError(f"values must lie in [0, upper={upper}], got range [{values.min()}, {values.max()}]")
    return values


def empirical_bernstein_upper(values: np.ndarray, *, upper: float, delta: float) -> float:
    """Upper confidence bound on ``E[X]`` from i.i.d. draws of ``X`` in ``[0, upper]``.

    Maurer & Pontil (2009, Thm. 4), for ``Z = X / upper`` in ``[0, 1]``: with probability at
    least ``1 - delta``,

    .. math::

        E Z \\le \\bar Z_n + \\sqrt{\\frac{2 V_n \\ln(2/\\delta)}{n}}
               + \\frac{7 \\ln(2/\\delta)}{3 (n - 1)},

    ``V_n`` the unbiased sample variance.

    Parameters
    ----------
    values : numpy.ndarray, shape (n,)
        Draws, each in ``[0, upper]``; ``n >= 2``.
    upper : float
        Known upper end of the range.
    delta : float
        Failure probability in ``(0, 1)``.

    Returns
    -------
    float
        The bound on ``E[X]`` (in the units of ``values``).

    Examples
    --------
    >>> round(empirical_bernstein_upper(np.full(100, 0.5), upper=1.0, delta=0.05), 4)
    0.5869
    """
    values = _bounded_draws(values, upper=upper, delta=delta, min_size=2)
    z = values / upper
    n = z.size
    log_term = math.log(2.0 / delta)
    bound = z.mean() + math.sqrt(2.0 * z.var(ddof=1) * log_term / n) + 7.0 * log_term / (3.0 * (n - 1))
    return float(upper * bound)


def _kl_bernoulli(a: float, b: float) -> float:
    """``kl(a || b) = a ln(a/b) + (1-a) ln((1-a)/(1-b))`` for ``a in [0, 1]``, ``b in (0, 1)``."""
    first = 0.0 if a == 0.0 else a * math.log(a / b)
    second = 0.0 if a == 1.0 else (1.0 - a) * (math.log1p(-a) - math.log1p(-b))
    return first + second


def hoeffding_kl_upper(values: np.ndarray, *, upper: float, delta: float) -> float:
    """Upper confidence bound on the mean of independent draws in ``[0, upper]`` (Chernoff-Hoeffding).

    Hoeffding (1963, Thm. 1), applied to ``1 - Z_i`` with ``Z_i = X_i / upper`` independent in
    ``[0, 1]`` (not necessarily identically distributed) and ``mu`` the mean of their means:
    ``P(Z_bar <= mu - t) <= exp(-n kl(mu - t || mu))``.  Hence with probability at least
    ``1 - delta``

    .. math::

        \\mu \\le U = \\sup\\{m \\in [\\bar Z_n, 1] : n\\,\\mathrm{kl}(\\bar Z_n \\,\\|\\, m)
                     \\le \\ln(1/\\delta)\\},

    ``kl`` the Bernoulli relative entropy (proof: ``proofs/law_w2.md``).  ``U`` is found by
    bisection to a relative width of ``1e-12`` and the upper end of the bracket is returned,
    so the floating-point answer is never below the exact one.  When every draw is 0,
    ``U = 1 - delta^(1/n)``: the least value any bound valid for all laws on ``[0, 1]`` can take.

    Parameters
    ----------
    values : numpy.ndarray, shape (n,)
        Draws, each in ``[0, upper]``; ``n >= 1``.
    upper : float
        Known upper end of the range.
    delta : float
        Failure probability in ``(0, 1)``.

    Returns
    -------
    float
        The bound on the mean (in the units of ``values``), at most ``upper``.

    Examples
    --------
    >>> round(hoeffding_kl_upper(np.zeros(100), upper=1.0, delta=0.05), 6)  # 1 - 0.05 ** (1 / 100)
    0.029513
    >>> round(hoeffding_kl_upper(np.full(100, 0.5), upper=1.0, delta=0.05), 4)
    0.6206
    """
    values = _bounded_draws(values, upper=upper, delta=delta, min_size=1)
    n = values.size
    mean = min(float(values.mean()) / upper, 1.0)
    level = math.log(1.0 / delta) / n
    if mean >= 1.0 or _kl_bernoulli(mean, math.nextafter(1.0, 0.0)) <= level:
        return float(upper)
    lo, hi = mean, 1.0  # kl(mean || m) increases in m on [mean, 1): lo inside the set, hi outside
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        if _kl_bernoulli(mean, mid) <= level:
            lo = mid
        else:
            hi = mid
    return float(upper * hi)


@dataclass(frozen=True)
class W2Certificate:
    """Certified upper bound on ``W2`` between the laws of two coupled, clipped samplers.

    Attributes
    ----------
    n : int
        Pairs.
    delta : float
        Failure probability: ``W2(P_q, P_fp) <= bound`` with probability at least ``1 - delta``.
    range_sq : float
        ``R = d * width**2``, the squared diameter of the clipping box (every ``D_i <= R``).
    measured : float
        ``sqrt(mean_i D_i)``, ``D_i = |y_i - x_i|^2`` of the clipped pairs (the paired transport
        cost of the two sample sets).
    bound : float
        ``sqrt`` of :func:`hoeffding_kl_upper` of the ``D_i`` on ``[0, R]`` at ``delta``
        (certified).
    floor : float
        ``sqrt(R (1 - delta^(1/n)))``: the least value any bound valid for every coupling on the
        box can report from ``n`` pairs (reached when every ``D_i = 0``).
    bernstein : float
        ``sqrt`` of :func:`empirical_bernstein_upper` of the ``D_i`` at the same ``delta``
        (Maurer & Pontil 2009; also certified, needs i.i.d. pairs; for comparison).
    """

    n: int
    delta: float
    range_sq: float
    measured: float
    bound: float
    floor: float
    bernstein: float


def certify_w2(samples_fp, samples_q, *, low: float = -1.0, high: float = 1.0, delta: float = 0.05) -> W2Certificate:
    """Certify ``W2(P_q, P_fp)`` from paired samples of both models (same noise), no Jacobians.

    Both sample sets are clipped to ``[low, high]`` per coordinate (the deployed images), and
    ``W2(P_q, P_fp)^2 <= E|y - x|^2`` for the coupling the shared noise defines; the mean is
    bounded by :func:`hoeffding_kl_upper` with the exact range ``R = d (high - low)^2``.
    ``P_q`` and ``P_fp`` are the laws of the clipped samples when noise (and labels) are drawn
    as for these pairs (independent pairs; fixed labels: the mixture with their frequencies).

    Parameters
    ----------
    samples_fp, samples_q : array_like or torch.Tensor, shape ``(n, *event)``
        Row ``i`` of both from the same noise and labels; unclipped or clipped; ``n >= 2``.
    low, high : float
        Clipping range, ``low < high``.
    delta : float
        Failure probability in ``(0, 1)`` (confidence ``1 - delta``).

    Returns
    -------
    W2Certificate

    Raises
    ------
    ValueError
        Unpaired, complex, non-finite or coordinate-free samples; ``low``/``high`` not finite with
        ``low < high``, or so far apart that ``d (high - low)^2`` overflows float64; ``delta``
        outside ``(0, 1)``.

    Examples
    --------
    Two samplers that differ by a shift of 0.01 in each of 4 coordinates: ``W2 = 0.02``.

    >>> x = torch.rand(5000, 4, generator=torch.Generator().manual_seed(0)) * 1.9 - 0.95
    >>> cert = certify_w2(x, x + 0.01, delta=0.05)
    >>> round(cert.measured, 4), cert.range_sq, round(cert.floor, 4)
    (0.02, 16.0, 0.0979)
    >>> bool(cert.measured <= cert.bound <= 1.1 * (cert.measured + cert.floor))
    True
    """
    a = torch.as_tensor(samples_fp).detach()
    b = torch.as_tensor(samples_q).detach().to(a.device)
    if a.shape != b.shape or a.ndim < 2 or a.shape[0] < 2 or a[0].numel() == 0:
        raise ValueError(f"samples_fp and samples_q must be paired (n >= 2, ...) arrays with at least one "
                         f"coordinate, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.is_complex() or b.is_complex():
        raise ValueError("samples_fp and samples_q must be real (a complex sample lost its imaginary part)")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"low={low!r}, high={high!r} must be finite with low < high")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta={delta!r} must lie in (0, 1)")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("samples_fp and samples_q must be finite")
    n, d = a.shape[0], int(np.prod(a.shape[1:]))
    diff = b.double().clamp(low, high) - a.double().clamp(low, high)
    sq = (diff.flatten(1) ** 2).sum(1).cpu().numpy()
    if not high - low < math.sqrt(np.finfo(float).max / d):  # else d (high - low)^2 is inf or an OverflowError
        raise ValueError(f"low={low!r}, high={high!r}: the squared diameter d (high - low)^2 of the box (d = {d}) "
                         "overflows float64")
    range_sq = d * (high - low) ** 2
    sq = np.minimum(sq, range_sq)  # the clipped pairs lie in the box; this only removes round-off
    return W2Certificate(
        n=n, delta=delta, range_sq=range_sq, measured=float(np.sqrt(sq.mean())),
        bound=math.sqrt(hoeffding_kl_upper(sq, upper=range_sq, delta=delta)),
        floor=math.sqrt(range_sq * -math.expm1(math.log(delta) / n)),
        bernstein=math.sqrt(min(empirical_bernstein_upper(sq, upper=range_sq, delta=delta), range_sq)))


@dataclass(frozen=True)
class TrajectoryEstimate:
    """Per-sample and law-level trajectory recursion for the paired FP/quantized sampler (an estimate).

    Attributes
    ----------
    solver : str
        Deployed solver.
    steps : int
        Fixed steps ``N``.
    per_sample : numpy.ndarray, shape (n,)
        ``c_N``: bound on ``|y_N - x_N|`` per sample (estimated gains, see module notes).
    paired_distance : numpy.ndarray, shape (n,)
        Measured ``|y_N - x_N|`` of the unclipped end states.
    defect_norms : numpy.ndarray, shape (steps, n)
        ``|delta_k|`` per step and sample (certified).
    step_gains : numpy.ndarray, shape (steps, n)
        ``g_k``: maximum over the segment points of the Lanczos estimate of
        ``||D Phi_q||_2`` (estimated).
    lanczos_residual : numpy.ndarray, shape (steps, n)
        Largest relative Lanczos residual over the segment points.
    segment_points : tuple of float
        The ``s`` in ``[0, 1]`` at which the Jacobian was evaluated.
    lanczos_iterations : int
        Krylov dimension per evaluation.
    w2_rms : float
        ``sqrt(mean_i min(c_i^2, R))`` (the sample value of the law-level bound).
    w2_estimate : float
        ``sqrt`` of the empirical-Bernstein upper bound on ``E min(c^2, R)``: it would bound
        ``W2(P_q, P_fp)`` with probability ``>= confidence`` if the gains were upper bounds;
        they are lower estimates, so this is an estimate (``estimated_w2_trajectory``).
    w2_paired : float
        ``sqrt(mean_i |y_N - x_N|^2)``: measured paired transport cost (an upper estimate
        of W2 between the two sampled laws).
    concentration : float
        ``w2_estimate - w2_rms``.
    range_sq : float
        ``R``, the range used by the concentration term.
    range_certified : bool
        ``True`` when ``R`` came from the known value range of the samples; ``False`` when
        it is the largest observed ``c^2`` (an estimate).
    confidence : float
        Confidence level of ``w2_estimate``.
    labels : Mapping[str, str]
        For each field above: ``"certified"``, ``"estimated"`` or ``"measured"``.
    """

    solver: str
    steps: int
    per_sample: np.ndarray
    paired_distance: np.ndarray
    defect_norms: np.ndarray
    step_gains: np.ndarray
    lanczos_residual: np.ndarray
    segment_points: tuple
    lanczos_iterations: int
    w2_rms: float
    w2_estimate: float
    w2_paired: float
    concentration: float
    range_sq: float
    range_certified: bool
    confidence: float
    labels: Mapping[str, str]


_TRAJECTORY_LABELS = {
    "per_sample": "estimated: exact defects, Lanczos step gains at sampled segment points",
    "paired_distance": "measured",
    "defect_norms": "certified",
    "step_gains": "estimated (Lanczos Ritz value, a lower estimate of the spectral norm)",
    "lanczos_residual": "measured",
    "w2_rms": "estimated (as per_sample)",
    "w2_estimate": "estimated (Maurer-Pontil concentration on top of per_sample)",
    "w2_paired": "measured",
}


def _check_solver_args(solver, steps, t0, t1, segment_points, confidence):
    solver_spec(solver, fixed_step=True)
    steps = check_positive_int(steps, name="steps")
    if not (math.isfinite(t0) and math.isfinite(t1)) or t0 == t1:
        raise ValueError(f"t0={t0!r}, t1={t1!r} must be finite and distinct")
    pts = tuple(float(s) for s in segment_points)
    if not pts or any(not 0.0 <= s <= 1.0 for s in pts):
        raise ValueError(f"segment_points={segment_points!r} must be a non-empty sequence in [0, 1]")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must lie in (0, 1)")
    return steps, pts


def _certify_batch(v_fp: Velocity, v_q: Velocity, x: torch.Tensor, *, solver: str, grid: tuple,
                   segment_points: tuple, iterations: int, generator: torch.Generator | None):
    y = x.clone()
    c = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    defects, gains, resid = [], [], []
    warm = None
    for t, h in grid:
        phi_fp = one_step_map(v_fp, t, h, solver=solver)
        phi_q = one_step_map(v_q, t, h, solver=solver)
        with torch.no_grad():
            x_next = phi_fp(x)
            q_at_x = phi_q(x)
            y_next = phi_q(y)
        delta = (q_at_x - x_next).flatten(1).norm(dim=1).double()
        g = torch.zeros_like(c)
        r = torch.zeros_like(c)
        for s in segment_points:
            z = x + s * (y - x)
            est = jacobian_spectral_norm(phi_q, z, iterations=iterations, start=warm, generator=generator)
            warm = est.vector
            g = torch.maximum(g, est.norm.double())
            r = torch.maximum(r, est.residual.double())
        c = g * c + delta
        defects.append(delta)
        gains.append(g)
        resid.append(r)
        x, y = x_next, y_next
    dist = (y - x).flatten(1).norm(dim=1).double()
    return c, dist, torch.stack(defects), torch.stack(gains), torch.stack(resid)


def estimate_w2_trajectory(
    model_fp: Callable,
    model_q: Callable,
    noise: torch.Tensor,
    *,
    adapter: Adapter = XT(),
    solver: str = "midpoint",
    steps: int = 20,
    t0: float = 0.0,
    t1: float = 1.0,
    segment_points: tuple = (0.0, 0.5, 1.0),
    lanczos_iterations: int = 6,
    value_range: float | None = None,
    confidence: float = 0.95,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> TrajectoryEstimate:
    """Estimate the distance between FP and quantized samples from the same noise, step by step.

    The recursion ``c_{k+1} = g_k c_k + |delta_k|`` of the module notes with Lanczos gains:
    exact defects, estimated gains, so every output is an estimate (it shows which steps make
    the error); the certified law-level bound is :func:`certify_w2`.

    Parameters
    ----------
    model_fp, model_q : torch.nn.Module or callable
        The full-precision and quantized velocity models, called through ``adapter``;
        sample-wise (no coupling across the batch).  Both must sit on one device with one
        floating dtype (:func:`fmq_theory.flow.velocity.placement`; a plain function runs
        where ``noise`` is); the noise and the conditioning are moved there.
    noise : torch.Tensor, shape ``(n, *event)``
        Initial states at ``t0``, ``n >= 2``.
    adapter : fmq_theory.flow.velocity.Adapter
        How to call the models and with which per-sample conditioning, e.g.
        :class:`~fmq_theory.flow.velocity.XT` (``model(x, t)``, the default),
        :class:`~fmq_theory.flow.velocity.TX` (torchcfm),
        :class:`~fmq_theory.flow.velocity.XTExtras` (flow_matching) or
        :class:`~fmq_theory.flow.velocity.ClassConditional` (labels, guidance).
    solver : {"euler", "midpoint", "heun"}
        The deployed fixed-step solver.
    steps : int
        Number of equal steps from ``t0`` to ``t1``
        (:func:`fmq_theory.flow.solvers.time_grid`).
    t0, t1 : float
        Integration interval.
    segment_points : tuple of float
        Points ``s`` of the segment ``x_k + s (y_k - x_k)`` where ``||D Phi_q||_2`` is
        estimated; the step gain is the maximum over them.
    lanczos_iterations : int
        Lanczos steps per estimate (warm-started across steps and segment points).
    value_range : float or None
        Width of the per-coordinate range of the deployed (clipped) samples, e.g. 2.0 for
        images in ``[-1, 1]``: then ``R = d * value_range**2`` (certified range).  ``None``
        uses the largest observed ``c^2`` (estimated range).
    confidence : float
        Confidence level of the law-level bound.
    batch_size : int
        Samples per batch (memory only; results do not depend on it except via the random
        Lanczos start of each batch).
    seed : int
        Seed of the Lanczos start vectors.
    progress : bool
        Show a tqdm bar over batches.

    Returns
    -------
    TrajectoryEstimate

    Raises
    ------
    ValueError
        ``noise`` not a floating tensor ``(n >= 2, *event)`` of finite entries; ``batch_size`` or
        ``lanczos_iterations`` not a positive int; a bad ``solver``, ``steps``, ``t0``/``t1``,
        ``segment_points``, ``confidence`` or ``value_range``; the models on different devices
        or dtypes.

    Examples
    --------
    A linear field ``v = -A x`` and the same field with ``A`` rounded to one decimal:

    >>> a = torch.tensor([[1.0, 0.23], [-0.18, 0.96]])
    >>> noise = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    >>> est = estimate_w2_trajectory(lambda x, t: -x @ a.T, lambda x, t: -x @ a.round(decimals=1).T, noise,
    ...                solver="midpoint", steps=4, lanczos_iterations=2)
    >>> bool(np.all(est.per_sample >= est.paired_distance)), est.w2_paired <= est.w2_rms <= est.w2_estimate
    (True, True)
    """
    steps, pts = _check_solver_args(solver, steps, t0, t1, segment_points, confidence)
    check_noise(noise)
    check_probe_settings(batch_size=batch_size, lanczos_iterations=lanczos_iterations)
    adapter.check(noise.shape[0])
    if noise.shape[0] < 2:
        raise ValueError(f"noise must hold at least 2 samples, got {noise.shape[0]}")
    if value_range is not None and not (math.isfinite(value_range) and value_range > 0):
        raise ValueError(f"value_range={value_range!r} must be finite and > 0, or None")
    device, dtype = placement(model_fp, like=noise)
    where_q = placement(model_q, like=noise)
    if where_q != (device, dtype):
        raise ValueError(f"model_q is on {where_q}, model_fp on {(device, dtype)}: both must share one device and dtype")
    grid = time_grid(steps, t_start=t0, t_end=t1)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    parts = []
    starts = tqdm(range(0, noise.shape[0], batch_size), desc="trajectory", unit="batch", disable=not progress)
    with sdpa_kernel([SDPBackend.MATH]):  # the math kernel has forward- and reverse-mode AD
        for start in starts:
            rows = slice(start, start + batch_size)
            x0 = noise[rows].to(device=device, dtype=dtype)
            parts.append(_certify_batch(adapter.bind(model_fp, rows=rows, device=device),
                                        adapter.bind(model_q, rows=rows, device=device), x0,
                                        solver=solver, grid=grid, segment_points=pts,
                                        iterations=lanczos_iterations, generator=gen))
    c, dist, defects, gains, resid = (torch.cat([p[i] for p in parts], dim=-1).cpu().numpy() for i in range(5))
    event = int(np.prod(noise.shape[1:]))
    if value_range is None:
        range_sq, range_certified = float(max(np.max(c**2), np.finfo(float).tiny)), False
    else:
        range_sq, range_certified = float(event * value_range**2), True
    clipped = np.minimum(c**2, range_sq)
    w2_rms = float(np.sqrt(clipped.mean()))
    w2_estimate = float(np.sqrt(min(empirical_bernstein_upper(clipped, upper=range_sq, delta=1 - confidence), range_sq)))
    return TrajectoryEstimate(
        solver=solver, steps=steps, per_sample=c, paired_distance=dist, defect_norms=defects,
        step_gains=gains, lanczos_residual=resid, segment_points=pts,
        lanczos_iterations=lanczos_iterations, w2_rms=w2_rms, w2_estimate=w2_estimate,
        w2_paired=float(np.sqrt(np.mean(dist**2))), concentration=w2_estimate - w2_rms,
        range_sq=range_sq, range_certified=range_certified, confidence=confidence,
        labels=dict(_TRAJECTORY_LABELS),
    )


@dataclass(frozen=True)
class FIDCertificate:
    """FID change certified from paired features of FP and quantized samples.

    Attributes
    ----------
    n : int
        Number of paired samples.
    fid_fp, fid_q : float
        Measured FIDs of the two sample sets against the reference moments.
    measured_dfid : float
        ``fid_q - fid_fp``.
    dfid_low, dfid_high : float
        Paired-bootstrap interval of ``measured_dfid`` at ``confidence`` (the same resampled
        indices for both sets; basic interval around the estimate).
    inside_noise : bool
        ``dfid_low <= 0 <= dfid_high``: the change is not resolved at this sample count.
    fd_paired : float
        ``n/(n-1) mean_i |phi_q,i - phi_fp,i|^2`` (certified upper bound on ``fd_between``).
    fd_between : float
        Measured ``FD(N_q, N_fp)`` between the two Gaussian fits.
    fid_q_bound : float
        ``(sqrt(fid_fp) + sqrt(fd_paired))^2`` (certified upper bound on ``fid_q``).
    dfid_bound : float
        ``fid_q_bound - fid_fp``.
    dfid_bound_between : float
        ``(sqrt(fid_fp) + sqrt(fd_between))^2 - fid_fp`` (the triangle step alone).
    sqrt_fid_change : float
        Measured ``sqrt(fid_q) - sqrt(fid_fp)`` (signed).
    sqrt_change_bound : float
        ``sqrt(fd_paired)``: certified bound on ``|sqrt(fid_q) - sqrt(fid_fp)|``.
    sqrt_change_bound_between : float
        ``sqrt(fd_between)``: the same from the FD of the two fits (the triangle step alone).
    switch_rate : float or None
        Fraction of pairs whose classifier labels differ (``None`` when no labels are given).
    paired_feature_rms_kept : float
        ``sqrt(mean |phi_q - phi_fp|^2)`` over pairs with the same label (``None`` without labels
        or when every pair switched).
    confidence : float
        Level of the bootstrap interval.
    labels : Mapping[str, str]
        ``"certified"`` / ``"measured"`` per field.
    """

    n: int
    fid_fp: float
    fid_q: float
    measured_dfid: float
    dfid_low: float
    dfid_high: float
    inside_noise: bool
    fd_paired: float
    fd_between: float
    fid_q_bound: float
    dfid_bound: float
    dfid_bound_between: float
    sqrt_fid_change: float
    sqrt_change_bound: float
    sqrt_change_bound_between: float
    switch_rate: float | None
    paired_feature_rms_kept: float | None
    confidence: float
    labels: Mapping[str, str]


def certify_fid(
    features_fp,
    features_q,
    *,
    reference_mean,
    reference_cov,
    labels_fp=None,
    labels_q=None,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> FIDCertificate:
    """Bound the FID of the quantized samples by the FP FID and their paired features.

    Parameters
    ----------
    features_fp, features_q : array_like, shape (n, d)
        Features of paired samples (row ``i`` of both from the same noise).
    reference_mean : array_like, shape (d,)
    reference_cov : array_like, shape (d, d)
        Moments of the reference (real test) features, unbiased covariance.
    labels_fp, labels_q : array_like, shape (n,), optional
        Classifier labels of the paired samples (for the mode-switch rate).
    n_boot : int
        Paired-bootstrap replicates for the interval of the measured change.
    confidence : float
        Level of that interval.
    seed : int
        Seed of the resampling indices.

    Returns
    -------
    FIDCertificate

    Raises
    ------
    ValueError
        Unpaired or non-finite features; reference moments that are not finite or not of shapes
        ``(d,)`` and ``(d, d)``; only one of ``labels_fp``, ``labels_q``, or labels not of shape
        ``(n,)``; ``n_boot`` or ``confidence`` out of range.
    """
    # torch.as_tensor takes arrays, sequences and tensors on any device alike
    a = torch.as_tensor(features_fp, dtype=torch.float64)
    b = torch.as_tensor(features_q, dtype=torch.float64, device=a.device)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] < 2:
        raise ValueError(f"features_fp and features_q must be paired (n >= 2, d) arrays, got {tuple(a.shape)} and {tuple(b.shape)}")
    for name, value in (("features_fp", a), ("features_q", b)):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} holds NaN or infinite entries")
    if (labels_fp is None) != (labels_q is None):
        raise ValueError("labels_fp and labels_q must be given together (the switch rate compares them)")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must lie in (0, 1)")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot={n_boot!r} must be an int >= 2")
    n = a.shape[0]
    mu_r = torch.as_tensor(reference_mean, dtype=torch.float64, device=a.device)
    cov_r = torch.as_tensor(reference_cov, dtype=torch.float64, device=a.device)
    d = a.shape[1]
    for name, value, shape in (("reference_mean", mu_r, (d,)), ("reference_cov", cov_r, (d, d))):
        if tuple(value.shape) != shape or not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} must be a finite array of shape {shape}, got shape {tuple(value.shape)}")
    mu_a, s_a = gaussian_fit(a)
    mu_b, s_b = gaussian_fit(b)
    fid_fp = frechet_distance(mu_a, s_a, mu_r, cov_r)
    fid_q = frechet_distance(mu_b, s_b, mu_r, cov_r)
    sq = ((b - a) ** 2).sum(1)
    fd_paired = float(sq.mean()) * n / (n - 1)
    fd_between = frechet_distance(mu_b, s_b, mu_a, s_a)
    gen = torch.Generator().manual_seed(seed)
    reps = []
    for _ in range(n_boot):
        idx = torch.randint(n, (n,), generator=gen).to(a.device)
        ma, sa = gaussian_fit(a[idx])
        mb, sb = gaussian_fit(b[idx])
        reps.append(frechet_distance(mb, sb, mu_r, cov_r) - frechet_distance(ma, sa, mu_r, cov_r))
    alpha = (1 - confidence) / 2
    q_lo, q_med, q_hi = np.quantile(np.asarray(reps), [alpha, 0.5, 1 - alpha])
    dfid = fid_q - fid_fp
    low, high = dfid - float(q_hi - q_med), dfid + float(q_med - q_lo)
    if labels_fp is not None:
        la, lb = np.asarray(labels_fp), np.asarray(labels_q)
        if la.shape != (n,) or lb.shape != (n,):
            raise ValueError(f"labels_fp and labels_q must have shape ({n},), got {la.shape} and {lb.shape}")
        same = la == lb
        switch_rate = float(1.0 - same.mean())
        kept = sq.cpu().numpy()[same]
        kept_rms = float(np.sqrt(kept.mean())) if kept.size else None
    else:
        switch_rate = kept_rms = None
    root_fp = math.sqrt(fid_fp)
    fid_q_bound = (root_fp + math.sqrt(fd_paired)) ** 2
    return FIDCertificate(
        n=n, fid_fp=fid_fp, fid_q=fid_q, measured_dfid=dfid, dfid_low=low, dfid_high=high,
        inside_noise=bool(low <= 0.0 <= high), fd_paired=fd_paired, fd_between=fd_between,
        fid_q_bound=fid_q_bound, dfid_bound=fid_q_bound - fid_fp,
        dfid_bound_between=(root_fp + math.sqrt(fd_between)) ** 2 - fid_fp,
        sqrt_fid_change=math.sqrt(fid_q) - root_fp, sqrt_change_bound=math.sqrt(fd_paired),
        sqrt_change_bound_between=math.sqrt(fd_between),
        switch_rate=switch_rate, paired_feature_rms_kept=kept_rms, confidence=confidence,
        labels={"fid_fp": "measured", "fid_q": "measured", "measured_dfid": "measured",
                "fd_paired": "certified (Gelbrich, paired coupling)", "fd_between": "measured",
                "fid_q_bound": "certified (triangle inequality + Gelbrich)",
                "dfid_bound": "certified", "dfid_bound_between": "certified (triangle inequality)",
                "sqrt_fid_change": "measured", "sqrt_change_bound": "certified (triangle inequality + Gelbrich)",
                "sqrt_change_bound_between": "certified (triangle inequality)",
                "switch_rate": "measured"},
    )
