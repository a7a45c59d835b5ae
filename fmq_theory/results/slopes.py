"""Reading a sweep: degradation slopes per method and the bound chain with estimated constants.

Slopes
    For each method, fit ``log2(FID_q(b) - FID_fp) = a + s b`` by ordinary least squares over
    the bit widths whose degradation lies above the sampling-noise floor, with a Student-t
    confidence interval for ``s``. A ``2^(-2b)`` law gives ``s = -2``. The noise floor is
    twice the median of ``|FID_q - FID_fp|`` over the 8-bit cells of all methods (most 8-bit
    models are near-lossless, so their typical spread is the noise of a 10k-sample FID with
    shared noise; the median ignores a method that is not converged at 8 bits), unless given.

Constants of the naive chain (:mod:`fmq_theory.theory.fid_chain`), estimated on the real model
    * ``lipschitz_x``: the largest spectral norm of ``dv/dx`` found by power iteration
      (JVP/VJP) at points of sampled trajectories - an *empirical* lower estimate of the sup;
    * ``lipschitz_theta``: the largest operator norm of ``dv/dtheta`` (output change per unit
      parameter-vector norm) by power iteration at the same points - *empirical*;
    * ``lip_features``: the product of the spectral norms of the classifier's linear layers
      (ReLU and max-pool are 1-Lipschitz), times 1/2 for the map from model space [-1, 1] to
      the classifier's input ``u = (x + 1) / 2`` - a *certified* upper bound up to the
      convergence of each power iteration (each layer norm is itself a lower estimate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.func import functional_call, jvp, vjp

__all__ = ["SlopeFit", "fit_slope", "noise_floor", "ChainConstants", "estimate_constants"]


@dataclass(frozen=True)
class SlopeFit:
    """OLS fit of ``log2(delta FID)`` against bits.

    Attributes
    ----------
    method : str
    bits : numpy.ndarray, shape (m,)
        Bit widths used in the fit (degradation above the noise floor).
    log2_dfid : numpy.ndarray, shape (m,)
    slope : float
        Fitted ``s`` (NaN when fewer than 2 points).
    intercept : float
    ci_low, ci_high : float
        ``confidence`` interval for ``s`` (Student t, m - 2 dof; NaN when m < 3).
    confidence : float
    """

    method: str
    bits: np.ndarray
    log2_dfid: np.ndarray
    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    confidence: float


def noise_floor(rows: list[dict], *, column: str = "fid") -> float:
    """Twice the median ``|FID_q - FID_fp|`` over the 8-bit rows (see the module docstring)."""
    fp = [float(r[column]) for r in rows if r["method"] == "none" and r[column]]
    if len(fp) != 1:
        raise ValueError(f"rows must hold exactly one full-precision row with {column}, got {len(fp)}")
    eight = [abs(float(r[column]) - fp[0]) for r in rows
             if r["method"] != "none" and int(r["bits"]) == 8 and r[column]]
    if not eight:
        raise ValueError(f"rows hold no 8-bit row with {column}")
    return 2.0 * float(np.median(eight))


def fit_slope(rows: list[dict], *, method: str, column: str = "fid", floor: float | None = None,
              confidence: float = 0.95) -> SlopeFit:
    """Fit the degradation slope of ``method`` over ``rows`` of one dataset (see module doc)."""
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    fp = float(next(r[column] for r in rows if r["method"] == "none"))
    floor = noise_floor(rows, column=column) if floor is None else float(floor)
    pts = sorted((int(r["bits"]), float(r[column]) - fp) for r in rows
                 if r["method"] == method and r[column])
    pts = [(b, d) for b, d in pts if d > floor]
    bits = np.array([b for b, _ in pts], dtype=float)
    y = np.log2(np.array([d for _, d in pts], dtype=float))
    nan = float("nan")
    if len(bits) < 2:
        return SlopeFit(method, bits, y, nan, nan, nan, nan, confidence)
    slope, intercept = np.polyfit(bits, y, 1)
    lo = hi = nan
    if len(bits) >= 3:
        resid = y - (intercept + slope * bits)
        s2 = float(resid @ resid) / (len(bits) - 2)
        se = np.sqrt(s2 / float(((bits - bits.mean()) ** 2).sum()))
        t = stats.t.ppf(0.5 + confidence / 2, len(bits) - 2)
        lo, hi = slope - t * se, slope + t * se
    return SlopeFit(method, bits, y, float(slope), float(intercept), float(lo), float(hi),
                    confidence)


@dataclass(frozen=True)
class ChainConstants:
    """Constants of the naive bound chain estimated on a trained model.

    Attributes
    ----------
    lipschitz_x : float
        Empirical: max spectral norm of ``dv/dx`` over the probed trajectory points.
    lipschitz_theta : float
        Empirical: max operator norm of ``dv/dtheta`` over the same points.
    lip_features : float
        Certified up to power-iteration convergence: Lipschitz bound of the classifier's
        feature map on model-space images.
    lipschitz_x_per_point : numpy.ndarray, shape (P,)
    lipschitz_theta_per_point : numpy.ndarray, shape (P,)
    times : numpy.ndarray, shape (P,)
        Time of each probed point.
    labels : dict
        ``{"lipschitz_x": "empirical", ...}``.
    """

    lipschitz_x: float
    lipschitz_theta: float
    lip_features: float
    lipschitz_x_per_point: np.ndarray
    lipschitz_theta_per_point: np.ndarray
    times: np.ndarray
    labels: dict


def _power(apply_a, apply_at, v0: torch.Tensor, iters: int) -> float:
    """Largest singular value of A by power iteration on A^T A, from ``v0``."""
    v = v0 / v0.norm()
    sigma = 0.0
    for _ in range(iters):
        w = apply_at(apply_a(v))
        sigma = float(w.detach().norm().sqrt())
        v = (w / w.norm()).detach()
    return sigma


def _layer_norm(layer: torch.nn.Module, in_shape: tuple, iters: int) -> float:
    weight_only = lambda x: torch.nn.functional.conv2d(x, layer.weight, padding=layer.padding) \
        if isinstance(layer, torch.nn.Conv2d) else x @ layer.weight.T
    x0 = torch.randn(1, *in_shape, generator=torch.Generator().manual_seed(0))

    def a(v):
        return weight_only(v)

    def at(u):
        return vjp(weight_only, x0)[1](u)[0]

    return _power(a, at, x0, iters)


def _classifier_lipschitz(net: torch.nn.Module, iters: int) -> float:
    """Product of the spectral norms of the SmallCNN's conv and linear layers."""
    shapes = {0: (1, 28, 28), 3: (32, 14, 14), 6: (64, 7, 7)}
    prod = 1.0
    for idx, shape in shapes.items():
        prod *= _layer_norm(net.body[idx], shape, iters)
    lin = net.penultimate[0]
    prod *= _layer_norm(lin, (lin.weight.shape[1],), iters)
    return prod


@torch.no_grad()
def _trajectory_points(model, noise, labels, steps: int, n_times: int):
    from fmq_theory.flow.solvers import integrate, guided_velocity

    times = np.linspace(0.0, 1.0, n_times, endpoint=False)
    pts, x, t_prev = [], noise, 0.0
    f = guided_velocity(model, labels, 0.0)
    for t in times:
        if t > t_prev:
            x = integrate(f, x, solver="midpoint", steps=max(1, round(steps * (t - t_prev))),
                          t_start=t_prev, t_end=float(t)).x
            t_prev = float(t)
        pts.append((float(t), x.clone()))
    return pts


def estimate_constants(model: torch.nn.Module, classifier_net: torch.nn.Module, *,
                       n_samples: int = 4, n_times: int = 5, iters: int = 15, seed: int = 0,
                       steps: int = 10) -> ChainConstants:
    """Estimate the chain constants of ``model`` (see the module docstring).

    Probes ``n_samples`` trajectories (seeded noise, balanced labels) at ``n_times`` times
    in [0, 1); each point gets ``iters`` power iterations for ``dv/dx`` and ``dv/dtheta``.
    """
    from fmq_theory.flow.solvers import balanced_labels, make_noise

    model = model.eval()
    cfg = model.config
    noise = make_noise(n_samples, (cfg.in_channels, cfg.image_size, cfg.image_size), seed=seed)
    labels = balanced_labels(n_samples, cfg.num_classes) if cfg.num_classes else None
    params = {k: v.detach() for k, v in model.named_parameters()}
    gen = torch.Generator().manual_seed(seed + 1)
    lx, lt, ts = [], [], []
    for t, xs in _trajectory_points(model, noise, labels, steps, n_times):
        for i in range(n_samples):
            x = xs[i:i + 1]
            y = labels[i:i + 1] if labels is not None else None
            tt = torch.full((1,), t)

            def fx(z):
                return model(z, tt, y)

            lx.append(_power(lambda v: jvp(fx, (x,), (v,))[1],
                             lambda u: vjp(fx, x)[1](u)[0],
                             torch.randn(x.shape, generator=gen), iters))

            def fp(p):
                return functional_call(model, p, (x, tt, y))

            v0 = {k: torch.randn(v.shape, generator=gen) for k, v in params.items()}
            flat_norm = lambda d: torch.sqrt(sum((w ** 2).sum() for w in d.values()))
            v = {k: w / flat_norm(v0) for k, w in v0.items()}
            sigma = 0.0
            for _ in range(iters):
                out = jvp(fp, (params,), (v,))[1]
                w = vjp(fp, params)[1](out)[0]
                nrm = flat_norm(w)
                sigma = float(nrm.sqrt())
                v = {k: g / nrm for k, g in w.items()}
            lt.append(sigma)
            ts.append(t)
    lip_feat = 0.5 * _classifier_lipschitz(classifier_net, iters)
    return ChainConstants(
        lipschitz_x=float(max(lx)), lipschitz_theta=float(max(lt)), lip_features=lip_feat,
        lipschitz_x_per_point=np.array(lx), lipschitz_theta_per_point=np.array(lt),
        times=np.array(ts),
        labels={"lipschitz_x": "empirical (power iteration on dv/dx along trajectories)",
                "lipschitz_theta": "empirical (power iteration on dv/dtheta along trajectories)",
                "lip_features": "certified up to power-iteration convergence (product of layer "
                                "spectral norms x 1/2)"})
