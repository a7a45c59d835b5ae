"""Plan sweeps: one data-free mixed-precision plan per bit budget, each budget a cell of the engine.

``fmq plan CHECKPOINT --budget 2,2.5,3 -o OUT.safetensors`` plans the same checkpoint at
several honest bits-per-weight budgets.  Every plan
(:func:`fmq_theory.plan.plan_quantization`) needs the per-weight sensitivity of the sampler's
output (:func:`fmq_theory.plan.weight_sensitivity`; backward passes through every solver step
for every noise sample) and every candidate quantizer of every tensor fitted and scored with it
(:func:`fmq_theory.plan.fit_candidates`).  Neither depends on the budget, and together they are
nearly all of a plan's time, so they are the shared set-up of the sweep, built once per worker
by :func:`fmq_theory.harness.engine.cached_context`.  Each budget is one cell of
:func:`fmq_theory.harness.engine.run_cells` that only solves the knapsack over the shared fits
and assembles the plan (:func:`fmq_theory.plan.plan_quantization` with ``fitted=``).

The sensitivity is estimated and the candidates fitted exactly as ``fmq plan`` with one budget
does it (the same noise from ``seed``, balanced class labels, ``torch.manual_seed(seed)``
first, the default candidates, held-out scoring), and the variants of ``bit_floors``,
``families`` and ``groupings`` are sampled from that noise with those labels, so the plan of a budget in a sweep is the plan of
that budget alone, tensor for tensor, at the same torch thread count (CPU sums depend on it).

Outputs, all written by the client as each cell completes:

* the plan of budget ``b`` in :func:`budget_output` of ``OUT`` and ``b``: the budget inserted
  before the suffix, ``plan.safetensors`` -> ``plan_b2.5.safetensors`` (the budget as Python
  writes the float, so distinct budgets give distinct files), written by
  :meth:`~fmq_theory.plan.QuantizationPlan.save` (atomically);
* one row per budget in the results csv, the :data:`~fmq_theory.results.schema.PLAN_SWEEP`
  table, keyed by the checkpoint's SHA-256, the budget, the sensitivity settings, the bit
  floors (``"1,2"``) and the output path.  A budget counts as done when its row is there and its output file still has
  the row's SHA-256, so an interrupted sweep resumes with the budgets it lacks, and a plan file
  that was removed or changed is planned again.

``output_sha256`` and ``file_bytes`` identify the file (its header holds the output path and
the plan's wall time, so they differ between runs); ``data_sha256`` and ``data_bytes`` are the
SHA-256 and size of the file's tensor data alone (every code, codebook, scale and kept tensor),
equal across runs, schedulers and workers whenever the plan is.

References
----------
The plan: :mod:`fmq_theory.plan.core`; the engine: :mod:`fmq_theory.harness.engine`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from safetensors.torch import load_file

from fmq_theory import __version__
from fmq_theory._util import check_positive_int, file_sha256
from fmq_theory.flow.solvers import balanced_labels, make_noise
from fmq_theory.flow.velocity import Adapter
from fmq_theory.harness.checkpoints import (CARD_FILE, RUN_RECORD, WEIGHTS_FILE, load_trained_model,
                                           load_training_run, run_record)
from fmq_theory.harness.engine import Cell, EngineReport, run_cells
from fmq_theory.harness.models.unet import UNet, UNetConfig, unet_adapter
from fmq_theory.plan import FittedCandidates, QuantizationPlan, fit_candidates, plan_quantization, weight_sensitivity
from fmq_theory.plan.selection import check_bit_floors, check_families, check_groupings
from fmq_theory.results.schema import PLAN_SWEEP
from fmq_theory.vocab import FIXED_STEP_SOLVERS

__all__ = ["PlanSweepConfig", "budget_output", "load_plan_model", "plan_sweep_cells", "run_plan_sweep"]


@dataclass(frozen=True)
class PlanSweepConfig:
    """The model and the sensitivity settings shared by every budget of a plan sweep.

    Attributes
    ----------
    checkpoint : str
        A checkpoint folder of the harness (``model.safetensors`` plus ``model_card.json``) or
        a ``.safetensors`` state dict of the package's UNet (with ``model_config``).
    model_config : str or None
        JSON file of the :class:`~fmq_theory.harness.models.unet.UNetConfig` of a
        ``.safetensors`` checkpoint.
    samples, seed, solver, steps, projections, replicates, batch_size
        Of :func:`fmq_theory.plan.weight_sensitivity`: Gaussian noise samples drawn from
        ``seed``, the deployed fixed-step solver and its steps, random projections per batch,
        independent replicates (at least 4: the candidates are fitted to one half and scored
        with the other, :func:`fmq_theory.plan.fit_candidates`), samples per backward pass.
    bit_floors : tuple of int
        Of :func:`fmq_theory.plan.plan_quantization`: the bit floors whose plans are sampled
        and compared.
    families : tuple of str
        Of :func:`fmq_theory.plan.plan_quantization`: the code families each floor is planned
        with (one floor and one family: no sampling).
    groupings : tuple of str
        Of :func:`fmq_theory.plan.plan_quantization`: the granularities each (family, floor) is
        planned with.
    """

    checkpoint: str
    model_config: str | None = None
    samples: int = 64
    seed: int = 0
    solver: str = "midpoint"
    steps: int = 10
    projections: int = 1
    replicates: int = 4
    batch_size: int = 16
    bit_floors: tuple = (1, 2, 3)
    families: tuple = ("optimal", "minmax", "half_quadratic")
    groupings: tuple = ("any",)

    def __post_init__(self):
        object.__setattr__(self, "bit_floors", check_bit_floors(self.bit_floors))
        object.__setattr__(self, "families", check_families(self.families))
        object.__setattr__(self, "groupings", check_groupings(self.groupings))
        for name in ("samples", "steps", "projections", "replicates", "batch_size"):
            object.__setattr__(self, name, check_positive_int(getattr(self, name), name=name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed={self.seed!r} must be an int")
        if self.solver not in FIXED_STEP_SOLVERS:
            raise ValueError(f"solver={self.solver!r} must be one of {FIXED_STEP_SOLVERS}")
        if self.replicates < 4:
            raise ValueError(f"replicates={self.replicates} must be at least 4 (the candidates are fitted to one "
                             "half of the replicates and scored, with an interval, with the other)")
        if self.replicates > self.samples:
            raise ValueError(f"replicates={self.replicates} exceeds samples={self.samples}")


def budget_output(out, budget: float) -> Path:
    """The plan file of ``budget`` in a sweep written to ``out``: the budget before the suffix.

    >>> budget_output("plans/mnist.safetensors", 2.5).as_posix()
    'plans/mnist_b2.5.safetensors'
    >>> budget_output("mnist.safetensors", 3).as_posix()
    'mnist_b3.0.safetensors'
    """
    out = Path(out)
    return out.with_name(f"{out.stem}_b{float(budget)!r}{out.suffix}")


def load_plan_model(checkpoint: str, model_config: str | None = None) -> torch.nn.Module:
    """The velocity model of ``fmq plan``, from any of the package's checkpoint forms.

    ``checkpoint`` is a checkpoint folder (``model.safetensors`` + ``model_card.json``), a run
    folder of the paper's network (``train.json`` beside its weights, as
    ``scripts/gpu_paper_arch.py train`` writes it: :func:`~fmq_theory.harness.checkpoints.load_training_run`),
    a checkpoint file of facebookresearch/flow_matching's image example (``.pth`` or
    ``.safetensors``, EMA wrapper included: rebuilt as the paper's network with its averages,
    :func:`~fmq_theory.harness.checkpoints.load_trained_model`), or a UNet ``.safetensors``
    file with its config JSON in ``model_config``.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing checkpoint or config file, a config given with a folder, a file that is
        neither a flow_matching checkpoint nor given a config, a config that is not a
        ``UNetConfig`` (each naming the argument).
    """
    path = Path(checkpoint)
    if path.is_dir():
        if model_config is not None:
            raise ValueError("argument --model-config: not used with a checkpoint folder (its card has the config)")
        if _is_run_folder(path):
            return load_training_run(path).model
        return load_trained_model(path).model
    if not path.is_file():
        raise FileNotFoundError(f"argument CHECKPOINT: no such file or folder {checkpoint!r}")
    if model_config is None:
        try:
            return load_trained_model(path).model
        except ValueError as exc:
            raise ValueError(f"argument --model-config: needed when CHECKPOINT is a UNet .safetensors file "
                             f"({checkpoint!r} is not a flow_matching image-example checkpoint: {exc})") from exc
    if not os.path.isfile(model_config):
        raise FileNotFoundError(f"argument --model-config: no such file {model_config!r}")
    try:
        config = UNetConfig.from_dict(json.loads(Path(model_config).read_text()))
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"argument --model-config: not a UNetConfig JSON file ({exc})") from exc
    model = UNet(config)
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()


def _is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a training run folder of the paper's network (its record, no model card)."""
    return path.is_dir() and (path / RUN_RECORD).is_file() and not (path / CARD_FILE).is_file()


def _weights_sha256(checkpoint: str) -> str:
    """The SHA-256 that names the planned network in the sweep's rows (``checkpoint_sha256``).

    A run folder is named by its training: its record's ``checkpoint_sha256``, the SHA-256 of the
    EMA wrapper's file ``ema.safetensors`` (a flow_matching checkpoint), which the paper network's
    result rows carry too, whichever weights file the folder is read from
    (:func:`load_plan_model` checks that file against the record).  So the network has one name
    whether a user plans the run folder or its ``ema.safetensors`` alone.  Anything else is named
    by the file read: a checkpoint folder's ``model.safetensors``, or the checkpoint file itself.
    """
    path = Path(checkpoint)
    if _is_run_folder(path):
        return run_record(path)["checkpoint_sha256"]
    return file_sha256(path / WEIGHTS_FILE if path.is_dir() else path)


@dataclass(frozen=True, eq=False)
class _Setup:
    """What every budget shares: the model, its noise and adapter, the sensitivity and the fitted candidates."""

    model: torch.nn.Module
    noise: torch.Tensor
    adapter: Adapter
    fitted: FittedCandidates
    sensitivity_s: float


def _setup(cfg: PlanSweepConfig) -> _Setup:
    """The shared set-up, built once per worker (:func:`~fmq_theory.harness.engine.cached_context`)."""
    model = load_plan_model(cfg.checkpoint, cfg.model_config)
    c = model.config
    noise = make_noise(cfg.samples, (c.in_channels, c.image_size, c.image_size), seed=cfg.seed)
    labels = balanced_labels(cfg.samples, c.num_classes) if c.num_classes else None
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    adapter = unet_adapter(model, labels)
    sensitivity = weight_sensitivity(model, noise, adapter=adapter, solver=cfg.solver,
                                     steps=cfg.steps, projections=cfg.projections, replicates=cfg.replicates,
                                     batch_size=cfg.batch_size, seed=cfg.seed, progress=False)
    sensitivity_s = time.perf_counter() - start
    return _Setup(model, noise, adapter, fit_candidates(model, sensitivity=sensitivity, progress=False), sensitivity_s)


def _plan_task(setup: _Setup, *, budget: float, bit_floors: tuple, families: tuple,
               groupings: tuple) -> tuple[QuantizationPlan, dict]:
    """One cell on a worker: the plan of ``budget`` from the shared fits (a knapsack per floor, the
    variants sampled); and the timings."""
    start = time.perf_counter()
    plan = plan_quantization(setup.model, budget_bits=budget, adapter=setup.adapter, noise=setup.noise,
                             fitted=setup.fitted, bit_floors=bit_floors, families=families, groupings=groupings,
                             progress=False)
    return plan, {"sensitivity_s": setup.sensitivity_s, "fit_s": setup.fitted.seconds,
                  "plan_s": time.perf_counter() - start}


def _data_sha256(path: Path, header_bytes: int) -> str:
    """SHA-256 of a safetensors file's tensor data (everything after its header)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        handle.seek(header_bytes)
        for chunk in iter(lambda: handle.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()


def plan_sweep_cells(cfg: PlanSweepConfig, budgets, *, out) -> list[Cell]:
    """One :class:`~fmq_theory.harness.engine.Cell` per budget, keyed as its :data:`PLAN_SWEEP` row.

    Raises
    ------
    ValueError
        ``budgets`` empty, repeated, or not positive finite numbers.
    """
    budgets = tuple(budgets)
    if not budgets:
        raise ValueError("budgets: give at least one budget")
    for b in budgets:
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not (math.isfinite(b) and b > 0):
            raise ValueError(f"budgets: {b!r} is not a positive number of bits per weight")
    if len(set(map(float, budgets))) != len(budgets):
        raise ValueError(f"budgets: {budgets} repeats a budget")
    sha = _weights_sha256(cfg.checkpoint)
    common = {"checkpoint_sha256": sha, "samples": cfg.samples, "seed": cfg.seed, "solver": cfg.solver,
              "steps": cfg.steps, "projections": cfg.projections, "replicates": cfg.replicates,
              "batch_size": cfg.batch_size, "bit_floors": ",".join(map(str, cfg.bit_floors)),
              "families": ",".join(cfg.families), "groupings": ",".join(cfg.groupings)}
    return [Cell(key=PLAN_SWEEP.row_key(common | {"budget": float(b), "output": str(budget_output(out, b))}),
                 params={"budget": float(b), "bit_floors": cfg.bit_floors, "families": cfg.families,
                         "groupings": cfg.groupings}) for b in budgets]


def run_plan_sweep(cfg: PlanSweepConfig, *, budgets, out, results, scheduler: str = "none",
                   workers: int | None = None, threads: int | None = None, progress: bool = True) -> EngineReport:
    """Plan ``cfg``'s model at every budget through :func:`fmq_theory.harness.engine.run_cells`.

    Parameters
    ----------
    cfg : PlanSweepConfig
    budgets : sequence of float
        Honest bits-per-weight budgets, distinct; one cell each.
    out : path
        The ``.safetensors`` name the plan files are derived from (:func:`budget_output`).
    results : path
        The results csv (:data:`~fmq_theory.results.schema.PLAN_SWEEP`; created if missing,
        rows of other cells kept).
    scheduler, workers, threads
        Of :func:`~fmq_theory.harness.engine.run_cells` (the plan runs on the CPU).
    progress : bool
        The engine's progress bar over budgets.

    Returns
    -------
    EngineReport
        A budget below the cheapest plan fails its cell (reported with its traceback) and
        spares the others.
    """
    if not isinstance(cfg, PlanSweepConfig):
        raise TypeError(f"cfg must be a PlanSweepConfig, got {type(cfg).__name__}")
    cells = plan_sweep_cells(cfg, budgets, out=out)
    checkpoint = os.path.basename(os.path.normpath(cfg.checkpoint))

    def is_done(row: dict) -> bool:
        path = Path(row["output"])
        return path.is_file() and file_sha256(path) == row["output_sha256"]

    def finish(cell: Cell, result: tuple[QuantizationPlan, dict]) -> dict:
        plan, timings = result
        key = dict(zip(PLAN_SWEEP.key, cell.key))
        path = Path(key["output"])
        parameters = asdict(cfg) | {"budget": key["budget"], "output": key["output"]}
        path.parent.mkdir(parents=True, exist_ok=True)
        info = plan.save(path, metadata={"parameters": parameters, "checkpoint": checkpoint})
        d = plan.predicted_delta
        return key | {
            "checkpoint": checkpoint, "bit_floor": plan.settings["bit_floor"], "family": plan.settings["family"],
            "grouping": plan.settings["grouping"], "bits_per_weight": plan.bits_per_weight, "total_bytes": plan.total_bytes,
            "n_weights": plan.n_weights, "predicted_delta": d.value, "predicted_low": d.low,
            "predicted_high": d.high, "level": d.level, "predicted_per_entry": d.per_entry,
            "dual_bound": plan.dual_bound, "data_bytes": info.data_bytes, "file_bytes": info.file_bytes,
            "output_sha256": file_sha256(path), "data_sha256": _data_sha256(path, info.header_bytes),
            **timings, "version": __version__}

    sha = dict(zip(PLAN_SWEEP.key, cells[0].key))["checkpoint_sha256"]
    return run_cells(cells, task=_plan_task, load=partial(_setup, cfg), context_key=("plan_sweep", cfg, sha),
                     table=PLAN_SWEEP, out=Path(results), scheduler=scheduler, workers=workers, threads=threads, is_done=is_done, finish=finish,
                     progress=progress, name=f"plan {checkpoint}")
