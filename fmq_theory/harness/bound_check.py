"""The bound check: measured FID and sample change against certified, estimated and predicted bounds.

For one dataset, a trained checkpoint and its classifier feature net, and every
(method, bits) cell (:func:`bound_check_cell` computes one cell's row from the shared
:class:`BoundCheckSetup`):

* measured: paired sampling of the FP and quantized models from the same noise and labels
  (deployed fixed-step solver, float32, TF32 off), classifier-feature FID of both against
  the real test set, ``dFID = FID_q - FID_fp`` with a paired-bootstrap interval (a cell is
  *inside the sampling noise* when the interval contains 0), mode-switch rate (classifier
  label of the pair differs), paired sample distances;
* certified, no estimated input: ``certified_w2`` (:func:`fmq_theory.bounds.certify_w2`), an
  upper confidence bound at level ``confidence`` on ``W2`` between the laws of the clipped
  FP and quantized samples, from the same 5000 pairs (``certified_w2_delta``,
  ``certified_w2_n``, ``certified_w2_range_sq`` say at which level, from how many pairs and
  with which range); ``certified_sqrt_fid_change`` (:func:`fmq_theory.bounds.certify_fid`), a
  bound on ``|sqrt(FID_q) - sqrt(FID_fp)|`` for the empirical FIDs, and ``certified_dfid``,
  ``(sqrt(FID_fp) + sqrt(FD_paired))^2 - FID_fp``; the ``_fits`` variants use the FD of the two
  Gaussian fits instead of the paired features;
* estimated: ``estimated_w2_trajectory`` (:func:`fmq_theory.bounds.estimate_w2_trajectory`), the
  per-step recursion with Lanczos gains, on ``trajectory_samples`` samples of the cells in
  ``trajectory_methods`` x ``trajectory_bits`` (empty elsewhere); ``estimated_naive_dfid``, the
  textbook chain (:func:`fmq_theory.theory.fid_chain.fid_chain`) with the constants of
  :func:`naive_constants` (two lower estimates and one upper bound, so neither a bound nor a
  lower bound);
* predicted (:func:`fmq_theory.bounds.predict`): noise gains of the FP model and the
  row-wise weight MSE of the quantizer only; the dither test samples the FP weights plus
  uniform noise of the same row-wise variance; the same linearised propagation with the
  actual weight error (``predicted_dfid_actual``, which needs the quantized weights but no
  sampling of the quantized model) separates the noise model's miss from the linearisation's.

Every ``ratio_*`` column is the bound or prediction over the measured value it bounds; a
ratio whose measured value is not resolved (inside the sampling noise) or not computed is an
empty cell, never NaN.

Features are those of the classifier's penultimate layer on clipped samples mapped to
``[0, 1]`` without rounding to uint8 (so that the same differentiable map serves the
measurement, the certificate and the prediction); the reference moments are those of the
real test images ``uint8 / 255``.

:func:`run_bound_check` runs the cells of a :class:`BoundCheckConfig` as tasks of
:func:`fmq_theory.harness.engine.run_cells`, writes the
:data:`fmq_theory.results.schema.BOUND_CHECK` table as each cell completes and draws
:func:`fmq_theory.results.plots.plot_bound_check` at the end; ``fmq bound-check`` is its
command line.  :func:`probe_constants` estimates the same chain's constants for
``scripts/bound_compare.py`` and :func:`naive_constants` (the same estimators, one per constant).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from tqdm.auto import tqdm

from fmq_theory._util import check_positive_int
from fmq_theory.bounds import (
    certify_fid,
    certify_w2,
    dither_state_dict,
    estimate_w2_trajectory,
    noise_gains,
    predict,
)
from fmq_theory.bounds.constants import TrajectoryConstants, lip_features_upper, trajectory_constants
from fmq_theory.flow.frechet import frechet_distance, gaussian_fit
from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.context import load_context
from fmq_theory.harness.engine import Cell, run_cells
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.quantizers import quantize_state_dict
from fmq_theory.results.plots import bound_check_title, plot_bound_check
from fmq_theory.results.schema import BOUND_CHECK
from fmq_theory.theory.fid_chain import fid_chain
from fmq_theory.vocab import FIXED_STEP_SOLVERS, METHODS

__all__ = ["BoundCheckConfig", "BoundCheckSetup", "bound_check_cell", "naive_constants", "probe_constants",
           "run_bound_check", "summary_line"]

#: Columns of the trajectory estimate, empty in cells outside ``trajectory_methods`` x ``trajectory_bits``.
TRAJECTORY_COLUMNS = ("estimated_w2_trajectory", "estimated_w2_trajectory_rms", "measured_w2_paired_trajectory",
                      "ratio_estimated_w2_trajectory", "trajectory_per_sample_ratio_median", "lanczos_residual_max",
                      "measured_step_mse")


@dataclass(frozen=True)
class BoundCheckConfig:
    """What one bound check measures (``fmq bound-check``'s flags, one field each).

    Attributes
    ----------
    dataset : {"mnist", "fashion_mnist"}
    checkpoint : str or None
        Checkpoint folder; default ``checkpoints/<dataset>``.
    classifier : str or None
        Classifier checkpoint; default ``checkpoints/classifier_<dataset>.safetensors``.
    methods : tuple of str
        Quantizers (:data:`fmq_theory.vocab.METHODS`).
    bits : tuple of int
    trajectory_bits : tuple of int
        Bit widths that get the trajectory estimate (``estimated_w2_trajectory``).
    trajectory_methods : tuple of str or None
        Methods that get it at those bit widths; ``None``: all of ``methods``.
    samples : int
        Paired samples of the measured FID and of ``certified_w2`` (>= 2).
    trajectory_samples : int
        Samples of the trajectory estimate (>= 2).
    pred_samples : int
        Samples of the FID prediction's Monte Carlo (>= 2).
    gain_samples : int
        Samples of the noise gains (>= 1).
    draws : int
        Antithetic Monte Carlo draws of the weight noise.
    solver : {"euler", "midpoint", "heun"}
    steps : int
    n_boot : int
        Paired-bootstrap replicates of the measured dFID.
    confidence : float
        Level of the bootstrap interval and of ``certified_w2`` (``delta = 1 - confidence``).
    device : str
    seed : int
    batch_size : int
    time_limit : float or None
        Seconds; no new cell starts after this.
    """

    dataset: str
    checkpoint: str | None = None
    classifier: str | None = None
    methods: tuple = ("equal_mass", "lloyd_max", "uniform_minmax")
    bits: tuple = (2, 3, 4, 5, 6, 7, 8)
    trajectory_bits: tuple = (2, 4, 8)
    trajectory_methods: tuple | None = None
    samples: int = 5000
    trajectory_samples: int = 32
    pred_samples: int = 1000
    gain_samples: int = 32
    draws: int = 2
    solver: str = "midpoint"
    steps: int = 10
    n_boot: int = 100
    confidence: float = 0.95
    device: str = "cpu"
    seed: int = 0
    batch_size: int = 1000
    time_limit: float | None = None

    def __post_init__(self):
        if min(self.samples, self.trajectory_samples, self.pred_samples) < 2 or self.gain_samples < 1:
            raise ValueError("samples, trajectory_samples and pred_samples must be >= 2, gain_samples >= 1")
        bad = [m for m in self.methods + tuple(self.trajectory_methods or ()) if m not in METHODS]
        if bad:
            raise ValueError(f"methods has unknown quantizers {bad}; known: {sorted(METHODS)}")
        if self.solver not in FIXED_STEP_SOLVERS:
            raise ValueError(f"solver={self.solver!r} is not one of {list(FIXED_STEP_SOLVERS)}")
        object.__setattr__(self, "steps", check_positive_int(self.steps, name="steps"))
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence!r}")

    def cells(self) -> list[tuple[str, int]]:
        """``(method, bits)`` in run order: bits 2, 4, 8 first, then the rest, methods inside.

        A run cut short by :attr:`time_limit` then still spans the whole range for every method.
        """
        first = [b for b in (2, 4, 8) if b in self.bits]
        return [(m, b) for b in first + [b for b in self.bits if b not in first] for m in self.methods]

    def has_trajectory(self, method: str, bits: int) -> bool:
        """Whether cell ``(method, bits)`` gets the trajectory estimate."""
        return bits in self.trajectory_bits and method in (self.trajectory_methods or self.methods)


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_line(row: Mapping) -> str:
    """One progress line per cell (an empty column prints as ``-``)."""
    return (f"{row['method']:>15s} b={row['bits']}  dFID {row['measured_dfid']:+.4g} "
            f"[{row['dfid_low']:+.3g}, {row['dfid_high']:+.3g}]  cert {row['certified_dfid']:.4g}  "
            f"sqrtFID {row['measured_sqrt_fid_change']:+.4g}/{row['certified_sqrt_fid_change']:.4g}  "
            f"pred {row['predicted_dfid']:.4g}/{row['predicted_dfid_actual']:.4g}  dither {row['dither_dfid']:+.4g}  "
            f"naive {row['estimated_naive_dfid']:.3g}  switch {row['switch_rate']:.4f}  "
            f"W2 {row['measured_w2_paired_clipped']:.4g}/cert {row['certified_w2']:.4g}"
            f"/traj {_fmt(row['estimated_w2_trajectory'], '.4g')}  "
            f"{row['wall_s']:.0f}s (quant {row['t_quantize']:.0f} meas {row['t_measure']:.0f} "
            f"traj {row['t_trajectory']:.0f} pred {row['t_predict']:.0f} dither {row['t_dither']:.0f})")


def _ratio(num: float, den: float, inside_noise: bool = False) -> float | None:
    """``num / den``, or ``None`` (an empty cell) when ``den`` is not resolved or not positive."""
    return num / den if (den > 0 and not inside_noise) else None


class BoundCheckSetup:
    """Everything computed once per dataset: models, features, reference, FP samples, gains, constants.

    Parameters
    ----------
    cfg : BoundCheckConfig
    """

    def __init__(self, cfg: BoundCheckConfig):
        self.ctx = load_context(dataset=cfg.dataset, checkpoint=cfg.checkpoint, classifier=cfg.classifier,
                                samples=cfg.samples, seed=cfg.seed, device=cfg.device,
                                feature_batch_size=cfg.batch_size)
        self.device, self.model, self.noise, self.labels = self.ctx.device, self.ctx.model, self.ctx.noise, self.ctx.labels
        self.net = self.ctx.classifier.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.solver, self.steps, self.batch_size = cfg.solver, cfg.steps, cfg.batch_size
        feats = torch.from_numpy(self.ctx.real_features).to(self.device).double()
        self.ref_mean = feats.mean(0).cpu().numpy()
        self.ref_cov = np.cov(feats.cpu().numpy().T)
        self.x_fp = self.sample(self.model)
        self.f_fp, self.y_fp = self.features(self.x_fp)
        g = cfg.gain_samples
        self.gains = noise_gains(self.model, self.noise[:g], feature_fn=self.feature_fn,
                                 adapter=self.adapter(g), solver=cfg.solver, steps=cfg.steps,
                                 clip=(-1.0, 1.0), projections=2, batch_size=8, seed=cfg.seed, progress=True)
        self.constants = naive_constants(self, seed=cfg.seed)

    def feature_fn(self, images: torch.Tensor) -> torch.Tensor:
        """Classifier features of model-space images in [-1, 1] (no rounding to uint8)."""
        return self.net.features((images + 1) / 2)

    def adapter(self, n: int):
        """How the UNet is called for the first ``n`` samples: their labels, no guidance."""
        return unet_adapter(self.model, None if self.labels is None else self.labels[:n])

    def sample(self, model) -> torch.Tensor:
        """Samples of ``model`` from the shared noise and labels, on the device, unclipped."""
        return sample(model, self.noise, adapter=self.adapter(self.noise.shape[0]), solver=self.solver,
                      steps=self.steps, batch_size=self.batch_size).x.to(self.device)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        """Features (float64) of the clipped samples and the classifier's labels."""
        with torch.no_grad():
            f = torch.cat([self.feature_fn(x[i:i + self.batch_size].clamp(-1, 1)) for i in range(0, x.shape[0], self.batch_size)])
            y = self.net.head(f).argmax(1)
        return f.double(), y.cpu().numpy()

    def model_with(self, state_dict) -> torch.nn.Module:
        """A copy of the FP model with ``state_dict`` loaded."""
        m = copy.deepcopy(self.model)
        m.load_state_dict(state_dict)
        return m.eval()


def naive_constants(setup: BoundCheckSetup, *, seed: int) -> dict:
    """Constants of the textbook chain: :func:`probe_constants` with the settings of ``bound_*.json``.

    One estimator per constant, the same as ``scripts/bound_compare.py``'s: ``lipschitz_x_lower``
    and ``lipschitz_theta_lower`` (lower estimates: the largest Jacobian norms found at 2
    trajectories x 4 times, 10 Krylov steps), ``lip_features_upper`` (an upper bound: the product
    of the classifier's layer norms, times 1/2 for ``u = (x + 1) / 2``).
    """
    probe, upper = probe_constants(setup.model, setup.net, samples=2, times=4, iterations=10, steps=setup.steps,
                                   seed=seed)
    return {"lipschitz_x_lower": probe.lipschitz_x_lower, "lipschitz_theta_lower": probe.lipschitz_theta_lower,
            "lip_features_upper": upper}


def probe_constants(model: torch.nn.Module, classifier_net: torch.nn.Module, *, samples: int = 4, times: int = 5,
                    iterations: int = 15, steps: int = 10, seed: int = 0) -> tuple[TrajectoryConstants, float]:
    """The chain's constants of a trained UNet and its classifier, for ``scripts/bound_compare.py``.

    ``L_x`` and ``L_theta`` (lower estimates) at ``times`` equally spaced times in ``[0, 1)`` of
    ``samples`` midpoint trajectories (seeded noise, balanced labels; ``round(steps / times)``
    steps between probed times), every trajectory probed for both; ``Lip(features)`` as the
    upper bound :func:`fmq_theory.bounds.constants.lip_features_upper` of the classifier's
    features, times 1/2 for the map ``u = (x + 1) / 2`` from model space to its input.

    Returns
    -------
    (TrajectoryConstants, float)
        The trajectory estimates and ``lip_features_upper``.
    """
    model = model.eval()
    cfg = model.config
    shape = (cfg.in_channels, cfg.image_size, cfg.image_size)
    device = next(model.parameters()).device
    noise = make_noise(samples, shape, seed=seed).to(device)
    labels = balanced_labels(samples, cfg.num_classes).to(device) if cfg.num_classes else None
    sub = max(1, round(steps / times))
    with sdpa_kernel([SDPBackend.MATH]):
        probe = trajectory_constants(model, noise, adapter=unet_adapter(model, labels), solver="midpoint",
                                     steps=times * sub, every=sub, theta_samples=samples, x_iterations=iterations,
                                     theta_iterations=iterations, generator=torch.Generator().manual_seed(seed + 1))
    upper = 0.5 * lip_features_upper(classifier_net.features, classifier_net, input_shape=shape)
    return probe, upper


def bound_check_cell(setup: BoundCheckSetup, *, cfg: BoundCheckConfig, method: str, bits: int) -> dict:
    """One cell's row of :data:`~fmq_theory.results.schema.BOUND_CHECK` (see the module notes).

    Parameters
    ----------
    setup : BoundCheckSetup
        Built from ``cfg`` (shared by every cell of a dataset).
    cfg : BoundCheckConfig
    method : str
    bits : int

    Returns
    -------
    dict
        The typed row; a column not computed for this cell is ``None`` (an empty csv cell).
    """
    t0 = time.perf_counter()
    sd = {k: v.detach() for k, v in setup.model.state_dict().items()}
    qsd = quantize_state_dict(sd, method=method, bits=bits, granularity="channel")
    sd_q = qsd.state_dict()
    n_w = sum(r.n_weights for r in qsd.report)
    weight_mse = sum(r.mse * r.n_weights for r in qsd.report) / n_w
    model_q = setup.model_with(sd_q)
    t1 = time.perf_counter()
    x_q = setup.sample(model_q)
    f_q, y_q = setup.features(x_q)
    fidc = certify_fid(setup.f_fp.cpu(), f_q.cpu(), reference_mean=setup.ref_mean, reference_cov=setup.ref_cov,
                       labels_fp=setup.y_fp, labels_q=y_q, n_boot=cfg.n_boot, confidence=cfg.confidence, seed=cfg.seed)
    w2c = certify_w2(setup.x_fp, x_q, low=-1.0, high=1.0, delta=1.0 - cfg.confidence)
    msd = float(((x_q - setup.x_fp).double().flatten(1) ** 2).sum(1).mean())
    params = dict(setup.model.named_parameters())
    quantized = {k: v for k, v in sd_q.items() if k in params}
    t2 = time.perf_counter()
    traj_cols = dict.fromkeys(TRAJECTORY_COLUMNS)
    n_c = 0
    if cfg.has_trajectory(method, bits):
        n_c = cfg.trajectory_samples
        est = estimate_w2_trajectory(setup.model, model_q, setup.noise[:n_c], adapter=setup.adapter(n_c),
                                     solver=setup.solver, steps=setup.steps, segment_points=(0.0, 0.5, 1.0),
                                     lanczos_iterations=5, value_range=2.0, confidence=cfg.confidence,
                                     batch_size=n_c, seed=cfg.seed)
        ratio = est.per_sample / np.maximum(est.paired_distance, np.finfo(float).tiny)
        traj_cols = {
            "estimated_w2_trajectory": est.w2_estimate, "estimated_w2_trajectory_rms": est.w2_rms,
            "measured_w2_paired_trajectory": est.w2_paired,
            "ratio_estimated_w2_trajectory": _ratio(est.w2_estimate, est.w2_paired),
            "trajectory_per_sample_ratio_median": float(np.median(ratio)),
            "lanczos_residual_max": float(est.lanczos_residual.max()),
            "measured_step_mse": float(np.mean(est.defect_norms**2)) * setup.steps**2,
        }
    t3 = time.perf_counter()
    p = cfg.pred_samples
    pred = predict(setup.model, quantized, noise=setup.noise[:p], feature_fn=setup.feature_fn,
                   reference_mean=setup.ref_mean, reference_cov=setup.ref_cov, gains=setup.gains,
                   adapter=setup.adapter(p), solver=setup.solver, steps=setup.steps, clip=(-1.0, 1.0),
                   draws=cfg.draws, batch_size=1000, seed=cfg.seed)
    t4 = time.perf_counter()
    model_d = setup.model_with(dither_state_dict(sd, quantized, seed=cfg.seed))
    x_d = setup.sample(model_d)
    f_d, _ = setup.features(x_d)
    dither_dfid = frechet_distance(*gaussian_fit(f_d.cpu()), setup.ref_mean, setup.ref_cov) - fidc.fid_fp
    dither_msd = float(((x_d - setup.x_fp).double().flatten(1) ** 2).sum(1).mean())
    t5 = time.perf_counter()
    k = setup.constants
    naive = fid_chain(mse=weight_mse, n_params=n_w, lipschitz_theta=k["lipschitz_theta_lower"],
                      lipschitz_x=k["lipschitz_x_lower"], lip_features=k["lip_features_upper"], fid_fp=fidc.fid_fp,
                      solver=setup.solver, steps=setup.steps)
    inside = fidc.inside_noise
    sqrt_change = abs(fidc.sqrt_fid_change)
    return {
        "dataset": cfg.dataset, "method": method, "bits": bits, "samples": int(setup.noise.shape[0]),
        "solver": setup.solver, "steps": setup.steps, "feature_net": setup.ctx.classifier.name,
        "device": torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else "cpu",
        "weight_mse": weight_mse, "fid_fp": fidc.fid_fp, "fid_q": fidc.fid_q, "measured_dfid": fidc.measured_dfid,
        "dfid_low": fidc.dfid_low, "dfid_high": fidc.dfid_high, "inside_noise": inside,
        "estimated_naive_dfid": naive.delta_fid, "certified_dfid": fidc.dfid_bound,
        "certified_dfid_fits": fidc.dfid_bound_between,
        "measured_sqrt_fid_change": fidc.sqrt_fid_change, "certified_sqrt_fid_change": fidc.sqrt_change_bound,
        "certified_sqrt_fid_change_fits": fidc.sqrt_change_bound_between,
        "predicted_dfid": pred.dfid, "predicted_dfid_linear_rms": pred.dfid_linear_rms,
        "predicted_dfid_actual": pred.dfid_actual, "dither_dfid": dither_dfid, "switch_rate": fidc.switch_rate,
        "ratio_certified_dfid": _ratio(fidc.dfid_bound, fidc.measured_dfid, inside),
        "ratio_certified_dfid_fits": _ratio(fidc.dfid_bound_between, fidc.measured_dfid, inside),
        "ratio_certified_sqrt_fid": _ratio(fidc.sqrt_change_bound, sqrt_change, inside),
        "ratio_certified_sqrt_fid_fits": _ratio(fidc.sqrt_change_bound_between, sqrt_change, inside),
        "ratio_predicted": _ratio(pred.dfid, fidc.measured_dfid, inside),
        "ratio_predicted_actual": _ratio(pred.dfid_actual, fidc.measured_dfid, inside),
        "ratio_dither": _ratio(dither_dfid, fidc.measured_dfid, inside),
        "ratio_estimated_naive": _ratio(naive.delta_fid, fidc.measured_dfid, inside),
        "measured_w2_paired": math.sqrt(msd), "measured_w2_paired_clipped": w2c.measured,
        "certified_w2": w2c.bound, "certified_w2_delta": w2c.delta, "certified_w2_n": w2c.n,
        "certified_w2_range_sq": w2c.range_sq, "certified_w2_floor": w2c.floor,
        "ratio_certified_w2": _ratio(w2c.bound, w2c.measured),
        "trajectory_samples": n_c, **traj_cols,
        "fd_paired": fidc.fd_paired, "fd_between": fidc.fd_between, "predicted_sample_msd": pred.sample_msd,
        "predicted_sample_msd_mc": float(np.mean(pred.sample_msd_mc)),
        "predicted_sample_msd_actual": pred.sample_msd_actual, "measured_sample_msd": msd,
        "dither_sample_msd": dither_msd, "predicted_feature_msd": pred.feature_msd,
        "predicted_step_mse": pred.step_mse,
        "dominant_tensors": ";".join(f"{name}:{share:.3f}" for name, share in pred.dominant("feature", k=3)),
        **k, "pred_samples": pred.n, "draws": cfg.draws, "t_quantize": t1 - t0, "t_measure": t2 - t1,
        "t_trajectory": t3 - t2, "t_predict": t4 - t3, "t_dither": t5 - t4, "wall_s": time.perf_counter() - t0,
    }


def _load(cfg: BoundCheckConfig) -> BoundCheckSetup:
    """The set-up of one worker (TF32 off, as every measurement here assumes)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    return BoundCheckSetup(cfg)


def run_bound_check(cfg: BoundCheckConfig, *, out: Path, figure: Path, progress: bool = True,
                    scheduler: str = "none", workers: int | None = None, threads: int | None = None) -> list[dict]:
    """Run every cell of ``cfg`` through :func:`fmq_theory.harness.engine.run_cells`; draw ``figure`` at the end.

    Parameters
    ----------
    cfg : BoundCheckConfig
    out : pathlib.Path
        The :data:`~fmq_theory.results.schema.BOUND_CHECK` csv, keyed by cell: each row is
        written atomically as its cell completes, and a cell whose row holds this run's
        settings is not run again (a run cut short resumes).
    figure : pathlib.Path
        The png of :func:`fmq_theory.results.plots.plot_bound_check`.
    progress : bool
        Print a :func:`summary_line` per cell, and a progress bar.
    scheduler : str
        ``"none"`` (this process), ``"local"`` or a Dask scheduler address.
    workers, threads : int, optional
        Workers of the local cluster; torch threads of every cell.

    Returns
    -------
    list of dict
        The rows of the cells of ``cfg``, typed, in run order (:meth:`BoundCheckConfig.cells`).
    """
    if not isinstance(cfg, BoundCheckConfig):
        raise TypeError(f"cfg must be a BoundCheckConfig, got {type(cfg).__name__}")
    cells = [Cell(key=BOUND_CHECK.row_key({"dataset": cfg.dataset, "method": m, "bits": b}),
                  params={"cfg": cfg, "method": m, "bits": b})
             for m, b in cfg.cells()]

    def is_done(row: dict) -> bool:  # a row of the same cell under other settings is run again
        n_traj = cfg.trajectory_samples if cfg.has_trajectory(row["method"], row["bits"]) else 0
        return (row["samples"], row["solver"], row["steps"], row["draws"], row["trajectory_samples"]) == (
            cfg.samples, cfg.solver, cfg.steps, cfg.draws, n_traj)

    def finish(cell: Cell, row: dict) -> dict:
        if progress:
            tqdm.write(summary_line(row))
        return row

    report = run_cells(cells, task=bound_check_cell, load=partial(_load, cfg), context_key=("bound_check", cfg), table=BOUND_CHECK,
                       out=out, scheduler=scheduler, workers=workers, threads=threads,
                       resources={"GPU": 1} if torch.device(cfg.device).type == "cuda" else None, is_done=is_done,
                       finish=finish, progress=progress, name=f"bound-check {cfg.dataset}",
                       deadline=None if cfg.time_limit is None else time.time() + cfg.time_limit)
    if progress and report.not_started:
        print(f"time limit reached: {report.not_started} cells not run", flush=True)
    held = {BOUND_CHECK.row_key(r): r for r in BOUND_CHECK.read(out)} if Path(out).is_file() else {}
    rows = [held[c.key] for c in cells if c.key in held]
    plot_bound_check(rows, figure, title=bound_check_title(cfg.dataset, solver=cfg.solver, steps=cfg.steps))
    return rows
