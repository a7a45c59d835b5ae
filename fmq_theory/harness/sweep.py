"""The quantization sweep: every method x bits cell of one trained model, measured and logged.

For one dataset and its checkpoint, the sweep runs the full-precision reference (method
``none``, bits 32) and every requested ``(method, bits)`` cell:

1. quantize the state dict (:func:`fmq_theory.quantizers.quantize_state_dict`, per output
   channel by default) and load the dequantized weights into a copy of the model;
2. sample ``samples`` images from the SAME seeded noise and the same balanced labels as the
   full-precision model (:func:`fmq_theory.flow.solvers.make_noise`), with the configured ODE
   solver (NFE recorded);
3. measure FID against the real test split in the features of the project's classifier
   (always) and of InceptionV3 (for the cells named in ``inception_cells`` when the
   Inception file is given); PSNR and SSIM (Gaussian 11x11, sigma 1.5) between the paired
   full-precision and quantized samples; the mode-switch rate (paired samples whose predicted
   class differs); the paper's protocol as a labelled reproduction mode (one forward pass at
   ``t = 0`` on the first 64 test images, PSNR and 11x11 box-window SSIM of the velocity
   outputs); and latent stability (PCA-20 of the down-path and middle-block activations at
   ``t = 0``, and the ODE inversion of test images compared with the full-precision one).

The model, its noise and labels, the classifier and the real test features are the shared
set-up of :func:`fmq_theory.harness.context.load_context`.

Each cell is an independent task of :func:`fmq_theory.harness.engine.run_cells`
(:func:`sweep_cells` lists them): in this process, on a local Dask cluster or on any Dask
scheduler, each worker loading the shared set-up once.  The client writes each row into the
CSV file (the :data:`fmq_theory.results.schema.SWEEP` table) atomically as its task completes,
so a killed sweep resumes where it stopped: a cell counts as done when a row with its key
already holds every metric this run asks for (a row written without Inception FID is
recomputed once the Inception file is available for that cell).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from fmq_theory import __version__
from fmq_theory.flow.frechet import fid_from_features
from fmq_theory.flow.solvers import integrate, sample
from fmq_theory.harness import data as data_mod
from fmq_theory.harness.context import load_context
from fmq_theory.harness.engine import Cell, EngineReport, default_workers, run_cells
from fmq_theory.harness.features.inception import InceptionFeatures
from fmq_theory.harness.latent import compare_inversions, invert, latent_stability
from fmq_theory.harness.metrics import psnr, ssim_box, ssim_gaussian
from fmq_theory.harness.models.unet import guided_velocity, unet_adapter
from fmq_theory.harness.train import images_to_model_space, to_uint8
from fmq_theory.quantizers import quantize_state_dict
from fmq_theory.results.schema import SWEEP
from fmq_theory.vocab import METHODS

__all__ = ["SweepConfig", "parse_cells", "run_sweep", "sweep_cells", "quantized_model"]


@dataclass(frozen=True)
class SweepConfig:
    """What one sweep measures.

    Attributes
    ----------
    dataset : str
    checkpoint : str or None
        Checkpoint folder, or a flow_matching image-example checkpoint file (see
        :func:`~fmq_theory.harness.checkpoints.load_trained_model`); default ``checkpoints/<dataset>``.
    methods : tuple of str
        Quantizer names, or ``("all",)`` for every method of :data:`fmq_theory.quantizers.METHODS`.
    bits : tuple of int
    granularity : str
    samples : int
        Generated images per cell (the FID/PSNR/SSIM sample count).
    solver, steps, cfg_scale : as for :func:`fmq_theory.flow.solvers.sample`
    seed : int
        Seed of the shared initial noise.
    batch_size : int
        Sampling batch.
    inception : str or None
        Path of the TorchScript InceptionV3; ``None`` computes no Inception FID.
    trust_inception : bool
        Load an ``inception`` file whose digest is not the shipped network's
        (:func:`fmq_theory.harness.features.inception.check_inception_file`).
    inception_cells : str
        ``"all"`` or ``"METHOD:B,B;METHOD:B"`` (``none:32`` is the full-precision row).
    latent : bool
        Compute the latent-stability metrics.
    autocast : bool
        bfloat16 autocast while sampling on CUDA.
    classifier : str or None
        Classifier checkpoint; default ``checkpoints/classifier_<dataset>.safetensors``.
    latent_images : int
        Test images for the PCA protocol.
    inversion_images : int
        Test images inverted to noise (midpoint, ``steps`` steps, null label).
    real_images : int or None
        Real test images the FIDs compare against (``None``: the whole test split).
    """

    dataset: str
    checkpoint: str | None = None
    methods: tuple = ("all",)
    bits: tuple = (2, 3, 4, 5, 6, 7, 8)
    granularity: str = "channel"
    samples: int = 10000
    solver: str = "midpoint"
    steps: int = 10
    cfg_scale: float = 0.0
    seed: int = 0
    batch_size: int = 2500
    inception: str | None = None
    inception_cells: str = "none:32;equal_mass:2,3,4,8;lloyd_max:2,3,4,8;uniform_minmax:2,3,4,8"
    trust_inception: bool = False
    latent: bool = True
    autocast: bool = True
    classifier: str | None = None
    latent_images: int = 2000
    inversion_images: int = 500
    real_images: int | None = None

    def __post_init__(self):
        if self.dataset not in data_mod.DATASETS:
            raise ValueError(f"dataset must be one of {sorted(data_mod.DATASETS)}, got {self.dataset!r}")
        if not isinstance(self.samples, int) or self.samples < 2:
            raise ValueError(f"samples must be an int >= 2, got {self.samples!r}")
        parse_cells(self.inception_cells)

    def method_list(self) -> list[str]:
        """The methods to run, ``"all"`` expanded."""
        if "all" in self.methods:
            return list(METHODS)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"methods {unknown} are not among {list(METHODS)}")
        return list(self.methods)


def parse_cells(spec: str) -> set | None:
    """``"all"`` -> None (every cell); ``"m:2,3;n:8"`` -> {("m", 2), ("m", 3), ("n", 8)}."""
    if spec == "all":
        return None
    cells = set()
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        try:
            method, bits = part.split(":")
            cells |= {(method.strip(), int(b)) for b in bits.split(",")}
        except ValueError:
            raise ValueError(f"inception_cells must look like 'm:2,3;n:8' or 'all', got {spec!r}")
    return cells


def quantized_model(model: torch.nn.Module, *, method: str, bits: int, granularity: str):
    """A copy of ``model`` with quantized-dequantized weights, and the quantization result."""
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    qsd = quantize_state_dict(sd, method=method, bits=bits, granularity=granularity)
    qmodel = copy.deepcopy(model)
    qmodel.load_state_dict(qsd.state_dict(), strict=True)
    return qmodel.eval(), qsd


class _Context:
    """Everything shared by the cells of one sweep (computed once)."""

    def __init__(self, cfg: SweepConfig, device: torch.device, progress: bool):
        self.cfg, self.device, self.progress = cfg, device, progress
        self.shared = load_context(dataset=cfg.dataset, checkpoint=cfg.checkpoint, classifier=cfg.classifier,
                                   samples=cfg.samples, seed=cfg.seed, device=device, real_images=cfg.real_images)
        self.loaded, self.model = self.shared.trained, self.shared.model
        self.noise, self.labels = self.shared.noise, self.shared.labels
        self.test_uint8 = self.shared.test_images
        self.test_x = images_to_model_space(self.test_uint8)
        self.classifier, self.real_clf = self.shared.classifier, self.shared.real_features
        self.inception = None
        self.real_inc = None
        if cfg.inception:
            self.inception = InceptionFeatures(cfg.inception, device=device, trust=cfg.trust_inception)
            self.real_inc = self.inception.features(self.test_uint8, batch_size=500)
        self.inception_cells = parse_cells(cfg.inception_cells)
        self._fp = None

    def wants_inception(self, method: str, bits: int) -> bool:
        return self.inception is not None and (
            self.inception_cells is None or (method, bits) in self.inception_cells)

    def generate(self, model) -> tuple[torch.Tensor, int]:
        res = sample(model, self.noise, adapter=unet_adapter(model, self.labels, self.cfg.cfg_scale),
                     solver=self.cfg.solver, steps=self.cfg.steps, clip=(-1.0, 1.0),
                     batch_size=self.cfg.batch_size, autocast=self.cfg.autocast)
        return res.x, res.nfe

    @property
    def fp(self) -> dict:
        """Full-precision samples and per-model measurements (computed on first use)."""
        if self._fp is None:
            x, nfe = self.generate(self.model)
            self._fp = {"x": x, "nfe": nfe, "u8": to_uint8(x),
                        "t0": self.t0_outputs(self.model),
                        "inv": self.inversion(self.model) if self.cfg.latent else None}
            self._fp["pred"] = self.classifier.predict(self._fp["u8"])
        return self._fp

    def t0_outputs(self, model) -> torch.Tensor:
        """Paper protocol: velocity at t = 0 on the first 64 test images (null label)."""
        x = self.test_x[:64].to(self.device)
        with torch.no_grad():
            return model(x, torch.zeros(64, device=self.device), None).float().cpu()

    def inversion(self, model) -> torch.Tensor:
        n = min(self.cfg.inversion_images, self.test_x.shape[0])
        vel = guided_velocity(model, None, 0.0)

        def solver(v, x, t_start, t_end):
            return integrate(v, x, solver="midpoint", steps=self.cfg.steps, t_start=t_start,
                             t_end=t_end).x

        return invert(vel, self.test_x[:n].to(self.device), solver=solver, batch_size=500)

    def latent_stats(self, model) -> dict:
        names = list(model.latent_modules())
        n = min(self.cfg.latent_images, self.test_x.shape[0])

        def run(x):
            return model(x, torch.zeros(x.shape[0], device=x.device), None)

        stats = latent_stability(model, run, self.test_x[:n].to(self.device), module_names=names,
                                 batch_size=500, pca_device=self.device)
        return {"latent_down_mean_var": stats[0].mean_variance,
                "latent_down_collapsed": stats[0].collapsed,
                "latent_mid_mean_var": stats[1].mean_variance,
                "latent_mid_collapsed": stats[1].collapsed, "latent_images": n}


def _measure(ctx: _Context, model, method: str, bits: int, qsd) -> tuple[dict, torch.Tensor]:
    cfg, fp = ctx.cfg, ctx.fp
    t_start = time.perf_counter()
    if method == "none":
        x, nfe, u8 = fp["x"], fp["nfe"], fp["u8"]
    else:
        x, nfe = ctx.generate(model)
        u8 = to_uint8(x)
    row = {"dataset": cfg.dataset, "method": method, "bits": bits,
           "granularity": cfg.granularity if method != "none" else "none",
           "samples": cfg.samples, "solver": cfg.solver, "steps": cfg.steps, "nfe": nfe,
           "cfg_scale": cfg.cfg_scale, "seed": cfg.seed, "feature_net": ctx.classifier.name,
           "fid_real_test_samples": int(ctx.real_clf.shape[0]),
           "checkpoint_sha256": ctx.loaded.sha256,
           "classifier_sha256": ctx.classifier.card.get("checkpoint_sha256", ""),
           "device": str(ctx.device), "version": __version__}
    row["fid"] = fid_from_features(ctx.real_clf, ctx.classifier.features(u8))
    if ctx.wants_inception(method, bits):
        row["fid_inception"] = fid_from_features(ctx.real_inc,
                                                 ctx.inception.features(u8, batch_size=500))
        row["inception_net"] = ctx.inception.name
        row["inception_sha256"] = ctx.inception.sha256
    a, b = (fp["x"] + 1) / 2, (x + 1) / 2
    row["psnr"] = psnr(a, b, data_range=1.0).mean
    row["ssim"] = ssim_gaussian(a, b, data_range=1.0).mean
    row["switch_rate"] = float(np.mean(ctx.classifier.predict(u8) != fp["pred"]))
    t0_fp = fp["t0"]
    t0_q = t0_fp if method == "none" else ctx.t0_outputs(model)
    rng = float(t0_fp.max() - t0_fp.min())
    row["psnr_t0_paper"] = psnr(t0_fp, t0_q, data_range=rng).mean
    row["ssim_box_t0_paper"] = ssim_box(t0_fp, t0_q, data_range=rng).mean
    if cfg.latent:
        row.update(ctx.latent_stats(model))
        inv = fp["inv"] if method == "none" else ctx.inversion(model)
        comp = compare_inversions(fp["inv"], inv)
        row["inversion_rel_sq"] = comp.mean_relative_sq_distance
        row["inversion_images"] = comp.n_images
    if qsd is None:
        row.update(bits_per_weight=32.0, weight_mse=0.0, weight_w2=0.0,
                   n_weights=sum(p.numel() for p in model.parameters()))
    else:
        n = qsd.n_weights
        row["bits_per_weight"] = qsd.bits_per_weight
        row["weight_mse"] = qsd.mse
        # size-weighted RMS of the per-tensor exact W2 distances
        row["weight_w2"] = math.sqrt(sum(r.w2 ** 2 * r.n_weights for r in qsd.report) / n)
        row["n_weights"] = n
    row["wall_s"] = round(time.perf_counter() - t_start, 2)
    return row, u8[:64]


def _row_complete(row: dict, wants_inception: bool, latent: bool) -> bool:
    if wants_inception and row.get("fid_inception") is None:
        return False
    if latent and row.get("inversion_rel_sq") is None:
        return False
    return row.get("fid") is not None


def sweep_cells(cfg: SweepConfig, *, defer_inception_cells: bool = False) -> list[Cell]:
    """The cells of ``cfg``: the full-precision row ``("none", 32)``, then every method x bits.

    Each cell's key is its :data:`~fmq_theory.results.schema.SWEEP` row key; its parameters are
    the method and the bit width.  ``defer_inception_cells`` leaves out the cells named in
    ``cfg.inception_cells``.
    """
    inception_cells = parse_cells(cfg.inception_cells)
    n_real = data_mod.prepare(cfg.dataset)["num_test"]
    if cfg.real_images is not None:
        n_real = min(n_real, cfg.real_images)
    cells = []
    for method, bits in [("none", 32)] + [(m, b) for m in cfg.method_list() for b in cfg.bits]:
        if defer_inception_cells and (inception_cells is None or (method, bits) in inception_cells):
            continue
        key = SWEEP.row_key({"dataset": cfg.dataset, "method": method, "bits": bits,
                             "granularity": cfg.granularity if method != "none" else "none",
                             "samples": cfg.samples, "solver": cfg.solver, "steps": cfg.steps,
                             "cfg_scale": cfg.cfg_scale, "seed": cfg.seed, "fid_real_test_samples": n_real})
        cells.append(Cell(key=key, params={"method": method, "bits": bits}))
    return cells


def _load(cfg: SweepConfig, device: str) -> _Context:
    """The shared set-up of a sweep, built once per worker (:func:`~fmq_theory.harness.engine.cached_context`)."""
    return _Context(cfg, torch.device(device), False)


def _cell_task(ctx: _Context, *, method: str, bits: int) -> tuple[dict, np.ndarray]:
    """One cell on a worker: its row and its first 64 samples (uint8)."""
    if method == "none":
        model, qsd = ctx.model, None
    else:
        model, qsd = quantized_model(ctx.model, method=method, bits=bits, granularity=ctx.cfg.granularity)
    row, first = _measure(ctx, model, method, bits, qsd)
    return row, first.numpy()


def run_sweep(cfg: SweepConfig, *, out: Path, device: str = "cpu", progress: bool = True,
              grid_dir: Path | None = None, deadline: float | None = None,
              defer_inception_cells: bool = False, scheduler: str = "none",
              workers: int | None = None, threads: int | None = None) -> EngineReport:
    """Run every missing cell of ``cfg`` through :func:`fmq_theory.harness.engine.run_cells`.

    Parameters
    ----------
    cfg : SweepConfig
    out : pathlib.Path
        Results CSV, the :data:`~fmq_theory.results.schema.SWEEP` table (created if missing;
        rows of other cells are kept).  A cell counts as done when its row holds every metric
        this run asks for.
    device : str
        Device of every worker (on CUDA each cell asks for the resource ``GPU: 1``).
    progress : bool
        Show a progress bar over cells.
    grid_dir : pathlib.Path, optional
        Save the first 64 samples of every cell as ``<dataset>_<method>_<bits>.npy`` (uint8,
        written by the client).
    deadline : float, optional
        Wall-clock time (``time.time()``) after which no new cell is started; the cells
        left are picked up by the next call.
    defer_inception_cells : bool
        Skip the cells named in ``cfg.inception_cells`` (for a run without the Inception
        file whose rows would otherwise be recomputed later).
    scheduler : str
        ``"none"`` (this process), ``"local"`` or a Dask scheduler address.
    workers : int, optional
        Workers of the local cluster (default :func:`~fmq_theory.harness.engine.default_workers`).
    threads : int, optional
        Torch threads of every cell (see :func:`~fmq_theory.harness.engine.run_cells`).

    Returns
    -------
    EngineReport
        ``len(report.written)`` rows were written by this call.
    """
    if not isinstance(cfg, SweepConfig):
        raise TypeError(f"cfg must be a SweepConfig, got {type(cfg).__name__}")
    out = Path(out)
    inception_cells = parse_cells(cfg.inception_cells)

    def is_done(row: dict) -> bool:
        wants = cfg.inception is not None and (inception_cells is None
                                               or (row["method"], row["bits"]) in inception_cells)
        return _row_complete(row, wants, cfg.latent)

    def finish(cell: Cell, result: tuple[dict, np.ndarray]) -> dict:
        row, first = result
        if grid_dir is not None:
            grid_dir.mkdir(parents=True, exist_ok=True)
            np.save(grid_dir / f"{cfg.dataset}_{row['method']}_{row['bits']}.npy", first)
        return row

    if workers is None and scheduler == "local":
        workers = default_workers(device)
    return run_cells(sweep_cells(cfg, defer_inception_cells=defer_inception_cells), task=_cell_task,
                     load=partial(_load, cfg, device), context_key=("sweep", cfg, device), table=SWEEP, out=out,
                     scheduler=scheduler, workers=workers, threads=threads,
                     resources={"GPU": 1} if torch.device(device).type == "cuda" else None,
                     is_done=is_done, finish=finish, deadline=deadline, progress=progress,
                     name=f"sweep {cfg.dataset}")
