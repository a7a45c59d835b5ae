"""The bound check: measured FID change against the naive, certified and predicted bounds.

For one dataset, a trained checkpoint and its classifier feature net, and every
(method, bits) cell:

* measured: paired sampling of the FP and quantized models from the same noise and labels
  (deployed fixed-step solver, float32, TF32 off), classifier-feature FID of both against
  the real test set, ``dFID = FID_q - FID_fp`` with a paired-bootstrap interval (a cell is
  *inside the sampling noise* when the interval contains 0), mode-switch rate (classifier
  label of the pair differs), paired sample distances;
* certified (:func:`fmq_theory.bounds.certify_fid`): ``(sqrt(FID_fp) + sqrt(FD_paired))^2 -
  FID_fp`` from the paired features, and the trajectory certificate
  (:func:`fmq_theory.bounds.certify`) of the sample-space W2 on a subset;
* predicted (:func:`fmq_theory.bounds.predict`): noise gains of the FP model and the
  row-wise weight MSE of the quantizer only; the dither test samples the FP weights plus
  uniform noise of the same row-wise variance; the same linearised propagation with the
  actual weight error (``predicted_dfid_actual``, which needs the quantized weights but no
  sampling of the quantized model) separates the noise model's miss from the linearisation's;
* naive (:func:`fmq_theory.theory.fid_chain.fid_chain`): the textbook chain with constants
  estimated at sampled points (:func:`naive_constants`: largest observed values, lower
  estimates of the suprema the chain needs, so the naive bound shown is, if anything, too
  small).

Features are those of the classifier's penultimate layer on clipped samples mapped to
``[0, 1]`` without rounding to uint8 (so that the same differentiable map serves the
measurement, the certificate and the prediction); the reference moments are those of the
real test images ``uint8 / 255``.

:func:`run_bound_check` runs the cells of a :class:`BoundCheckConfig` as tasks of
:func:`fmq_theory.harness.engine.run_cells`, writes the
:data:`fmq_theory.results.schema.BOUND_CHECK` table as each cell completes and draws
:func:`fmq_theory.results.plots.plot_bound_check` at the end; ``fmq bound-check`` is its
command line.  :func:`probe_constants` estimates the same chain's constants for
``scripts/bound_compare.py``.
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

from fmq_theory.bounds import certify, certify_fid, dither_state_dict, noise_gains, predict
from fmq_theory.bounds.constants import (
    TrajectoryConstants,
    lip_features_lower,
    lip_features_upper,
    trajectory_constants,
)
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

__all__ = ["BoundCheckConfig", "naive_constants", "probe_constants", "run_bound_check", "summary_line"]


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
    cert_bits : tuple of int or None
        Bit widths that get the trajectory (W2) certificate; ``None``: all of ``bits``.
    samples : int
        Paired samples of the measured FID (>= 2).
    cert_samples : int
        Samples of the trajectory certificate (>= 2).
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
    cert_bits: tuple | None = None
    samples: int = 5000
    cert_samples: int = 64
    pred_samples: int = 2000
    gain_samples: int = 64
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
        if min(self.samples, self.cert_samples, self.pred_samples) < 2 or self.gain_samples < 1:
            raise ValueError("samples, cert_samples and pred_samples must be >= 2, gain_samples >= 1")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ValueError(f"methods has unknown quantizers {bad}; known: {sorted(METHODS)}")
        if self.solver not in FIXED_STEP_SOLVERS:
            raise ValueError(f"solver={self.solver!r} is not one of {list(FIXED_STEP_SOLVERS)}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive int, got {self.steps!r}")

    def cells(self) -> list[tuple[str, int]]:
        """``(method, bits)`` in run order: bits 2, 4, 8 first, then the rest, methods inside.

        A run cut short by :attr:`time_limit` then still spans the whole range for every method.
        """
        first = [b for b in (2, 4, 8) if b in self.bits]
        return [(m, b) for b in first + [b for b in self.bits if b not in first] for m in self.methods]


def summary_line(row: Mapping) -> str:
    """One progress line per cell."""
    return (f"{row['method']:>15s} b={row['bits']}  dFID {row['measured_dfid']:+.4g} "
            f"[{row['dfid_low']:+.3g}, {row['dfid_high']:+.3g}]  cert {row['certified_bound']:.4g}  "
            f"pred {row['predicted_dfid']:.4g}/{row['predicted_dfid_actual']:.4g}  dither {row['dither_dfid']:+.4g}  naive {row['naive_bound']:.3g}  "
            f"switch {row['switch_rate']:.4f}  W2 {row['measured_w2_paired']:.4g}/{row['certified_w2']:.4g}  "
            f"{row['wall_s']:.0f}s (quant {row['t_quantize']:.0f} meas {row['t_measure']:.0f} "
            f"cert {row['t_certify']:.0f} pred {row['t_predict']:.0f} dither {row['t_dither']:.0f})")


def _ratio(num: float, den: float, inside_noise: bool) -> float:
    return num / den if (den > 0 and not inside_noise) else float("nan")


class _Setup:
    """Everything computed once per dataset: models, features, reference, FP samples, gains."""

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


def naive_constants(setup: _Setup, *, seed: int) -> dict:
    """Constants of the textbook chain at sampled points (largest observed values).

    ``lipschitz_x_lower``: max over every ``steps // 8``-th grid time x 16 FP trajectories of
    ``||d v / d x||_2`` (8 Lanczos steps); ``lipschitz_theta_lower``: max over the same times
    of the first trajectory of ``||d v / d theta||_2`` (10 power iterations on ``J J^T``);
    ``lip_features_lower``: max over 64 FP samples of ``||d phi / d x||_2`` (8 Lanczos steps).
    All are lower estimates of the suprema the chain assumes
    (:mod:`fmq_theory.bounds.constants`).  The random start vectors come from a CPU generator
    seeded with ``seed`` (they came from the unseeded global generator before, so the committed
    tables' constants cannot be drawn again exactly: ``lipschitz_x_lower`` and
    ``lip_features_lower`` agree to about 6 digits from any start, ``lipschitz_theta_lower``,
    whose 10 iterations are not converged, to a few per cent).
    """
    dev, n = setup.device, 16
    generator = torch.Generator().manual_seed(seed)
    labels = None if setup.labels is None else setup.labels[:n].to(dev)
    with sdpa_kernel([SDPBackend.MATH]):  # the math kernel has forward- and reverse-mode AD
        probe = trajectory_constants(setup.model, setup.noise[:n].to(dev), adapter=unet_adapter(setup.model, labels),
                                     solver=setup.solver, steps=setup.steps, every=max(1, setup.steps // 8),
                                     theta_samples=1, x_iterations=8, theta_iterations=10, generator=generator)
        lf = lip_features_lower(setup.feature_fn, setup.x_fp[:64].clamp(-1, 1), iterations=8, generator=generator)
    return {"lipschitz_x_lower": probe.lipschitz_x_lower, "lipschitz_theta_lower": probe.lipschitz_theta_lower,
            "lip_features_lower": float(lf.max())}


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
    noise = make_noise(samples, shape, seed=seed)
    labels = balanced_labels(samples, cfg.num_classes) if cfg.num_classes else None
    sub = max(1, round(steps / times))
    with sdpa_kernel([SDPBackend.MATH]):
        probe = trajectory_constants(model, noise, adapter=unet_adapter(model, labels), solver="midpoint",
                                     steps=times * sub, every=sub, theta_samples=samples, x_iterations=iterations,
                                     theta_iterations=iterations, generator=torch.Generator().manual_seed(seed + 1))
    upper = 0.5 * lip_features_upper(classifier_net.features, classifier_net, input_shape=shape, iterations=iterations)
    return probe, upper


def _cell(setup: _Setup, *, cfg: BoundCheckConfig, method: str, bits: int, cert_samples: int) -> dict:
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
    msd = float(((x_q - setup.x_fp).double().flatten(1) ** 2).sum(1).mean())
    params = dict(setup.model.named_parameters())
    quantized = {k: v for k, v in sd_q.items() if k in params}
    t2 = time.perf_counter()
    n_c = cert_samples
    cert = None
    if n_c >= 2:
        cert = certify(setup.model, model_q, setup.noise[:n_c], adapter=setup.adapter(n_c),
                       solver=setup.solver, steps=setup.steps, segment_points=(0.0, 0.5, 1.0), lanczos_iterations=5,
                       value_range=2.0, confidence=cfg.confidence, batch_size=n_c, seed=cfg.seed)
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
                      lipschitz_x=k["lipschitz_x_lower"], lip_features=k["lip_features_lower"], fid_fp=fidc.fid_fp,
                      solver=setup.solver, steps=setup.steps)
    h = 1.0 / setup.steps
    inside = fidc.inside_noise
    nan = float("nan")
    if cert is not None:
        ratio = cert.per_sample / np.maximum(cert.paired_distance, np.finfo(float).tiny)
        cert_cols = {
            "certified_w2": cert.w2_bound, "certified_w2_rms": cert.w2_rms, "measured_w2_paired_cert": cert.w2_paired,
            "certified_w2_over_measured": cert.w2_bound / max(cert.w2_paired, 1e-300),
            "cert_per_sample_ratio_median": float(np.median(ratio)),
            "lanczos_residual_max": float(cert.lanczos_residual.max()),
            "measured_step_mse": float(np.mean(cert.defect_norms**2)) / h**2,
        }
    else:  # not run for these bits (cert_bits)
        cert_cols = dict.fromkeys(("certified_w2", "certified_w2_rms", "measured_w2_paired_cert",
                                   "certified_w2_over_measured", "cert_per_sample_ratio_median",
                                   "lanczos_residual_max", "measured_step_mse"), nan)
    return {
        "dataset": cfg.dataset, "method": method, "bits": bits, "samples": int(setup.noise.shape[0]),
        "solver": setup.solver, "steps": setup.steps, "feature_net": setup.ctx.classifier.name,
        "device": torch.cuda.get_device_name(setup.device) if setup.device.type == "cuda" else "cpu",
        "weight_mse": weight_mse, "fid_fp": fidc.fid_fp, "fid_q": fidc.fid_q, "measured_dfid": fidc.measured_dfid,
        "dfid_low": fidc.dfid_low, "dfid_high": fidc.dfid_high, "inside_noise": inside,
        "naive_bound": naive.delta_fid, "certified_bound": fidc.dfid_bound,
        "certified_bound_fits": fidc.dfid_bound_between, "predicted_dfid": pred.dfid,
        "predicted_dfid_linear_rms": pred.dfid_linear_rms, "predicted_dfid_actual": pred.dfid_actual,
        "dither_dfid": dither_dfid,
        "switch_rate": fidc.switch_rate,
        "ratio_certified": _ratio(fidc.dfid_bound, fidc.measured_dfid, inside),
        "ratio_predicted": _ratio(pred.dfid, fidc.measured_dfid, inside),
        "ratio_predicted_actual": _ratio(pred.dfid_actual, fidc.measured_dfid, inside),
        "ratio_dither": _ratio(dither_dfid, fidc.measured_dfid, inside),
        "ratio_naive": _ratio(naive.delta_fid, fidc.measured_dfid, inside),
        "measured_w2_paired": math.sqrt(msd), "cert_samples": n_c if cert is not None else 0, **cert_cols,
        "fd_paired": fidc.fd_paired,
        "fd_between": fidc.fd_between, "predicted_sample_msd": pred.sample_msd,
        "predicted_sample_msd_mc": float(np.mean(pred.sample_msd_mc)),
        "predicted_sample_msd_actual": pred.sample_msd_actual, "measured_sample_msd": msd,
        "dither_sample_msd": dither_msd, "predicted_feature_msd": pred.feature_msd,
        "predicted_step_mse": pred.step_mse,
        "dominant_tensors": ";".join(f"{name}:{share:.3f}" for name, share in pred.dominant("feature", k=3)),
        **k, "pred_samples": pred.n, "draws": cfg.draws, "t_quantize": t1 - t0, "t_measure": t2 - t1,
        "t_certify": t3 - t2, "t_predict": t4 - t3, "t_dither": t5 - t4, "wall_s": time.perf_counter() - t0,
    }


def _load(cfg: BoundCheckConfig) -> _Setup:
    """The set-up of one worker (TF32 off, as every measurement here assumes)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    return _Setup(cfg)


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
    cert_bits = cfg.bits if cfg.cert_bits is None else cfg.cert_bits
    cells = [Cell(key=BOUND_CHECK.row_key({"dataset": cfg.dataset, "method": m, "bits": b}),
                  params={"cfg": cfg, "method": m, "bits": b, "cert_samples": cfg.cert_samples if b in cert_bits else 0})
             for m, b in cfg.cells()]

    def is_done(row: dict) -> bool:  # a row of the same cell under other settings is run again
        return (row["samples"], row["solver"], row["steps"], row["draws"], row["cert_samples"]) == (
            cfg.samples, cfg.solver, cfg.steps, cfg.draws, cfg.cert_samples if row["bits"] in cert_bits else 0)

    def finish(cell: Cell, row: dict) -> dict:
        if progress:
            tqdm.write(summary_line(row))
        return row

    report = run_cells(cells, task=_cell, load=partial(_load, cfg), context_key=("bound_check", cfg), table=BOUND_CHECK,
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
