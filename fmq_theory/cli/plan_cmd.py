"""``fmq plan``: a data-free mixed-precision quantization of a checkpoint within a bit budget.

::

    fmq plan CHECKPOINT --budget 3.0 -o OUT.safetensors [--model-config CONFIG.json]
             [--samples 64] [--seed 0] [--solver midpoint] [--steps 10] [--projections 1]
             [--replicates 4] [--batch-size 16] [--batches-per-pass 1] [--bit-floors 1,2,3] [--families optimal,minmax,half_quadratic]
             [--groupings any] [--low-memory] [--format {table,json}]
    fmq plan CHECKPOINT --budget 2,2.5,3 -o OUT.safetensors [--results CSV]
             [--scheduler {local,ADDRESS,none}] [--workers N] [--threads T] [...]

``CHECKPOINT`` is a checkpoint folder of the harness (``model.safetensors`` plus
``model_card.json``, e.g. ``checkpoints/mnist``), a run folder of the paper's 55.7M network
(``train.json`` beside its weights, as ``scripts/gpu_paper_arch.py train`` writes it), a
checkpoint file of facebookresearch/flow_matching's image example (``.pth`` or
``.safetensors``, EMA wrapper included: the averages are planned), or a ``.safetensors`` state
dict of the package's UNet with ``--model-config`` naming a JSON file of its
:class:`~fmq_theory.harness.models.unet.UNetConfig`
(:func:`fmq_theory.harness.plan_sweep.load_plan_model`).  A class-conditional model is sampled
with balanced class labels, and no model with guidance.  The plan is :func:`fmq_theory.plan.plan_quantization` (sensitivity
from Gaussian noise only: no data set is read) and is written by
:meth:`~fmq_theory.plan.QuantizationPlan.save`.  ``--bit-floors`` (default ``1,2,3``) are the
bit floors whose knapsack solutions are sampled from the same noise and compared by how far the
law of their samples moved from the full-precision one; the least moved is the plan.
``--families`` (default ``optimal,minmax,half_quadratic``) are the code families each floor is
planned with (:data:`fmq_theory.plan.candidates.CODE_FAMILIES`): the MSE-optimal codes, the
min-max grids and HQQ's grids; ``optimal`` alone leaves the other two out.  ``--groupings``
(default ``any``: every granularity) may add ``groups``, each family and floor planned also with
only grouped codes where a tensor has them, and ``flat``, also with one grouped code shared by
every tensor that has it or full precision, as HQQ's and GGUF's files
(:data:`fmq_theory.plan.selection.GROUPINGS`; neither a default, see
:func:`fmq_theory.plan.plan_quantization`); one floor, one family and one grouping:
nothing is sampled.

With one budget, printed: the package version and every parameter, the per-tensor report
(choice, honest bits/weight, MSE, mean sensitivity, predicted contribution), the honest
bits/weight of the file, the predicted degradation with its interval, every bit floor's
variant (honest bits/weight, additive prediction, sampled shift and displacement with their
intervals, the chosen one marked), the file's size and the data-free note.

With several budgets (a comma list), the command is a sweep
(:mod:`fmq_theory.harness.plan_sweep`): the sensitivity is estimated once per worker and each
budget is one cell of the sweep engine (``--scheduler``, ``--workers``, ``--threads``, see
:mod:`fmq_theory.harness.engine`).  The plan of budget ``B`` is written to ``OUT`` with
``_bB`` inserted before the suffix (``plan.safetensors`` -> ``plan_b2.5.safetensors``), and
one row per budget to the ``--results`` csv (default: ``OUT`` with the suffix ``.csv``), the
:data:`~fmq_theory.results.schema.PLAN_SWEEP` table; budgets already there (with their file
intact) are not planned again.  Printed: one line per budget and the engine's summary.

``--low-memory`` (one budget) keeps each option's cost and prices only, not its codes, and fits
the chosen options again (``keep_codes=False`` of :func:`fmq_theory.plan.plan_quantization`): the
same file, bit for bit, for a model whose options' codes (about 104 bytes a weight) do not fit
in memory.

Bad arguments exit with status 2 and write nothing; so does a model whose plan would not fit in
this machine's memory (:func:`fmq_theory.plan.fit_memory_bytes` and
:func:`fmq_theory.plan.sensitivity_memory` against Linux's ``MemAvailable``), before any work,
instead of being killed for memory part of the way through.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from fmq_theory import __version__
from fmq_theory._util import available_memory_bytes, check_output_path
from fmq_theory.cli._output import command_line, document, render
from fmq_theory.cli._spec import add_engine_flags, engine_summary, positive_int
from fmq_theory.flow.solvers import balanced_labels, make_noise
from fmq_theory.cli.quantize_cmd import _output
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.plan_sweep import (PlanSweepConfig, budget_output, load_plan_model, plan_sweep_cells,
                                           run_plan_sweep)
from fmq_theory.plan import fit_memory_bytes, pass_memory, plan_quantization, sensitivity_memory
from fmq_theory.plan.core import DATA_FREE_NOTE
from fmq_theory.plan.candidates import CODE_FAMILIES
from fmq_theory.plan.selection import GROUPINGS, ROUNDINGS, check_bit_floors, check_families, check_groupings, check_roundings
from fmq_theory.results.schema import PLAN_SWEEP
from fmq_theory.vocab import FIXED_STEP_SOLVERS


def _budgets(value: str) -> list[float]:
    """``--budget``: one positive number of bits per weight, or a comma list of distinct ones."""
    budgets = []
    for part in value.split(","):
        try:
            budget = float(part)
        except ValueError:
            budget = math.nan
        if not (math.isfinite(budget) and budget > 0):
            raise argparse.ArgumentTypeError(f"--budget {value!r} must be a positive number of bits per weight "
                                             "or a comma list of them")
        budgets.append(budget)
    if len(set(budgets)) != len(budgets):
        raise argparse.ArgumentTypeError(f"--budget {value!r} repeats a budget")
    return budgets


def _comma_list(check, *, option: str, what: str, parse=str):
    """An argparse converter of ``option``'s comma list: each part read by ``parse``, the list
    checked by ``check`` (a ``ValueError`` of either becomes an error naming ``option``)."""

    def convert(value: str) -> tuple:
        try:
            return check([parse(part) for part in value.split(",")])
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{option} {value!r} must be a comma list of {what} ({exc})") from exc

    convert.__doc__ = f"``{option}``: a comma list of {what}."
    return convert


_bit_floors = _comma_list(check_bit_floors, option="--bit-floors", what="distinct ints in 1..16", parse=int)
_families = _comma_list(check_families, option="--families", what=f"distinct families of {sorted(CODE_FAMILIES)}")
_groupings = _comma_list(check_groupings, option="--groupings", what=f"distinct groupings of {list(GROUPINGS)}")
_roundings = _comma_list(check_roundings, option="--roundings", what=f"distinct roundings of {list(ROUNDINGS)}")


def _seed(value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--seed {value!r} must be an integer") from exc


def register(subparsers) -> None:
    """Add the ``plan`` sub-command."""
    parser = subparsers.add_parser(
        "plan",
        help="data-free mixed-precision quantization within a bit budget",
        description="Choose a quantizer, bit width, grouping and storage dtype per tensor to minimise the "
                    "predicted sample degradation within an honest bits/weight budget (no data set used).",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="checkpoint folder (model.safetensors + model_card.json), a run folder of the paper's "
                             "network (train.json), a flow_matching image-example checkpoint (.pth or .safetensors), "
                             "or a UNet .safetensors with --model-config")
    parser.add_argument("--budget", required=True, type=_budgets,
                        help="honest bits per weight, e.g. 3.0, or a comma list for a sweep, e.g. 2,2.5,3")
    parser.add_argument("-o", "--output", required=True, type=_output, metavar="OUT",
                        help="output .safetensors (a sweep writes OUT_bB.safetensors per budget B)")
    parser.add_argument("--results", default=None, metavar="CSV",
                        help="sweep only: the results csv, one row per budget (default: OUT with suffix .csv)")
    parser.add_argument("--model-config", default=None,
                        help="JSON file of the UNetConfig (when CHECKPOINT is a .safetensors file)")
    parser.add_argument("--samples", type=positive_int, default=64, help="Gaussian noise samples (default 64)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the noise and projections (default 0)")
    parser.add_argument("--solver", choices=FIXED_STEP_SOLVERS, default="midpoint", help="deployed solver")
    parser.add_argument("--steps", type=positive_int, default=10, help="solver steps (default 10)")
    parser.add_argument("--projections", type=positive_int, default=1, help="random projections per batch")
    parser.add_argument("--replicates", type=positive_int, default=4, help="independent replicates (interval)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="samples per backward pass")
    parser.add_argument("--batches-per-pass", type=positive_int, default=1,
                        help="batches run as one vectorized pass (the same estimate; faster on a GPU with memory to "
                             "spare; one budget only)")
    parser.add_argument("--bit-floors", type=_bit_floors, default=(1, 2, 3),
                        help="bit floors whose plans are sampled and compared (default 1,2,3)")
    parser.add_argument("--families", type=_families, default=("optimal", "minmax", "half_quadratic"),
                        help="code families each floor is planned with (default optimal,minmax,half_quadratic; "
                             "one floor and one family: no sampling)")
    parser.add_argument("--groupings", type=_groupings, default=("any",),
                        help="granularities each family and floor is planned with (default any; any,groups also "
                             "plans with only grouped codes where a tensor has them; any,flat also with one grouped "
                             "code shared by every tensor that has it, or full precision)")
    parser.add_argument("--low-memory", action="store_true",
                        help="keep each option's prices only and fit the chosen options again: the same plan in far "
                             "less memory, a little slower (one budget only)")
    parser.add_argument("--roundings", type=_roundings, default=("nearest",),
                        help="how each variant's codes are chosen on its levels (default nearest; nearest,compensated "
                             "also samples every variant with the codes of its linear and convolution weights by "
                             "error-compensating rounding against their inputs over the model's sampling from the "
                             "noise, GPTQ with the plan's own grids, at the same bytes; one budget only)"),
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    add_engine_flags(parser)
    # unset unless given: they apply to a sweep of several budgets only (a sweep defaults to 'local')
    parser.set_defaults(func=run, scheduler=None, workers=None, threads=None)


#: Flags of a sweep only.
_SWEEP_FLAGS = ("results", "scheduler", "workers", "threads")


def _plan_memory_bytes(model: torch.nn.Module, *, replicates: int, keep_codes: bool, pass_bytes: int = 0) -> int:
    """A lower bound on what planning ``model`` holds: the sensitivity pass's sums beside its
    ``pass_bytes`` (activations and gradients), then the estimate beside the fitted options' codes
    (:func:`~fmq_theory.plan.sensitivity_memory`, :func:`~fmq_theory.plan.fit_memory_bytes`)."""
    sens = sensitivity_memory(model, replicates=replicates)
    return max(sens.sums + pass_bytes, sens.estimate + fit_memory_bytes(model, keep_codes=keep_codes))


def _pass_bytes(model: torch.nn.Module, args, *, noise: torch.Tensor, adapter, batch_size: int) -> int:
    """The activations and gradients of ``fmq plan``'s sensitivity pass over ``noise`` at ``batch_size``
    (:func:`~fmq_theory.plan.pass_memory`, two evaluations of the pass's noise rows)."""
    m = pass_memory(model, noise, adapter=adapter, solver=args.solver, steps=args.steps,
                    projections=args.projections, replicates=args.replicates, batch_size=batch_size,
                    batches_per_pass=args.batches_per_pass)
    return m.activations + m.gradients


def _plan_noise(model: torch.nn.Module, args) -> tuple:
    """``(noise, adapter)`` of the plan: ``--samples`` draws of ``--seed``, labels balanced over the classes."""
    cfg = model.config
    noise = make_noise(args.samples, (cfg.in_channels, cfg.image_size, cfg.image_size), seed=args.seed)
    labels = balanced_labels(args.samples, cfg.num_classes) if cfg.num_classes else None
    return noise, unet_adapter(model, labels)


def _check_memory(model: torch.nn.Module, args, *, noise: torch.Tensor, adapter, keep_codes: bool = True) -> None:
    """``ValueError`` naming CHECKPOINT (or ``--batch-size``, when a smaller one would fit) if planning
    it over ``noise`` (:func:`_plan_noise`) needs more memory than this machine has."""
    have = available_memory_bytes()
    if have is None:
        return
    replicates = args.replicates
    pass_bytes = _pass_bytes(model, args, noise=noise, adapter=adapter, batch_size=args.batch_size)
    need = _plan_memory_bytes(model, replicates=replicates, keep_codes=keep_codes, pass_bytes=pass_bytes)
    if need <= have:
        return
    n = sum(p.numel() for p in model.parameters())
    what = (f"at least {need / 2**30:.1f} GiB: the sensitivity pass's sums of {replicates} replicates "
            f"(fmq_theory.plan.sensitivity_memory) beside its activations at --batch-size {args.batch_size} "
            f"(fmq_theory.plan.pass_memory, {pass_bytes / 2**30:.1f} GiB), then its estimate beside the codes of "
            f"every option of the tensors (fmq_theory.plan.fit_memory_bytes); this machine has "
            f"{have / 2**30:.1f} GiB available")
    smallest = _plan_memory_bytes(model, replicates=replicates, keep_codes=keep_codes,
                                  pass_bytes=_pass_bytes(model, args, noise=noise, adapter=adapter, batch_size=1))
    if args.batch_size > 1 and smallest <= have:
        raise ValueError(f"argument --batch-size: planning {args.checkpoint!r} ({n:,} parameters) at "
                         f"--batch-size {args.batch_size} holds {what}: give a smaller --batch-size "
                         f"(1 holds at least {smallest / 2**30:.1f} GiB)")
    lean = _plan_memory_bytes(model, replicates=replicates, keep_codes=False, pass_bytes=pass_bytes)
    raise ValueError(f"argument CHECKPOINT: planning {args.checkpoint!r} ({n:,} parameters) holds {what}: "
                     + (f"give --low-memory, which holds at least {lean / 2**30:.1f} GiB"
                        if keep_codes and lean <= have else "plan it on a machine with more memory"))


def run(args) -> int:
    """Handler of ``fmq plan``; returns the exit status."""
    if args.replicates > args.samples:
        raise ValueError(f"argument --replicates: {args.replicates} exceeds --samples {args.samples}")
    if len(args.budget) > 1:
        if args.batches_per_pass != 1:
            raise ValueError("argument --batches-per-pass: applies to one budget only (a sweep's cells run on the CPU)")
        if args.low_memory:
            raise ValueError("argument --low-memory: applies to one budget only")
        if args.roundings != ("nearest",):
            raise ValueError("argument --roundings: applies to one budget only")
        return _sweep(args)
    given = [flag for flag in _SWEEP_FLAGS if getattr(args, flag) is not None]
    if given:
        raise ValueError(f"argument --{given[0]}: applies to a sweep of several budgets only (--budget 2,3)")
    budget = args.budget[0]
    model = load_plan_model(args.checkpoint, args.model_config)
    noise, adapter = _plan_noise(model, args)
    _check_memory(model, args, noise=noise, adapter=adapter, keep_codes=not args.low_memory)
    torch.manual_seed(args.seed)
    plan = plan_quantization(
        model, budget_bits=budget, adapter=adapter, noise=noise, solver=args.solver,
        steps=args.steps, projections=args.projections, replicates=args.replicates, batch_size=args.batch_size,
        batches_per_pass=args.batches_per_pass, seed=args.seed, bit_floors=args.bit_floors, families=args.families,
        groupings=args.groupings, keep_codes=not args.low_memory, roundings=args.roundings, progress=True,
    )
    parameters = {k: v for k, v in vars(args).items() if k not in ("func", "command", *_SWEEP_FLAGS)}
    parameters["budget"] = budget
    info = plan.save(args.output, metadata={"parameters": parameters, "checkpoint": os.path.basename(
        os.path.normpath(args.checkpoint))})
    if args.format == "json":
        doc = document(
            command=command_line(args), parameters=parameters,
            units={"bits_per_weight": "honest bits per weight (codes + codebooks + scales, at their stored dtypes)",
                   "total_bytes": "bytes", "file_bytes": "bytes", "data_bytes": "bytes", "header_bytes": "bytes",
                   "predicted_delta": "E|dx|^2 per sample (squared pixel units, summed over the sample)",
                   "variants.sampled_msd": "mean squared displacement of the final samples from full precision, "
                                           "per entry (squared pixel units), sampled from the plan's noise",
                   "variants.sampled_shift": "squared W2 between the diagonal Gaussian fits of the final samples and "
                                             "the full-precision ones, per entry (squared pixel units)"},
            result={"data_free": plan.data_free, "note": DATA_FREE_NOTE, "bits_per_weight": plan.bits_per_weight,
                    "total_bytes": plan.total_bytes, "n_weights": plan.n_weights,
                    "predicted_delta": asdict(plan.predicted_delta), "dual_bound": plan.dual_bound,
                    "file_bytes": info.file_bytes, "data_bytes": info.data_bytes, "header_bytes": info.header_bytes,
                    "bit_floor": plan.settings["bit_floor"], "family": plan.settings["family"],
                    "grouping": plan.settings["grouping"], "rounding": plan.settings["rounding"], "variants": [asdict(v) for v in plan.variants],
                    "choices": [asdict(c) for c in plan.choices]},
            interval_level=plan.predicted_delta.level)
        sys.stdout.write(render(doc, columns=[], fmt="json"))
        return 0
    print(f"fmq_theory {__version__}  fmq plan")
    print("  " + "  ".join(f"{k}={v}" for k, v in parameters.items()))
    print(plan.report())
    print(f"file: {info.file_bytes} bytes ({info.data_bytes} data + {info.header_bytes} header); "
          f"plan time {plan.settings['seconds']:.1f} s")
    return 0


#: Columns of a sweep's printed table.
_SWEEP_COLUMNS = ["budget", "family", "bit_floor", "grouping", "bits_per_weight", "total_bytes", "predicted_delta",
                  "predicted_low", "predicted_high", "output"]


def _sweep(args) -> int:
    """``fmq plan`` with several budgets: one engine cell per budget (:mod:`fmq_theory.harness.plan_sweep`)."""
    results = Path(args.results) if args.results is not None else Path(args.output).with_suffix(".csv")
    check_output_path(results, argument="--results")
    for budget in args.budget:
        check_output_path(budget_output(args.output, budget), argument="--output")
    cfg = PlanSweepConfig(checkpoint=args.checkpoint, model_config=args.model_config, samples=args.samples,
                          seed=args.seed, solver=args.solver, steps=args.steps, projections=args.projections,
                          replicates=args.replicates, batch_size=args.batch_size, bit_floors=args.bit_floors,
                          families=args.families, groupings=args.groupings)
    # bad CHECKPOINT or --model-config named before any work, and a fit too large for this machine
    model = load_plan_model(args.checkpoint, args.model_config)
    noise, adapter = _plan_noise(model, args)
    _check_memory(model, args, noise=noise, adapter=adapter)
    report = run_plan_sweep(cfg, budgets=args.budget, out=args.output, results=results,
                            scheduler=args.scheduler or "local", workers=args.workers, threads=args.threads)
    keys = {cell.key for cell in plan_sweep_cells(cfg, args.budget, out=args.output)}
    rows = sorted((r for r in PLAN_SWEEP.read(results) if PLAN_SWEEP.row_key(r) in keys),
                  key=lambda r: r["budget"]) if results.is_file() else []
    parameters = {k: v for k, v in vars(args).items() if k not in ("func", "command")} | {
        "results": str(results), "scheduler": args.scheduler or "local"}
    doc = document(command=command_line(args), parameters=parameters,
                   units={"budget": "honest bits per weight", "bits_per_weight": "honest bits per weight",
                          "total_bytes": "bytes", "predicted_delta": "E|dx|^2 per sample (squared pixel units, "
                          "summed over the sample)"},
                   rows=rows, interval_level=rows[0]["level"] if rows else None)
    sys.stdout.write(render(doc, columns=_SWEEP_COLUMNS, fmt=args.format, notes=(DATA_FREE_NOTE,)))
    print(engine_summary(results, report), file=sys.stderr if args.format == "json" else sys.stdout)
    return 1 if report.failed else 0
