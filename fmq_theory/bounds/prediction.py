"""Weights-only first-order prediction of the velocity, sample and FID change (noise gains).

Model (Widrow & Kollar, *Quantization Noise*, 2008; Sakr, Kim & Shanbhag, ICML 2017): the
quantized weights are ``theta + eps`` with ``eps`` independent, zero-mean, of variance
``sigma_{l,r}^2`` per output row ``r`` of tensor ``l`` (the measured row-wise MSE of the
quantizer, or the tensor MSE for every row).  To first order any output ``f(theta)`` moves by
``J eps`` and

.. math::

    E|\\Delta f|^2 = \\sum_{l, r} \\sigma_{l,r}^2\\, \\|\\partial f / \\partial \\theta_{l,r}\\|_F^2,

a sum of per-tensor terms (the "noise gains").  The Frobenius norms are estimated by random
projections: for ``u ~ N(0, I)`` in output space, ``E_u |grad_theta <u, f>|^2 = ||J||_F^2``
(one backward pass gives every tensor; for a batch, ``sum_i <u_i, f_i>`` gives the sum over
samples because the cross terms have mean zero).  :func:`noise_gains` computes them once per
model at three levels, through the deployed solver:

* step level: the solver's increment ``(Phi(x_k) - x_k) / h`` at the full-precision states
  (``= v`` for Euler), averaged over steps and samples;
* sample level: the generated sample ``x_N(theta; z)``;
* feature level: ``phi(clip(x_N))`` for the FID feature network ``phi``.

FID prediction (:func:`predict`).  FID is not quadratic in the displacement (its covariance
term is a matrix square root), so the mean and covariance shifts are not added by hand: for
each of ``draws`` Monte Carlo draws of ``eps`` from the noise model (Gaussian, row-wise
variances) the *linearised* feature displacement ``Delta phi_i = J_i eps`` of every sample is
computed by one forward-mode JVP through sampler and feature net (the same ``eps`` for all
samples, as for one quantized model), and the Frechet distance is evaluated exactly at the
moments of ``phi_i + Delta phi_i``.  The prediction is the mean over draws minus the FP FID of
the same samples.  It is a prediction, not a bound.

The dither test (:func:`dither_state_dict`) replaces rounding by uniform noise of the same
row-wise variance; the measured change of the dithered model checks the noise model itself.
When the quantized tensors are given, the same linearised propagation is also run once with
the actual error ``Q(theta) - theta`` (:attr:`Prediction.dfid_actual`).  The four numbers
(noise model or actual error, linearised or sampled) separate the two ways the prediction can
miss: the noise model (dither vs measured, noise-model vs actual-error linearisation) and the
linearisation through the sampler (noise-model linearisation vs dither, actual-error
linearisation vs measured).
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
from fmq_theory.flow.checks import check_noise
from fmq_theory.flow.frechet import frechet_distance, gaussian_fit, to_float64
from fmq_theory.flow.solvers import check_probe_settings, integrate, solver_spec, step, time_grid
from fmq_theory.flow.velocity import XT, Adapter, placement, with_parameters

__all__ = ["NoiseGains", "Prediction", "dither_state_dict", "noise_gains", "predict", "row_variances"]


def _rows(shape: tuple) -> int:
    return int(shape[0]) if len(shape) > 1 else 1


def _row_energy(g: torch.Tensor) -> torch.Tensor:
    return (g.detach().double().reshape(_rows(tuple(g.shape)), -1) ** 2).sum(1)


def _by_parameter(params: Mapping[str, torch.Tensor], quantized: Mapping[str, object]) -> dict[str, object]:
    """``quantized`` keyed by the names of ``params``.

    A name of ``quantized`` is a parameter's own name or, when a wrapper holds the model
    (flow_matching's ``ModelWrapper`` adds ``model.``, ``DataParallel`` ``module.``), the
    unique parameter name that ends in ``"." + name``.
    """
    out = {}
    for name, value in quantized.items():
        if name in params:
            out[name] = value
            continue
        held = [p for p in params if p.endswith("." + name)]
        if len(held) != 1:
            why = "which is not a parameter of the model" if not held else f"which matches {held}"
            raise ValueError(f"quantized has tensor {name!r}, {why}")
        out[held[0]] = value
    return out


def row_variances(params: Mapping[str, torch.Tensor], quantized: Mapping[str, object]) -> dict[str, np.ndarray]:
    """Row-wise error variances ``sigma_{l,r}^2`` of a quantized state dict or per-tensor MSEs.

    Parameters
    ----------
    params : Mapping[str, torch.Tensor]
        Full-precision parameters by name.
    quantized : Mapping[str, torch.Tensor or float]
        Either dequantized tensors (same shapes: the variance of each output row, i.e. slice
        along axis 0, is its mean squared error; a 1-D tensor is one row) or a per-tensor MSE
        (a float, used for every row).  Names missing here are unperturbed.  A name is that
        of a parameter, or the part of one after a wrapper's prefix (``model.`` of
        flow_matching's ``ModelWrapper``) when exactly one parameter ends in it.

    Returns
    -------
    dict of str to numpy.ndarray
        Shape ``(rows_l,)`` per perturbed tensor, keyed by the names of ``params``.

    Raises
    ------
    ValueError
        A name that is no parameter (or matches several), a tensor of the wrong shape or whose
        row variances are not finite (a NaN or infinite entry, or an error that overflows
        float64), an MSE that is not a finite number ``>= 0``.
    TypeError
        A value that is neither a tensor nor a number.

    Examples
    --------
    >>> params = {"model.w": torch.zeros(2, 4)}
    >>> row_variances(params, {"w": torch.tensor([[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])})
    {'model.w': array([0.25, 1.  ])}
    """
    out = {}
    for name, value in _by_parameter(params, quantized).items():
        p = params[name]
        rows = _rows(tuple(p.shape))
        if torch.is_tensor(value):
            if tuple(value.shape) != tuple(p.shape):
                raise ValueError(f"quantized[{name!r}] has shape {tuple(value.shape)}, expected {tuple(p.shape)}")
            diff = (value.detach().double().cpu() - p.detach().double().cpu()).reshape(rows, -1)
            out[name] = (diff**2).mean(1).numpy()
            if not np.all(np.isfinite(out[name])):
                raise ValueError(f"quantized[{name!r}]: its error variances are not finite (a NaN or infinite "
                                 "entry, or an error whose square overflows float64)")
        elif isinstance(value, (float, int, np.floating)) and not isinstance(value, bool):
            if not (math.isfinite(float(value)) and float(value) >= 0):
                raise ValueError(f"quantized[{name!r}] = {value!r} must be a finite MSE >= 0")
            out[name] = np.full(rows, float(value))
        else:
            raise TypeError(f"quantized[{name!r}] must be a tensor or a float MSE, got {type(value).__name__}")
    return out


@dataclass(frozen=True)
class NoiseGains:
    """Row-wise noise gains of a full-precision model (independent of the quantizer).

    Attributes
    ----------
    names : tuple of str
        Parameter names, length ``L``.
    shapes : tuple of tuple
        Their shapes.
    step : tuple of numpy.ndarray
        ``step[l]`` of shape ``(rows_l,)``: mean over samples and steps of
        ``||d incr_k / d theta_{l,r}||_F^2``, ``incr_k = (Phi(x_k) - x_k) / h``.
    sample : tuple of numpy.ndarray
        ``(rows_l,)`` each: mean over samples of ``||d x_N / d theta_{l,r}||_F^2``.
    feature : tuple of numpy.ndarray
        ``(rows_l,)`` each: mean over samples of ``||d phi(clip x_N) / d theta_{l,r}||_F^2``.
    n_samples : int
        Noise draws used.
    projections : int
        Random projections per batch.
    solver : str
    steps : int
    """

    names: tuple
    shapes: tuple
    step: tuple
    sample: tuple
    feature: tuple
    n_samples: int
    projections: int
    solver: str
    steps: int


def _check_common(solver, steps, clip) -> int:
    """``steps`` as an int after checking ``solver``, ``steps`` and ``clip``."""
    solver_spec(solver, fixed_step=True)
    steps = check_positive_int(steps, name="steps")
    if clip is not None and not (isinstance(clip, (tuple, list)) and len(clip) == 2 and clip[0] < clip[1]):
        raise ValueError(f"clip={clip!r} must be None or a pair (low, high) with low < high")
    return steps


def noise_gains(
    model_fp: torch.nn.Module,
    noise: torch.Tensor,
    *,
    feature_fn: Callable[[torch.Tensor], torch.Tensor],
    adapter: Adapter = XT(),
    solver: str = "midpoint",
    steps: int = 20,
    clip: tuple | None = None,
    projections: int = 4,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = False,
) -> NoiseGains:
    """Row-wise noise gains of ``model_fp`` at step, sample and feature level.

    Parameters
    ----------
    model_fp : torch.nn.Module
        Full-precision velocity model, called through ``adapter``; its own
        ``named_parameters()`` name the gains.  It runs where its parameters are
        (:func:`fmq_theory.flow.velocity.placement`); the noise and the conditioning are moved
        there.
    noise : torch.Tensor, shape ``(n, *event)``
        Initial noise (``t = 0``).
    feature_fn : callable
        Differentiable feature map ``samples (n, *event) -> (n, D)`` (the identity for the
        sample space itself).
    adapter : fmq_theory.flow.velocity.Adapter
        How to call the model, with its per-sample conditioning (as in
        :func:`fmq_theory.bounds.estimate_w2_trajectory`; default ``model(x, t)``).
    solver, steps
        The deployed fixed-step solver on ``[0, 1]``.
    clip : (float, float) or None
        Range the samples are clipped to before ``feature_fn`` (e.g. ``(-1, 1)`` for images);
        ``None`` clips nothing.
    projections : int
        Random projections ``u`` per batch.
    batch_size : int
        Samples per backward pass.  One pass estimates the sum over its batch of the
        squared Frobenius norms; the cross terms have mean zero but, where the samples
        share a common sensitivity, act like one extra projection per batch, so small
        batches (many of them) give the lower variance.
    seed : int
        Seed of the projections.
    progress : bool
        tqdm bar over batches.

    Returns
    -------
    NoiseGains

    Raises
    ------
    ValueError
        ``noise`` not a floating tensor ``(n >= 1, *event)`` of finite entries (an empty one gave
        NaN gains); ``projections`` or ``batch_size`` not a positive int; a bad ``solver``,
        ``steps`` or ``clip``.

    Examples
    --------
    >>> class Field(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lin = torch.nn.Linear(2, 2)
    ...     def forward(self, x, t):
    ...         return self.lin(x) * (1 - t[:, None])
    >>> _ = torch.manual_seed(0)
    >>> field, noise = Field(), torch.randn(8, 2)
    >>> gains = noise_gains(field, noise, feature_fn=lambda x: x, solver="euler", steps=4)
    >>> gains.names, [g.shape for g in gains.sample]
    (('lin.weight', 'lin.bias'), [(2,), (1,)])
    """
    steps = _check_common(solver, steps, clip)
    check_noise(noise)
    check_probe_settings(projections=projections, batch_size=batch_size)
    adapter.check(noise.shape[0])
    device, dtype = placement(model_fp, like=noise)
    names = tuple(n for n, _ in model_fp.named_parameters())
    params = {n: p.detach().to(device).requires_grad_(True) for n, p in model_fp.named_parameters()}
    acc = {lvl: {n: torch.zeros(_rows(tuple(p.shape)), dtype=torch.float64, device=device) for n, p in params.items()}
           for lvl in ("step", "sample", "feature")}
    grid = time_grid(steps)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    model = with_parameters(model_fp, params)
    for start in tqdm(range(0, noise.shape[0], batch_size), desc="noise gains", unit="batch", disable=not progress):
        rows = slice(start, start + batch_size)
        x0 = noise[rows].to(device=device, dtype=dtype)
        velocity = adapter.bind(model, rows=rows, device=device)
        for _ in range(projections):
            xn, states = x0, []
            for t, h in grid:
                states.append(xn.detach())
                xn = step(velocity, xn, t, h, solver=solver)
            img = xn.clamp(*clip) if clip is not None else xn
            feats = feature_fn(img)
            u = torch.randn(xn.shape, generator=gen).to(device)
            w = torch.randn(feats.shape, generator=gen).to(device)
            g_sample = torch.autograd.grad((u * xn).sum(), list(params.values()), retain_graph=True, allow_unused=True)
            g_feat = torch.autograd.grad((w * feats).sum(), list(params.values()), allow_unused=True)
            obj = 0.0
            for (t, h), xk in zip(grid, states):
                incr = (step(velocity, xk, t, h, solver=solver) - xk) / h
                obj = obj + (torch.randn(incr.shape, generator=gen).to(device) * incr).sum()
            g_step = torch.autograd.grad(obj, list(params.values()), allow_unused=True)
            for lvl, grads in (("sample", g_sample), ("feature", g_feat), ("step", g_step)):
                for name, g in zip(params, grads):
                    if g is not None:
                        acc[lvl][name] += _row_energy(g)
    n = noise.shape[0]
    norm = {"step": projections * n * steps, "sample": projections * n, "feature": projections * n}
    return NoiseGains(
        names=names,
        shapes=tuple(tuple(params[nm].shape) for nm in names),
        step=tuple((acc["step"][nm] / norm["step"]).cpu().numpy() for nm in names),
        sample=tuple((acc["sample"][nm] / norm["sample"]).cpu().numpy() for nm in names),
        feature=tuple((acc["feature"][nm] / norm["feature"]).cpu().numpy() for nm in names),
        n_samples=n, projections=projections, solver=solver, steps=steps,
    )


@dataclass(frozen=True)
class Prediction:
    """First-order prediction of the change caused by quantizing ``model_fp``.

    Attributes
    ----------
    names : tuple of str
        Parameter names, length ``L``.
    tensor_mse : numpy.ndarray, shape (L,)
        Mean squared weight error per tensor (0 for unperturbed tensors).
    step_terms, sample_terms, feature_terms : numpy.ndarray, shape (L,)
        ``sum_r sigma_{l,r}^2 * gain_{l,r}`` at each level: tensor ``l``'s share of the
        predicted mean squared step-increment error, sample displacement and feature
        displacement.
    step_mse : float
        Predicted mean over steps and samples of ``|incr_q - incr_fp|^2`` at the FP states.
    sample_msd : float
        Predicted ``E|x_q - x_fp|^2`` (unclipped end states).
    feature_msd : float
        Predicted ``E|phi(x_q) - phi(x_fp)|^2`` (noise-gain sum).
    fid_fp : float
        FID of the FP samples used for the Monte Carlo (``n`` samples).
    fid_draws : numpy.ndarray, shape (draws, 2)
        FID at the exactly evaluated perturbed moments for each draw ``eps`` (column 0) and
        its antithetic partner ``-eps`` (column 1).
    dfid : float
        ``mean(fid_draws) - fid_fp``: the predicted expected FID change.  The antithetic
        pairs cancel the term linear in ``eps`` (whose sign is that of the particular
        weights), leaving the even part that every quantized model shares.
    dfid_linear_rms : float
        Root mean square over draws of the odd part ``(FID(eps) - FID(-eps)) / 2``: the
        spread one particular quantized model can show around ``dfid``.
    sample_msd_mc, feature_msd_mc : numpy.ndarray, shape (draws,)
        Mean squared linearised sample and feature displacement per draw (a check of the
        gain sums).
    dfid_actual : float
        The same linearised propagation with the quantizer's *actual* weight error
        ``eps = Q(theta) - theta`` in place of a noise draw: ``FID(phi + J eps) - FID(phi)``
        (no antithetic partner: the sign of ``eps`` is that of these weights).  Set when
        ``quantized`` holds dequantized tensors, ``nan`` for per-tensor MSEs.  Its gap to
        :attr:`dfid` measures the noise model (systematic vs random rounding error), its gap
        to the measured change the linearisation.
    sample_msd_actual, feature_msd_actual : float
        ``mean_i |J_i eps|^2`` in sample and feature space for that actual error (``nan``
        likewise).
    n : int
        Samples in the Monte Carlo.
    """

    names: tuple
    tensor_mse: np.ndarray
    step_terms: np.ndarray
    sample_terms: np.ndarray
    feature_terms: np.ndarray
    step_mse: float
    sample_msd: float
    feature_msd: float
    fid_fp: float
    fid_draws: np.ndarray
    dfid: float
    dfid_linear_rms: float
    sample_msd_mc: np.ndarray
    feature_msd_mc: np.ndarray
    dfid_actual: float
    sample_msd_actual: float
    feature_msd_actual: float
    n: int

    def dominant(self, level: str = "feature", k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` tensors with the largest share at ``level`` ("step", "sample", "feature"), as (name, fraction).

        Raises
        ------
        ValueError
            Unknown ``level``, or ``k`` not a positive int (``k = -1`` gave all tensors but one).
        """
        terms = {"step": self.step_terms, "sample": self.sample_terms, "feature": self.feature_terms}
        if level not in terms:
            raise ValueError(f"level={level!r} is not one of {sorted(terms)}")
        k = check_positive_int(k, name="k")
        t = terms[level]
        total = float(t.sum()) or 1.0
        order = np.argsort(t)[::-1][:k]
        return [(self.names[i], float(t[i]) / total) for i in order]


def predict(
    model_fp: torch.nn.Module,
    quantized: Mapping[str, object],
    *,
    noise: torch.Tensor,
    feature_fn: Callable[[torch.Tensor], torch.Tensor],
    reference_mean,
    reference_cov,
    gains: NoiseGains,
    adapter: Adapter = XT(),
    solver: str = "midpoint",
    steps: int = 20,
    clip: tuple | None = None,
    draws: int = 2,
    batch_size: int = 500,
    seed: int = 0,
) -> Prediction:
    """Predict the sample and FID change of quantizing ``model_fp`` from weight errors alone.

    Parameters
    ----------
    model_fp : torch.nn.Module
        Full-precision velocity model, called through ``adapter``; it runs where its
        parameters are (the noise and the conditioning are moved there).
    quantized : Mapping[str, torch.Tensor or float]
        Dequantized tensors or per-tensor MSEs, by the names of ``model_fp.named_parameters()``
        or of the model a wrapper holds (see :func:`row_variances`).
    noise : torch.Tensor, shape ``(n, *event)``
        Noise for the FID Monte Carlo (``n >= 2``).
    feature_fn : callable
        Differentiable feature map (as in :func:`noise_gains`).
    reference_mean : array_like, shape (D,)
    reference_cov : array_like, shape (D, D)
        Reference (real data) feature moments, unbiased covariance.
    gains : NoiseGains
        From :func:`noise_gains` for this model, solver and steps.
    adapter, solver, steps, clip
        As in :func:`noise_gains`.
    draws : int
        Monte Carlo draws of the weight noise.
    batch_size : int
        Samples per JVP.
    seed : int
        Seed of the noise draws.

    Returns
    -------
    Prediction

    Raises
    ------
    ValueError
        ``noise`` not a floating tensor ``(n >= 2, *event)`` of finite entries; ``draws`` or
        ``batch_size`` not a positive int; reference moments that are not finite or not of
        shapes ``(D,)`` and ``(D, D)``; ``gains`` of another solver, steps or tensors;
        ``quantized`` as in :func:`row_variances`.

    Examples
    --------
    A small MLP field ``v(x, t)`` and its weights rounded to 4 bits:

    >>> from fmq_theory.quantizers import quantize_state_dict
    >>> class Field(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    ...     def forward(self, x, t):
    ...         return self.net(torch.cat([x, t[:, None]], 1))
    >>> _ = torch.manual_seed(0)
    >>> field, noise = Field(), torch.randn(8, 2)
    >>> gains = noise_gains(field, noise, feature_fn=lambda x: x, solver="euler", steps=4)
    >>> q = quantize_state_dict(field.state_dict(), method="uniform_minmax", bits=4).state_dict()
    >>> pred = predict(field, q, noise=noise, feature_fn=lambda x: x, reference_mean=np.zeros(2),
    ...                reference_cov=np.eye(2), gains=gains, solver="euler", steps=4)
    >>> pred.sample_msd > 0, pred.fid_draws.shape, bool(np.isfinite(pred.dfid_actual))
    (True, (2, 2), True)
    """
    steps = _check_common(solver, steps, clip)
    if gains.solver != solver or gains.steps != steps:
        raise ValueError(f"gains were computed for {gains.solver}/{gains.steps}, not {solver}/{steps}")
    check_probe_settings(draws=draws, batch_size=batch_size)
    check_noise(noise)
    if noise.shape[0] < 2:
        raise ValueError(f"noise must hold at least 2 samples, got {noise.shape[0]}")
    mu_r = to_float64(np.asarray(reference_mean), name="reference_mean")
    cov_r = to_float64(np.asarray(reference_cov), name="reference_cov")
    if mu_r.ndim != 1 or tuple(cov_r.shape) != (mu_r.shape[0],) * 2:
        raise ValueError(f"reference_mean and reference_cov must have shapes (D,) and (D, D), got "
                         f"{tuple(mu_r.shape)} and {tuple(cov_r.shape)}")
    adapter.check(noise.shape[0])
    device, dtype = placement(model_fp, like=noise)
    params = {n: p.detach().to(device) for n, p in model_fp.named_parameters()}
    quantized = _by_parameter(params, quantized)
    var = row_variances(params, quantized)
    index = {n: i for i, n in enumerate(gains.names)}
    missing = set(var) - set(index)
    if missing:
        raise ValueError(f"gains lack tensors {sorted(missing)}")
    L = len(gains.names)
    mse = np.zeros(L)
    terms = {lvl: np.zeros(L) for lvl in ("step", "sample", "feature")}
    for name, v in var.items():
        i = index[name]
        mse[i] = float(np.mean(v))  # rows have equal sizes
        terms["step"][i] = float(v @ gains.step[i])
        terms["sample"][i] = float(v @ gains.sample[i])
        terms["feature"][i] = float(v @ gains.feature[i])
    gen = torch.Generator(device="cpu").manual_seed(seed)
    mu_r, cov_r = mu_r.to(device), cov_r.to(device)
    fid_draws, sample_mc, feature_mc = [], [], []
    base_feats = None

    def linearised(tangent):
        """Features ``phi_i`` of the FP samples, their JVP ``J_i tangent`` and ``|dx_i|^2``."""
        feats, dfeats, dx_sq = [], [], []
        for start in range(0, noise.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            x0 = noise[rows].to(device=device, dtype=dtype)

            def run(p, x0=x0, rows=rows):
                velocity = adapter.bind(with_parameters(model_fp, p), rows=rows, device=device)
                xn = integrate(velocity, x0, solver=solver, steps=steps).x
                img = xn.clamp(*clip) if clip is not None else xn
                return xn, feature_fn(img)

            with torch.no_grad(), sdpa_kernel([SDPBackend.MATH]):
                (_, f), (dx, df) = torch.func.jvp(run, (params,), (tangent,))
            feats.append(f.double())
            dfeats.append(df.double())
            dx_sq.append((dx.double().flatten(1) ** 2).sum(1))
        return torch.cat(feats), torch.cat(dfeats), torch.cat(dx_sq)

    def fid_at(g):
        return frechet_distance(*gaussian_fit(g), mu_r, cov_r)

    for _ in range(draws):
        tangent = {}
        for name, p in params.items():
            if name in var:
                sd = torch.as_tensor(np.sqrt(var[name]), dtype=p.dtype).to(device)
                xi = torch.randn(p.shape, generator=gen, dtype=p.dtype).to(device)
                tangent[name] = xi * sd.view(-1, *([1] * (p.dim() - 1))) if p.dim() > 1 else xi * sd
            else:
                tangent[name] = torch.zeros_like(p)
        f, df, dx_sq = linearised(tangent)
        if base_feats is None:
            base_feats = f
        sample_mc.append(float(dx_sq.mean()))
        feature_mc.append(float((df**2).sum(1).mean()))
        # antithetic pair: the linear term cancels in the mean
        fid_draws.append([fid_at(f + df), fid_at(f - df)])
    fid_fp = fid_at(base_feats)
    actual = {"dfid": math.nan, "sample_msd": math.nan, "feature_msd": math.nan}
    if quantized and all(torch.is_tensor(v) for v in quantized.values()):
        error = {name: (quantized[name].detach().to(device=device, dtype=p.dtype) - p) if name in quantized
                 else torch.zeros_like(p) for name, p in params.items()}
        _, df, dx_sq = linearised(error)  # the same FP features base_feats again
        actual = {"dfid": fid_at(base_feats + df) - fid_fp, "sample_msd": float(dx_sq.mean()),
                  "feature_msd": float((df**2).sum(1).mean())}
    fid_draws = np.asarray(fid_draws)
    linear = 0.5 * (fid_draws[:, 0] - fid_draws[:, 1])
    return Prediction(
        names=gains.names, tensor_mse=mse, step_terms=terms["step"], sample_terms=terms["sample"],
        feature_terms=terms["feature"], step_mse=float(terms["step"].sum()),
        sample_msd=float(terms["sample"].sum()), feature_msd=float(terms["feature"].sum()),
        fid_fp=fid_fp, fid_draws=fid_draws, dfid=float(fid_draws.mean() - fid_fp),
        dfid_linear_rms=float(np.sqrt(np.mean(linear**2))),
        sample_msd_mc=np.asarray(sample_mc), feature_msd_mc=np.asarray(feature_mc),
        dfid_actual=actual["dfid"], sample_msd_actual=actual["sample_msd"],
        feature_msd_actual=actual["feature_msd"], n=int(noise.shape[0]),
    )


def dither_state_dict(state_dict: Mapping[str, torch.Tensor], quantized: Mapping[str, object], *,
                      seed: int = 0) -> dict[str, torch.Tensor]:
    """Full-precision weights plus uniform noise of the quantizer's row-wise variance.

    Each perturbed row gets i.i.d. ``U(-a, a)`` noise with ``a = sqrt(3 sigma_{l,r}^2)``
    (variance ``a^2 / 3 = sigma^2``); tensors absent from ``quantized`` are copied.

    Parameters
    ----------
    state_dict : Mapping[str, torch.Tensor]
        Full-precision weights.
    quantized : Mapping[str, torch.Tensor or float]
        As in :func:`row_variances`.
    seed : int
        Seed of the noise.

    Returns
    -------
    dict of str to torch.Tensor
        A new state dict (same devices and dtypes).

    Raises
    ------
    ValueError
        ``quantized`` as in :func:`row_variances`, or dithered weights that are not finite (a
        NaN or infinite weight, or an MSE so large that they overflow the tensor's dtype).
    """
    var = row_variances(state_dict, quantized)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = {}
    for name, p in state_dict.items():
        if name not in var:
            out[name] = p.detach().clone()
            continue
        a = torch.as_tensor(np.sqrt(3.0 * var[name]), dtype=torch.float64)
        u = torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1
        scale = a.view(-1, *([1] * (p.dim() - 1))) if p.dim() > 1 else a
        out[name] = (p.detach().double().cpu() + u * scale).to(dtype=p.dtype, device=p.device)
        if not bool(torch.isfinite(out[name]).all()):
            raise ValueError(f"quantized[{name!r}]: the dithered weights are not finite (the weights hold NaN or "
                             f"infinite entries, or the MSE is too large for {p.dtype})")
    return out
