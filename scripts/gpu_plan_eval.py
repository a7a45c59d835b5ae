"""GPU: the plan against every peer at equal honest bits per weight -> results/plan_<model>.csv.

For each model (the MNIST UNet, the FashionMNIST UNet, the FashionMNIST DiT, and the paper's
55.7M network trained in the same lease by ``scripts/gpu_paper_arch.py``) and each budget
(bits per weight), every method is put at the same honest bits:

* ``plan``: :func:`fmq_theory.plan.plan_quantization` at ``budget_bits=budget``, data-free: its
  sensitivity comes from ``--plan-samples`` noise draws of seed 1 (never the evaluation's
  noise), fitted once (:func:`fmq_theory.plan.fit_candidates`) for every budget; its
  per-tensor choices go to ``plan_choices_<model>_<budget>.csv``.  ``--plan-bit-floors``
  (default ``1,2,3``) and ``--plan-families`` (default ``optimal,minmax,half_quadratic``) are the plan's
  ``bit_floors`` and code ``families``, the library's defaults, with which every committed
  ``results/plan_*.csv`` plan row was measured: each floor's plan of each family is sampled
  from the plan's noise and the least displaced is kept; the row's setting names it.  The
  results csv keys a row by the method ``plan``, not by the floors or families, so measure
  other settings in a fresh ``--out-dir`` and ``--work``.  ``--match-peer FAMILY`` adds the
  budgets at which that peer's b2, b3 and b4 settings sit on the model, rounded down, so that
  the plan is compared with it at equal honest bits;
* every peer family of :data:`fmq_theory.harness.peers.FAMILIES` at its setting whose honest
  bits per weight are nearest the budget (within 0.75 bits, else no row).

Every quantized model is sampled from the same seeded noise (and balanced labels) as the
full-precision one (midpoint, 10 steps) and measured: FID against the real test split in the
classifier's features and, once the Inception file is there, in InceptionV3's; the
paired-bootstrap interval of FID_q - FID_fp (:func:`fmq_theory.bounds.certify_fid`); PSNR and
SSIM against the paired full-precision samples; the mode-switch rate.  The *predicted* change
(:func:`fmq_theory.bounds.sampled_dfid`) comes from ``--pairs`` other noise draws (seed 2)
sampled by both models, and the full-precision moments.

Every cell (model x budget x method) is one task of the sweep engine
(:func:`fmq_theory.harness.engine.run_cells`, ``--scheduler none`` by default: one process
holds the GPU); the results csv is the single source of truth and a later call resumes.
Quantized weights, samples (uint8) and per-setting metrics are kept under ``--work`` so that a
setting shared by several budgets is sampled once and the Inception FIDs of earlier rows are
added, without sampling again, once the Inception file has arrived.

Run on the GPU through scripts/gpu_lease.sh; on the CPU for a dry run::

    PYTHONPATH=. python scripts/gpu_plan_eval.py --models mnist --budgets 3 --samples 64 --pairs 32 \\
        --families rule:lloyd_max,gguf --plan-samples 8 --device cpu --out-dir /tmp/plan --work /tmp/plan/work
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import functools
import hashlib
import io
import json
import math
import os
import pstats
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from fmq_theory import __version__
from fmq_theory._util import file_sha256, write_atomic
from fmq_theory.bounds import certify_fid, sampled_dfid
from fmq_theory.flow.frechet import gaussian_fit
from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.checkpoints import load_training_run
from fmq_theory.harness.context import Context, load_context
from fmq_theory.harness.data import array_sha256, load
from fmq_theory.harness.engine import Cell, cached_context, run_cells
from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint
from fmq_theory.harness.features.inception import InceptionFeatures
from fmq_theory.harness.metrics import psnr, ssim_gaussian
from fmq_theory.harness.models import architecture_of
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.peers import FAMILIES, peer_at_budget, quantize_peer
from fmq_theory.harness.train import to_uint8
from fmq_theory.plan import default_candidates, fit_candidates, plan_quantization, weight_sensitivity
from fmq_theory.plan.compensation import input_moments
from fmq_theory.plan.core import load_fitted
from fmq_theory.plan.selection import check_families, check_roundings
from fmq_theory.results.schema import PLAN, PLAN_CHOICES

#: Model name -> (dataset, default checkpoint folder).
MODELS = {"mnist": ("mnist", "checkpoints/mnist"), "fashion_mnist": ("fashion_mnist", "checkpoints/fashion_mnist"),
          "dit": ("fashion_mnist", "checkpoints/dit_fashion_mnist"), "paper_arch": ("mnist", "runs/paper_arch_mnist"),
          "paper_arch_fashion_mnist": ("fashion_mnist", "runs/paper_arch_fashion_mnist")}
SOLVER, STEPS, SEED, PLAN_SEED, PAIR_SEED = "midpoint", 10, 0, 1, 2
#: Per-channel exact codebooks of every tensor of a 55.7M network do not fit a lease: the
#: paper's network gets the plan's per-tensor codebooks and its grid and block options only.
LARGE_MODEL_WEIGHTS = 10_000_000


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mnist,fashion_mnist,dit")
    p.add_argument("--checkpoint", action="append", default=[], help="MODEL=FOLDER (default: see MODELS)")
    p.add_argument("--budgets", default="2,2.5,3,4")
    p.add_argument("--families", default="all", help="comma-separated keys of peers.FAMILIES, or 'all'")
    p.add_argument("--with-plan", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--plan-samples", type=int, default=256, help="noise draws of the plan's sensitivity (seed 1)")
    p.add_argument("--plan-replicates", type=int, default=8)
    p.add_argument("--plan-batches-per-pass", type=int, default=1,
                   help="probe batches per vectorized adjoint pass of the sensitivity (weight_sensitivity's batches_per_pass; "
                        "4 measured 1.7x faster than 1 on the paper network, in less memory)")
    p.add_argument("--plan-bit-floors", default="1,2,3", help="the plan's bit_floors, a comma list")
    p.add_argument("--plan-families", default="optimal,minmax,half_quadratic", help="the plan's code families, a comma list")
    p.add_argument("--plan-roundings", default="nearest",
                   help="the plan's roundings, a comma list (nearest,compensated: every variant also with its codes by "
                        "error-compensating rounding against the layers' input moments over the plan's noise); the "
                        "rows keep the method 'plan', so give a fresh --out-dir and --work")
    p.add_argument("--match-peer", default=None,
                   help="a peer family: also plan at its settings' honest bits per weight (rounded down to 1e-4)")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--pairs", type=int, default=1000, help="noise draws (seed 2) of the sampled prediction")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--n-boot", type=int, default=100, help="bootstrap replicates, classifier features")
    p.add_argument("--n-boot-inception", type=int, default=20,
                   help="bootstrap replicates, Inception features (each costs 2048-d eigenvalue problems)")
    p.add_argument("--inception", default=None, help="TorchScript InceptionV3 file (none: classifier FID only)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out-dir", default="runs/results")
    p.add_argument("--work", default="runs/plan_work", help="kept weights, samples and metrics")
    p.add_argument("--deadline", type=float, default=None, help="seconds after which no new cell starts")
    p.add_argument("--prepare-reserve", type=float, default=180,
                   help="seconds before the deadline after which no model that still needs quantizing is started")
    p.add_argument("--real-images", type=int, default=None)
    return p.parse_args()


@dataclass(frozen=True)
class Setup:
    """What a worker needs to build one model's measurement context."""

    name: str
    checkpoint: str
    samples: int
    pairs: int
    batch_size: int
    n_boot: int
    n_boot_inception: int
    inception: str | None
    device: str
    work: str
    real_images: int | None


def _paper_context(folder: Path, *, dataset: str, samples: int, device: torch.device,
                   real_images: int | None) -> Context:
    """The paper's network of a ``scripts/gpu_paper_arch.py`` run folder on ``dataset``, EMA averages in the model."""
    trained = load_training_run(folder, device=device)
    clf = ClassifierFeatures(classifier_checkpoint(dataset), device=device)
    test = torch.as_tensor(load(dataset, "test", limit=real_images).images)
    return Context(dataset=dataset, device=device, trained=trained, classifier=clf,
                   noise=make_noise(samples, (1, 28, 28), seed=SEED), labels=None, test_images=test,
                   real_features=clf.features(test, batch_size=1000))


class Measure:
    """The full-precision reference of one model and the metrics of a quantized copy."""

    def __init__(self, setup: Setup):
        self.setup, self.device = setup, torch.device(setup.device)
        dataset, _ = MODELS[setup.name]
        folder = Path(setup.checkpoint)
        if setup.name.startswith("paper_arch"):
            self.ctx = _paper_context(folder, dataset=dataset, samples=setup.samples, device=self.device,
                                      real_images=setup.real_images)
        else:
            self.ctx = load_context(dataset=dataset, samples=setup.samples, seed=SEED, device=self.device,
                                    checkpoint=folder, real_images=setup.real_images)
        self.work = Path(setup.work) / setup.name
        (self.work / "weights").mkdir(parents=True, exist_ok=True)
        model = self.ctx.model
        self.event = tuple(self.ctx.noise.shape[1:])
        self.pair_noise = make_noise(setup.pairs, self.event, seed=PAIR_SEED)
        n_classes = model.config.num_classes
        self.pair_labels = balanced_labels(setup.pairs, n_classes) if n_classes else None
        clf = self.ctx.classifier
        self.ref = gaussian_fit(self._dev(self.ctx.real_features))
        t0 = time.perf_counter()
        self.fp_x, self.nfe = self._fp_samples("fp", model, self.ctx.noise, self.ctx.labels)
        self.fp_u8 = to_uint8(self.fp_x)
        self.f_fp, self.pred_fp = self._dev(clf.features(self.fp_u8)), clf.predict(self.fp_u8)
        self.fp_pairs_u8 = to_uint8(self._fp_samples("fp_pairs", model, self.pair_noise, self.pair_labels)[0])
        self.f_fp_pairs = self._dev(clf.features(self.fp_pairs_u8))
        print(f"[{setup.name}] {architecture_of(model)} {self.ctx.trained.sha256[:12]}: {setup.samples} + "
              f"{setup.pairs} FP samples in {time.perf_counter() - t0:.1f} s", flush=True)
        self.inception = InceptionFeatures(setup.inception, device=self.device) if setup.inception else None
        if self.inception is not None:
            self.ref_inc = gaussian_fit(self._dev(self._cached_inception("real", self.ctx.test_images)))
            self.inc_fp = self._dev(self._cached_inception("fp", self.fp_u8))
            self.inc_fp_pairs = self._dev(self._cached_inception("fp_pairs", self.fp_pairs_u8))

    def _dev(self, feats) -> torch.Tensor:
        """Features as float64 on the device (the bootstrap's eigendecompositions run there)."""
        return torch.as_tensor(feats, dtype=torch.float64, device=self.device)

    def _cached_inception(self, label: str, u8: torch.Tensor) -> np.ndarray:
        """Inception features of ``u8``, kept under its label and a digest of the images themselves."""
        digest = hashlib.sha256(u8.contiguous().numpy().tobytes()).hexdigest()[:16]
        path = self.work / f"inception_{label}_{u8.shape[0]}_{digest}.npy"
        if not path.is_file():
            np.save(path, self.inception.features(u8, batch_size=500))
        return np.load(path)

    def _fp_samples(self, label: str, model, noise: torch.Tensor, labels) -> tuple[torch.Tensor, int]:
        """The full-precision model's samples of ``noise`` (and ``labels``), kept in the work folder.

        They are kept under a digest of everything they depend on: the checkpoint's SHA-256, the
        noise and labels themselves, the solver, steps, batch size, device type, torch and package
        versions.  A later run on the same model, noise and sampler therefore reads them instead of
        sampling again (the CPU's Inception run of the DiT spent 1,383 s of its 3,176 s on them).
        A change to the sampler's code that leaves the package version as it was needs a fresh
        ``--work`` folder."""
        key = {"checkpoint": self.ctx.trained.sha256, "noise": array_sha256(noise.cpu().numpy()),
               "labels": None if labels is None else array_sha256(labels.cpu().numpy()), "solver": SOLVER, "steps": STEPS,
               "batch_size": self.setup.batch_size, "device": self.device.type, "torch": torch.__version__,
               "version": __version__}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        path = self.work / f"{label}_samples_{noise.shape[0]}_{digest}.pt"
        if path.is_file():
            kept = torch.load(path, weights_only=True)
            return kept["x"], int(kept["nfe"])
        x, nfe = self.generate(model, noise, labels)
        write_atomic(path, lambda tmp: torch.save({"x": x, "nfe": torch.tensor(nfe)}, tmp))
        return x, nfe

    def generate(self, model, noise, labels) -> tuple[torch.Tensor, int]:
        res = sample(model, noise, adapter=unet_adapter(model, labels, 0.0), solver=SOLVER, steps=STEPS, clip=(-1.0, 1.0),
                     batch_size=self.setup.batch_size, autocast=self.device.type == "cuda")
        return res.x, res.nfe

    def base_row(self) -> dict:
        ctx, s = self.ctx, self.setup
        return {"model": s.name, "dataset": ctx.dataset, "architecture": architecture_of(ctx.model), "samples": s.samples,
                "solver": SOLVER, "steps": STEPS, "nfe": self.nfe, "seed": SEED, "feature_net": ctx.classifier.name,
                "fid_real_test_samples": int(ctx.real_features.shape[0]), "checkpoint_sha256": ctx.trained.sha256,
                "classifier_sha256": ctx.classifier.card.get("checkpoint_sha256", ""),
                "device": str(self.device), "version": __version__}

    def classifier_metrics(self, u8: torch.Tensor, x: torch.Tensor, pairs_u8: torch.Tensor) -> dict:
        """Classifier FIDs with paired-bootstrap dFID intervals, PSNR/SSIM and the sampled prediction."""
        clf = self.ctx.classifier
        cert = certify_fid(self.f_fp, self._dev(clf.features(u8)), reference_mean=self.ref[0], reference_cov=self.ref[1],
                           labels_fp=self.pred_fp, labels_q=clf.predict(u8), n_boot=self.setup.n_boot, seed=SEED)
        pred = sampled_dfid(self.f_fp, self.f_fp_pairs, self._dev(clf.features(pairs_u8)), reference_mean=self.ref[0],
                            reference_cov=self.ref[1], n_boot=self.setup.n_boot, seed=SEED)
        a, b = (self.fp_x + 1) / 2, (x + 1) / 2
        return {"fid": cert.fid_q, "fid_fp": cert.fid_fp, "dfid": cert.measured_dfid, "dfid_low": cert.dfid_low,
                "dfid_high": cert.dfid_high, "switch_rate": cert.switch_rate,
                "psnr": psnr(a, b, data_range=1.0).mean, "ssim": ssim_gaussian(a, b, data_range=1.0).mean,
                **_prediction_columns(pred, "predicted_dfid"), "pairs": pred.n_pairs}

    def inception_metrics(self, u8: torch.Tensor, pairs_u8: torch.Tensor) -> dict:
        feats = self._dev(self.inception.features(u8, batch_size=500))
        cert = certify_fid(self.inc_fp, feats, reference_mean=self.ref_inc[0], reference_cov=self.ref_inc[1],
                           n_boot=self.setup.n_boot_inception, seed=SEED)
        pred = sampled_dfid(self.inc_fp, self.inc_fp_pairs, self._dev(self.inception.features(pairs_u8, batch_size=500)),
                            reference_mean=self.ref_inc[0], reference_cov=self.ref_inc[1],
                            n_boot=self.setup.n_boot_inception, seed=SEED)
        return {"fid_inception": cert.fid_q, "fid_inception_fp": cert.fid_fp, "dfid_inception": cert.measured_dfid,
                "dfid_inception_low": cert.dfid_low, "dfid_inception_high": cert.dfid_high,
                **_prediction_columns(pred, "predicted_dfid_inception"),
                "inception_net": self.inception.name, "inception_sha256": self.inception.sha256}


def _prediction_columns(pred, prefix: str) -> dict:
    """The plan table's columns of one sampled prediction (:class:`fmq_theory.bounds.SampledDFID`)
    in one feature net: ``prefix`` is ``predicted_dfid`` or ``predicted_dfid_inception``."""
    return {prefix: pred.value} | {f"{prefix}_{field}": getattr(pred, field) for field in (
        "low", "high", "bias", "extrapolated", "paired", "paired_low", "paired_high", "paired_extrapolated")}


def _safe(label: str) -> str:
    return label.replace("/", "_").replace(":", "_").replace("@", "_at_").replace(" ", "_")


def kept_key(measure: Measure, label: str) -> dict:
    """What the kept files of the cell ``label`` (``work/<label>.*``) are measured from: the evaluation's
    settings (:meth:`Measure.base_row`, the pair and bootstrap counts) and, but for the reference ``fp``,
    the SHA-256 of the weights file sampled.

    :func:`evaluate_cell` reuses kept files only under an equal key.  A label names a setting, not its
    weights: on 2026-12-05 a CPU run of ``gpu_plan_variants.py`` reused, under the same labels, the
    metrics that a 64-sample dry run had kept for other weights.
    """
    key = measure.base_row() | {"pairs": measure.setup.pairs, "n_boot": measure.setup.n_boot,
                                "n_boot_inception": measure.setup.n_boot_inception}
    if label != "fp":
        key["weights_sha256"] = file_sha256(measure.work / "weights" / f"{_safe(label)}.safetensors")
    return key


def evaluate_cell(measure: Measure, *, label: str, budget: float, fields: dict) -> dict:
    """One row: the setting ``label`` (sampled once, kept under :func:`kept_key`) at ``budget``."""
    t0 = time.perf_counter()
    # names by concatenation: replacing the suffix would cut "plan@2.5" at its dot and give it
    # the files of "plan@2"
    kept = {ext: measure.work / f"{_safe(label)}.{ext}" for ext in ("json", "samples.npy", "pairs.npy")}
    metrics_path = kept["json"]
    key = kept_key(measure, label)
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if metrics.get("kept_key") != key:  # kept for other weights or settings: measured again
        metrics = {}
    if "fid" not in metrics:
        if label == "fp":  # the reference's samples, drawn once by Measure
            x, u8, pairs_u8 = measure.fp_x, measure.fp_u8, measure.fp_pairs_u8
        else:
            model = copy.deepcopy(measure.ctx.model)
            sd = load_file(str(measure.work / "weights" / f"{_safe(label)}.safetensors"))
            model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in sd.items()}, strict=True)
            model.eval()
            x, _ = measure.generate(model, measure.ctx.noise, measure.ctx.labels)
            u8 = to_uint8(x)
            pairs_u8 = to_uint8(measure.generate(model, measure.pair_noise, measure.pair_labels)[0])
        np.save(kept["samples.npy"], u8.numpy())
        np.save(kept["pairs.npy"], pairs_u8.numpy())
        metrics = measure.classifier_metrics(u8, x, pairs_u8) | {"wall_s": round(time.perf_counter() - t0, 2)}
        if label == "fp":  # the reference itself: no PSNR/SSIM against itself (an infinite PSNR)
            metrics = {k: v for k, v in metrics.items() if k not in ("psnr", "ssim")}
        metrics["kept_key"] = key
        metrics_path.write_text(json.dumps(metrics))
    if measure.inception is not None and "fid_inception" not in metrics:
        u8 = torch.from_numpy(np.load(kept["samples.npy"]))
        pairs_u8 = torch.from_numpy(np.load(kept["pairs.npy"]))
        metrics |= measure.inception_metrics(u8, pairs_u8)
        metrics_path.write_text(json.dumps(metrics))
    metrics = {k: v for k, v in metrics.items() if k in PLAN.names}
    return measure.base_row() | fields | metrics | {"budget": budget}


#: The fields of a CPU experiment's row (:meth:`CpuExperiment.record`).
CPU_ROW_FIELDS = ("method", "setting", "bits_per_weight", "fid", "fid_fp", "dfid", "dfid_low", "dfid_high",
                  "predicted_dfid", "psnr", "budget")


@dataclass
class CpuExperiment:
    """The shared set-up of a CPU experiment on one committed model (``scripts/plan_*_cpu.py``).

    :meth:`start` builds the harness of ``name`` (``samples`` noise draws of seed 0, ``pairs``
    other draws for the sampled prediction, classifier features only), the plan's own noise
    (``samples`` draws of :data:`PLAN_SEED`) with balanced labels, the weight sensitivity on
    that noise (8 replicates, as the GPU run) and, with ``fit``, the default candidates fitted
    once.  :meth:`record` keeps a state dict, samples and measures it with
    :func:`evaluate_cell`, and appends its row to ``rows``; :meth:`record_peer` does so for a
    peer family; :meth:`write` writes the rows and their provenance as JSON.
    """

    measure: Measure
    noise: torch.Tensor
    labels: torch.Tensor
    sensitivity: object
    sensitivity_s: float
    fitted: object
    setup_s: float
    rows: list

    @classmethod
    def start(cls, *, name: str, samples: int, pairs: int, work: str, fit: bool = False,
              progress: bool = False) -> "CpuExperiment":
        start = time.perf_counter()
        setup = Setup(name=name, checkpoint=MODELS[name][1], samples=samples, pairs=pairs, batch_size=samples,
                      n_boot=100, n_boot_inception=10, inception=None, device="cpu", work=work, real_images=None)
        measure = Measure(setup)
        model = measure.ctx.model
        noise = make_noise(samples, measure.event, seed=PLAN_SEED)
        labels = balanced_labels(samples, model.config.num_classes)
        t0 = time.perf_counter()
        sens = weight_sensitivity(model, noise, adapter=unet_adapter(model, labels, 0.0), solver=SOLVER, steps=STEPS,
                                  replicates=8, batch_size=32, seed=PLAN_SEED, progress=progress)
        sensitivity_s = time.perf_counter() - t0
        fitted = fit_candidates(model, sensitivity=sens, workers=2, progress=progress) if fit else None
        return cls(measure, noise, labels, sens, sensitivity_s, fitted, time.perf_counter() - start, [])

    @property
    def model(self) -> torch.nn.Module:
        return self.measure.ctx.model

    def adapter(self, n: int | None = None):
        """How the plan samples its variants: the model's adapter with the plan's labels (the first
        ``n``, for the first ``n`` noise draws), no guidance."""
        return unet_adapter(self.model, self.labels[:n], 0.0)

    def record(self, label: str, state_dict: dict, fields: dict, *, budget: float, keep: tuple = CPU_ROW_FIELDS,
               **extra) -> dict:
        """Keep ``state_dict`` as the weights of ``label``, sample and measure it; its row (the
        ``keep`` fields and ``extra``) is appended to ``rows``, printed and returned."""
        save_file({k: v.detach().cpu().float().contiguous() for k, v in state_dict.items()},
                  str(self.measure.work / "weights" / f"{_safe(label)}.safetensors"))
        row = evaluate_cell(self.measure, label=label, budget=budget, fields=fields)
        self.rows.append({k: row.get(k) for k in keep} | extra)
        print(json.dumps(self.rows[-1]), flush=True)
        return self.rows[-1]

    def record_peer(self, family: str, *, near: float):
        """Record the peer ``family`` at its setting nearest ``near`` bits per weight, at its own
        bits per weight; returns its :func:`~fmq_theory.harness.peers.peer_at_budget` result."""
        q = peer_at_budget({k: v.detach().cpu() for k, v in self.model.state_dict().items()}, family=family,
                           budget=near, cache={})
        self.record(q.label, q.state_dict, {"method": family, "setting": q.setting,
                                            "bits_per_weight": q.bits_per_weight}, budget=q.bits_per_weight)
        return q

    def write(self, path, *, command: str, **extra) -> None:
        """Write ``rows`` to ``path`` as JSON: ``command`` and this machine as the provenance, the
        model and the sample counts, then ``extra``."""
        setup = self.measure.setup
        provenance = f"{command}, run on {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores"
        Path(path).write_text(json.dumps({
            "provenance": provenance, "model": f"{setup.name} ({setup.checkpoint})", "samples": setup.samples,
            "pairs": setup.pairs, "feature_net": "classifier", **extra, "rows": self.rows}, indent=1))


def _plan_candidates(n_total: int):
    if n_total < LARGE_MODEL_WEIGHTS:
        return None
    return lambda name, shape, n: tuple(c for c in default_candidates(shape, n_weights=n)
                                        if c.method not in ("lloyd_max", "weighted_lloyd") or c.granularity == "tensor")


def prepare(measure: Measure, *, budgets, families, with_plan: bool, plan_samples: int, plan_replicates: int,
            plan_bit_floors: tuple, plan_families: tuple, out_dir: Path, plan_batches_per_pass: int = 1,
            plan_roundings: tuple = ("nearest",), evaluate: Callable[[dict], None] = lambda labels: None,
            done: Callable[[float, str], bool] = lambda budget, method: False) -> dict:
    """Quantize every setting once: ``label -> [row fields, budgets]``, weights kept under the work folder.

    ``evaluate(labels)`` is called with the settings made so far after every plan and every
    peer family of a budget, so that their cells are measured while the rest is quantized: on the
    55.7M network the set-up (sensitivity, fit, plans, peers) outlasted a whole call, and a call
    that measured nothing until every setting was made ended with no row (2026-12-03).

    The assignment is saved after every plan and every peer family of a budget, so that a call
    stopped part-way (the 55.7M network's set-up takes most of one) goes on where it stopped, even
    with other peer families or budgets (:func:`resumed`): plans of the same plan settings and
    peers already quantized are not made again.  A file without ``complete`` is a finished one
    (the runs before this key).  The fitted candidates (with the sensitivity they were fitted and
    scored with) are saved too, as ``fitted_<key>.npz`` keyed by the plan's noise draws and
    replicates (:meth:`fmq_theory.plan.FittedCandidates.save`; the weights are checked when it is
    read), so that a later call makes other budgets' plans without fitting again.

    ``done(budget, method)`` says whether the table already holds that cell measured (e.g. rows of
    an earlier lease on the same network, ``KEEP_ROWS``): such a plan or peer is not made at all.
    On 2026-12-05 a call whose budget-4 peers were all done rows would have quantized them again
    for 356 s of its 484."""
    path = measure.work / "assignment.json"
    plan_key = {"with_plan": with_plan, "plan_samples": plan_samples}
    if plan_bit_floors != (1,):  # the assignments of the first runs (floor 1) were made without the key
        plan_key["plan_bit_floors"] = list(plan_bit_floors)
    if plan_families != ("optimal",):  # nor with this one
        plan_key["plan_families"] = list(plan_families)
    if plan_roundings != ("nearest",):
        plan_key["plan_roundings"] = list(plan_roundings)
    saved = json.loads(path.read_text()) if path.is_file() else {}
    if "complete" not in saved and saved and all(saved.get(k) == v for k, v in
                                                 (plan_key | {"budgets": budgets, "families": families}).items()):
        return saved["labels"]  # a finished file of the runs before the resume keys
    model = measure.ctx.model
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    floating = [k for k, v in sd.items() if v.is_floating_point()]
    n_float = sum(sd[k].numel() for k in floating)

    def keep(label: str, deq: dict) -> float:
        save_file({k: v.float().contiguous() for k, v in deq.items()}, str(measure.work / "weights" / f"{_safe(label)}.safetensors"))
        return sum(float(((deq[k].double() - sd[k].double()) ** 2).sum()) for k in floating) / n_float

    labels, peers_done = resumed(saved, plan_key=plan_key, budgets=budgets, families=families)
    labels = {"fp": [{"method": "none", "setting": "fp32", "bits_per_weight": 32.0, "total_bits": 32 * n_float,
                      "n_weights": n_float, "fp16_weights": 0, "weight_mse": 0.0}, [32.0]]} | labels

    def save(complete: bool = False) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(plan_key | {"budgets": budgets, "families": families, "labels": labels,
                                              "complete": complete, "peers_done": sorted(peers_done)}))
        os.replace(tmp, path)

    plan_budgets = [b for b in budgets if f"plan@{b:g}" not in labels and not done(b, "plan")]
    # the vectorized pass equals the loop to rounding, not bit for bit: its fit is kept apart (the loop's key as before)
    vectorized = {"batches_per_pass": plan_batches_per_pass} if plan_batches_per_pass > 1 else {}
    fit_key = json.dumps({"plan_samples": plan_samples, "plan_replicates": plan_replicates} | vectorized, sort_keys=True)
    fit_path = measure.work / f"fitted_{hashlib.sha256(fit_key.encode()).hexdigest()[:16]}.npz"
    if with_plan and plan_budgets:
        noise = make_noise(plan_samples, measure.event, seed=PLAN_SEED)
        n_classes = model.config.num_classes
        plan_labels = balanced_labels(plan_samples, n_classes) if n_classes else None
        adapter = unet_adapter(model, plan_labels, 0.0)
        fitted, t_sens = _saved_fit(fit_path, model=model, key=fit_key)
        if fitted is None:
            t0 = time.perf_counter()
            sens = weight_sensitivity(model, noise.to(measure.device), adapter=adapter,
                                      solver=SOLVER, steps=STEPS, replicates=plan_replicates, batch_size=32,
                                      batches_per_pass=plan_batches_per_pass, seed=PLAN_SEED, progress=True)
            t_sens = time.perf_counter() - t0
            fitted = fit_candidates(model, sensitivity=sens, candidates=_plan_candidates(n_float),
                                    workers=min(16, os.cpu_count() or 1), progress=True)
            t0 = time.perf_counter()
            fitted.save(fit_path, model=model, metadata={"key": fit_key, "sensitivity_seconds": t_sens})
            print(f"[{measure.setup.name}] plan: sensitivity {t_sens:.1f} s, fitting {fitted.seconds:.1f} s, "
                  f"fit saved in {time.perf_counter() - t0:.1f} s", flush=True)
        moments = None
        if "compensated" in plan_roundings:  # the layers' input moments over the plan's own noise, once for every budget
            t0 = time.perf_counter()
            moments = input_moments(model, noise.to(measure.device), adapter=adapter, solver=SOLVER, steps=STEPS,
                                    batch_size=min(plan_samples, 256), progress=True)
            t_sens += time.perf_counter() - t0
            print(f"[{measure.setup.name}] plan: layer input moments {time.perf_counter() - t0:.1f} s", flush=True)
        for budget in plan_budgets:
            plan = _profiled(lambda: plan_quantization(model, budget_bits=budget, adapter=adapter, noise=noise,
                                                       fitted=fitted, bit_floors=plan_bit_floors,
                                                       families=plan_families, roundings=plan_roundings,
                                                       moments=moments, progress=False))
            deq = {k: v.detach().cpu().float() for k, v in plan.state_dict().items()}
            label = f"plan@{budget:g}"
            d = plan.predicted_delta
            grouped = ", groups" if plan.settings.get("grouping") == "groups" else ""
            chosen = ("" if (plan_bit_floors, plan_families) == ((1,), ("optimal",))
                      else f" ({plan.settings['family']}, floor {plan.settings['bit_floor']}{grouped})")
            chosen += f", {plan.settings['rounding']} codes" if plan_roundings != ("nearest",) else ""
            labels[label] = [{"method": "plan", "setting": f"budget {budget:g}{chosen}", "bits_per_weight": plan.bits_per_weight,
                              "total_bits": 8 * plan.total_bytes, "n_weights": n_float,
                              "fp16_weights": sum(c.n_weights for c in plan.choices if c.method == "float16"),
                              "weight_mse": keep(label, deq), "plan_displacement": d.value,
                              "plan_displacement_low": d.low, "plan_displacement_high": d.high,
                              "plan_seconds": round(t_sens + plan.settings["seconds"], 1)}, [budget]]
            _write_choices(plan, out_dir / f"plan_choices_{measure.setup.name}_{budget:g}.csv")
            print(f"[{measure.setup.name}] plan at {budget:g}: {plan.settings['family']} floor {plan.settings['bit_floor']}"
                  f"{grouped}, "
                  f"{plan.settings['seconds'] - fitted.seconds:.1f} s (knapsack frontier peak "
                  f"{plan.settings['frontier_peak']:,})", flush=True)
            save()
            evaluate(labels)
    cache: dict = {}
    for budget in budgets:
        t0 = time.perf_counter()
        for family in families:
            if _peer_key(budget, family) in peers_done or done(budget, family):
                continue
            t1 = time.perf_counter()
            q = peer_at_budget(sd, family=family, budget=budget, cache=cache)
            print(f"[{measure.setup.name}] budget {budget:g}: {family} {'-' if q is None else q.setting} "
                  f"in {time.perf_counter() - t1:.1f} s", flush=True)
            if q is not None:
                if q.label not in labels:
                    fp16 = sum(q.state_dict[k].numel() for k, f in q.tensor_format.items() if f == "fp16")
                    labels[q.label] = [{"method": family, "setting": q.setting, "bits_per_weight": q.bits_per_weight,
                                        "total_bits": q.total_bits, "n_weights": q.n_weights, "fp16_weights": fp16,
                                        "weight_mse": keep(q.label, q.state_dict)}, []]
                labels[q.label][1].append(budget)
            peers_done.add(_peer_key(budget, family))
            save()
            if q is not None:
                evaluate(labels)
        print(f"[{measure.setup.name}] budget {budget:g}: peers quantized in {time.perf_counter() - t0:.1f} s", flush=True)
    save(complete=True)
    return labels


def _profiled(make: Callable, *, callers_of: int = 5):
    """``make()``; with ``FMQ_PROFILE_PLAN`` set, under :mod:`cProfile`: the 25 functions of most own
    time printed, then who called each of the first ``callers_of``.

    On the 55.7M network one plan took 74-107 s on the H200 while its sampling takes ~10 s. The
    lease of 2026-12-03 (sixteenth period) profiled one plan of 100.4 s: 48.3 s in 39 waits on a
    ``_thread.lock`` and 18.9 s in :func:`~fmq_theory.plan.knapsack.solve_mckp`'s own lines (6
    calls), model calls ~3 s; the same plan of a width-32 copy on 2 CPU cores spends no time in a
    lock and 0.3 s in the solver. The callers say which code waits."""
    if not os.environ.get("FMQ_PROFILE_PLAN"):
        return make()
    profile = cProfile.Profile()
    result = profile.runcall(make)
    stream = io.StringIO()
    stats = pstats.Stats(profile, stream=stream).sort_stats("tottime")
    stats.print_stats(25)
    stats.print_callers(callers_of)  # an int restriction: the first entries in the same order
    print(stream.getvalue(), flush=True)
    return result


def _peer_key(budget: float, family: str) -> str:
    return f"{budget:g} {family}"


def resumed(saved: dict, *, plan_key: dict, budgets: list, families: list) -> tuple[dict, set]:
    """What a saved assignment (``assignment.json``, possibly of other settings) gives a new call.

    Returns ``(labels, peers_done)``: the settings already made that this call still wants, as
    ``label -> [row fields, budgets]``, and the ``"<budget> <family>"`` pairs already quantized.
    A plan is kept when the plan's own settings ``plan_key`` are the saved ones, whatever the
    peers; a peer setting is kept for the wanted budgets at which its family was quantized.  On
    2026-12-03 a call that only reordered the peer families dropped the whole file and fitted
    and planned the 55.7M network again (~290 s), so that no peer was reached before its stop.
    Files of the runs before ``peers_done`` (``peer_budgets_done``: whole budgets) are read too.

    Examples
    --------
    >>> saved = {"with_plan": True, "plan_samples": 8, "families": ["gguf", "nf4"],
    ...          "labels": {"plan@3": [{"method": "plan"}, [3.0]], "gguf/Q2_K": [{"method": "gguf"}, [2.0, 3.0]]},
    ...          "peers_done": ["2 gguf", "3 gguf"]}
    >>> labels, done = resumed(saved, plan_key={"with_plan": True, "plan_samples": 8}, budgets=[3.0],
    ...                        families=["nf4", "gguf"])
    >>> labels, sorted(done)
    ({'plan@3': [{'method': 'plan'}, [3.0]], 'gguf/Q2_K': [{'method': 'gguf'}, [3.0]]}, ['3 gguf'])
    """
    same_plan = bool(saved) and all(saved.get(k) == v for k, v in plan_key.items())
    wanted = {_peer_key(b, f) for b in budgets for f in families}
    done = wanted & (set(saved.get("peers_done", []))
                     | {_peer_key(b, f) for b in saved.get("peer_budgets_done", []) for f in saved.get("families", [])})
    labels = {}
    for label, (fields, label_budgets) in saved.get("labels", {}).items():
        method = fields["method"]
        if method == "plan":
            kept = [b for b in label_budgets if same_plan and b in budgets]
        else:
            kept = [b for b in label_budgets if _peer_key(b, method) in done]
        if kept:
            labels[label] = [fields, kept]
    return labels, done


def _saved_fit(path: Path, *, model: torch.nn.Module, key: str) -> tuple:
    """The fit saved at ``path`` (named by a hash of the settings ``key``) and its sensitivity's
    seconds, or ``(None, None)`` when there is none, or one of other settings or of other weights."""
    if not path.is_file():
        return None, None
    t0 = time.perf_counter()
    try:
        fitted, metadata = load_fitted(path, model=model, workers=min(16, os.cpu_count() or 1))
    except ValueError as err:
        print(f"fit at {path} not used: {err}", flush=True)
        return None, None
    if metadata.get("key") != key:
        print(f"fit at {path} not used: saved for other settings", flush=True)
        return None, None
    print(f"plan: fit of {fitted.seconds:.1f} s read from {path} in {time.perf_counter() - t0:.1f} s", flush=True)
    return fitted, metadata["sensitivity_seconds"]


def _write_choices(plan, path: Path) -> None:
    PLAN_CHOICES.write(path, [{"name": c.name, "method": c.method, "bits": c.bits, "granularity": c.granularity,
                               "storage": c.storage, "n_weights": c.n_weights, "nbytes": c.nbytes,
                               "bits_per_weight": c.bits_per_weight, "mse": c.mse, "gain": c.gain,
                               "predicted": c.predicted} for c in plan.choices])


def matched_budgets(model: torch.nn.Module, *, family: str, settings=("b2", "b3", "b4")) -> list:
    """The honest bits per weight of ``family`` at ``settings`` on ``model``, each rounded down to
    1e-4: a plan at such a budget never holds more bits than the peer it is compared with."""
    if family not in FAMILIES:
        raise SystemExit(f"--match-peer: {family!r} is not among {list(FAMILIES)}")
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return [math.floor(quantize_peer(sd, family=family, setting=s).bits_per_weight * 1e4) / 1e4 for s in settings]


def _load_measure(setup: Setup) -> Measure:
    return Measure(setup)


def evaluate_model(name: str, args, deadline: float | None) -> None:
    out_dir = Path(args.out_dir)
    folders = dict(item.split("=", 1) for item in args.checkpoint)
    setup = Setup(name=name, checkpoint=folders.get(name, MODELS[name][1]), samples=args.samples, pairs=args.pairs,
                  batch_size=args.batch_size, n_boot=args.n_boot, n_boot_inception=args.n_boot_inception,
                  inception=args.inception, device=args.device, work=args.work, real_images=args.real_images)
    load = functools.partial(_load_measure, setup)
    measure = cached_context(setup, load)  # the client is the one worker: the set-up is built once
    budgets = [float(b) for b in args.budgets.split(",")]
    if args.match_peer:
        budgets += matched_budgets(measure.ctx.model, family=args.match_peer)
    families = list(FAMILIES) if args.families == "all" else args.families.split(",")
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise SystemExit(f"--families: {unknown} are not among {list(FAMILIES)}")
    base = measure.base_row()
    want_inc = measure.inception is not None
    out = out_dir / f"plan_{name}.csv"

    def is_done(row: dict) -> bool:
        return row.get("fid") is not None and (not want_inc or row.get("fid_inception") is not None)

    done_before = PLAN.done_keys(out, is_done=is_done)  # the cells this call makes are not in it, and not made twice

    def done(budget: float, method: str) -> bool:
        return PLAN.row_key(base | {"budget": budget, "method": method}) in done_before

    def evaluate(labels: dict):  # every cell of the settings made so far; rows already measured are skipped
        cells = [Cell(key=PLAN.row_key(base | {"budget": b, "method": fields["method"]}),
                      params={"label": label, "budget": b, "fields": fields})
                 for label, (fields, label_budgets) in labels.items() for b in label_budgets]
        report = run_cells(cells, task=evaluate_cell, load=load, context_key=setup, table=PLAN,
                           out=out, scheduler="none", is_done=is_done,
                           deadline=deadline, name=f"plan {name}")
        print(f"[{name}] {len(report.written)} rows written, {report.skipped} done before, {report.not_started} left, "
              f"{len(report.failed)} failed, {report.wall_s:.1f} s", flush=True)
        for key, tb in report.failed:
            print(f"[{name}] FAILED {key}:\n{tb}", flush=True)

    labels = prepare(measure, budgets=budgets, families=families, with_plan=args.with_plan,
                     plan_samples=args.plan_samples, plan_replicates=args.plan_replicates,
                     plan_batches_per_pass=args.plan_batches_per_pass,
                     plan_bit_floors=tuple(int(f) for f in args.plan_bit_floors.split(",")),
                     plan_families=check_families(args.plan_families.split(",")), out_dir=out_dir,
                     plan_roundings=check_roundings(args.plan_roundings.split(",")), evaluate=evaluate, done=done)
    evaluate(labels)


def main() -> None:
    args = _args()
    deadline = time.time() + args.deadline if args.deadline else None
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"--models: {name!r} is not among {sorted(MODELS)}")
        saved = Path(args.work) / name / "assignment.json"
        prepared = saved.is_file() and json.loads(saved.read_text()).get("complete", True)
        if deadline is not None and time.time() > deadline - (0 if prepared else args.prepare_reserve):
            print(f"deadline: model {name} left for the next call", flush=True)
            continue
        evaluate_model(name, args, deadline)


if __name__ == "__main__":
    main()
