"""``fmq plan``: a data-free mixed-precision quantization of a checkpoint within a bit budget.

::

    fmq plan CHECKPOINT --budget 3.0 -o OUT.safetensors [--model-config CONFIG.json]
             [--samples 64] [--seed 0] [--solver midpoint] [--steps 10] [--projections 1]
             [--replicates 4] [--batch-size 16] [--format {table,json}]

``CHECKPOINT`` is a checkpoint folder of the harness (``model.safetensors`` plus
``model_card.json``, e.g. ``checkpoints/mnist``), or a ``.safetensors`` state dict of the
package's UNet with ``--model-config`` naming a JSON file of its
:class:`~fmq_theory.harness.models.unet.UNetConfig`.  The UNet is sampled with balanced class
labels and no guidance.  The plan is :func:`fmq_theory.plan.plan_quantization` (sensitivity
from Gaussian noise only: no data set is read) and is written by
:meth:`~fmq_theory.plan.QuantizationPlan.save`.

Printed: the package version and every parameter, the per-tensor report (choice, honest
bits/weight, MSE, mean sensitivity, predicted contribution), the honest bits/weight of the
file, the predicted degradation with its interval, the file's size and the data-free note.
Bad arguments exit with status 2 and write nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file

from fmq_theory import __version__
from fmq_theory.cli._output import command_line, document, render
from fmq_theory.cli._spec import positive_int
from fmq_theory.flow.solvers import balanced_labels, make_noise
from fmq_theory.cli.quantize_cmd import _output
from fmq_theory.harness.checkpoints import load_trained_model
from fmq_theory.harness.models.unet import UNet, UNetConfig, unet_adapter
from fmq_theory.plan import plan_quantization
from fmq_theory.plan.core import DATA_FREE_NOTE
from fmq_theory.vocab import FIXED_STEP_SOLVERS


def _budget(value: str) -> float:
    try:
        budget = float(value)
    except ValueError:
        budget = math.nan
    if not (math.isfinite(budget) and budget > 0):
        raise argparse.ArgumentTypeError(f"--budget {value!r} must be a positive number of bits per weight")
    return budget


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
                        help="checkpoint folder (model.safetensors + model_card.json) or a UNet .safetensors")
    parser.add_argument("--budget", required=True, type=_budget, help="honest bits per weight, e.g. 3.0")
    parser.add_argument("-o", "--output", required=True, type=_output, metavar="OUT", help="output .safetensors")
    parser.add_argument("--model-config", default=None,
                        help="JSON file of the UNetConfig (when CHECKPOINT is a .safetensors file)")
    parser.add_argument("--samples", type=positive_int, default=64, help="Gaussian noise samples (default 64)")
    parser.add_argument("--seed", type=_seed, default=0, help="seed of the noise and projections (default 0)")
    parser.add_argument("--solver", choices=FIXED_STEP_SOLVERS, default="midpoint", help="deployed solver")
    parser.add_argument("--steps", type=positive_int, default=10, help="solver steps (default 10)")
    parser.add_argument("--projections", type=positive_int, default=1, help="random projections per batch")
    parser.add_argument("--replicates", type=positive_int, default=4, help="independent replicates (interval)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="samples per backward pass")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    parser.set_defaults(func=run)


def _load_model(args) -> UNet:
    path = Path(args.checkpoint)
    if path.is_dir():
        if args.model_config is not None:
            raise ValueError("argument --model-config: not used with a checkpoint folder (its card has the config)")
        return load_trained_model(path).model
    if not path.is_file():
        raise FileNotFoundError(f"argument CHECKPOINT: no such file or folder {args.checkpoint!r}")
    if args.model_config is None:
        raise ValueError("argument --model-config: needed when CHECKPOINT is a .safetensors file")
    if not os.path.isfile(args.model_config):
        raise FileNotFoundError(f"argument --model-config: no such file {args.model_config!r}")
    try:
        config = UNetConfig.from_dict(json.loads(Path(args.model_config).read_text()))
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"argument --model-config: not a UNetConfig JSON file ({exc})") from exc
    model = UNet(config)
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()


def run(args) -> int:
    """Handler of ``fmq plan``; returns the exit status."""
    if args.replicates > args.samples:
        raise ValueError(f"argument --replicates: {args.replicates} exceeds --samples {args.samples}")
    model = _load_model(args)
    cfg = model.config
    noise = make_noise(args.samples, (cfg.in_channels, cfg.image_size, cfg.image_size), seed=args.seed)
    labels = balanced_labels(args.samples, cfg.num_classes) if cfg.num_classes else None
    torch.manual_seed(args.seed)
    plan = plan_quantization(
        model, budget_bits=args.budget, adapter=unet_adapter(model, labels), noise=noise, solver=args.solver,
        steps=args.steps, projections=args.projections, replicates=args.replicates, batch_size=args.batch_size,
        seed=args.seed, progress=True,
    )
    parameters = {k: v for k, v in vars(args).items() if k not in ("func", "command")}
    info = plan.save(args.output, metadata={"parameters": parameters, "checkpoint": os.path.basename(
        os.path.normpath(args.checkpoint))})
    if args.format == "json":
        doc = document(
            command=command_line(args), parameters=parameters,
            units={"bits_per_weight": "honest bits per weight (codes + codebooks + scales, at their stored dtypes)",
                   "total_bytes": "bytes", "file_bytes": "bytes", "data_bytes": "bytes", "header_bytes": "bytes",
                   "predicted_delta": "E|dx|^2 per sample (squared pixel units, summed over the sample)"},
            result={"data_free": plan.data_free, "note": DATA_FREE_NOTE, "bits_per_weight": plan.bits_per_weight,
                    "total_bytes": plan.total_bytes, "n_weights": plan.n_weights,
                    "predicted_delta": asdict(plan.predicted_delta), "dual_bound": plan.dual_bound,
                    "file_bytes": info.file_bytes, "data_bytes": info.data_bytes, "header_bytes": info.header_bytes,
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
