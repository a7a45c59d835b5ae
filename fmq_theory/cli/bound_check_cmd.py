"""``fmq bound-check``: measured FID and sample change vs certified, estimated and predicted bounds.

The experiment is :mod:`fmq_theory.harness.bound_check`; this module parses the flags into a
:class:`~fmq_theory.harness.bound_check.BoundCheckConfig` and runs it.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from fmq_theory._util import check_output_path
from fmq_theory.cli._spec import add_engine_flags, parse_bits
from fmq_theory.harness import bound_check
from fmq_theory.harness.bound_check import BoundCheckConfig, run_bound_check

__all__ = ["register"]


def register(subparsers) -> None:
    """Add the ``bound-check`` sub-command."""
    p = subparsers.add_parser("bound-check", help="measured FID and sample change vs certified, estimated and predicted bounds",
                              description=bound_check.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=("mnist", "fashion_mnist"))
    p.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default checkpoints/<dataset>)")
    p.add_argument("--classifier", type=Path, default=None,
                   help="classifier checkpoint (default checkpoints/classifier_<dataset>.safetensors)")
    p.add_argument("--methods", default=",".join(BoundCheckConfig.methods), help="comma-separated quantizer names")
    p.add_argument("--bits", type=parse_bits, default=parse_bits("2:8"), help="'2:8' or '2,4,8'")
    p.add_argument("--trajectory-bits", type=_trajectory_bits, default=parse_bits("2,4,8"),
                   help="bit widths that get the trajectory estimate, or 'none' (default 2,4,8)")
    p.add_argument("--trajectory-methods", default=None,
                   help="comma-separated quantizers that get it at those bit widths (default: all of --methods)")
    p.add_argument("--samples", type=int, default=5000, help="paired samples for the measured FID and certified W2")
    p.add_argument("--trajectory-samples", type=int, default=32, help="samples for the trajectory estimate")
    p.add_argument("--pred-samples", type=int, default=1000, help="samples for the FID prediction Monte Carlo")
    p.add_argument("--gain-samples", type=int, default=32, help="samples for the noise gains")
    p.add_argument("--draws", type=int, default=2, help="antithetic Monte Carlo draws of the weight noise")
    p.add_argument("--solver", default="midpoint", choices=("euler", "midpoint", "heun"))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--n-boot", type=int, default=100, help="paired-bootstrap replicates of the measured dFID")
    p.add_argument("--confidence", type=float, default=0.95,
                   help="level of the bootstrap interval and of certified_w2")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--time-limit", type=float, default=None, help="seconds; no new cell starts after this")
    p.add_argument("--out", type=Path, default=None, help="csv (default results/bound_check_<dataset>.csv)")
    p.add_argument("--figure", type=Path, default=None,
                   help="png (default results/figures/bound_check_<dataset>.png)")
    add_engine_flags(p)
    p.set_defaults(func=_handler)


def _trajectory_bits(spec: str) -> list[int]:
    """``--trajectory-bits``: a bits spec (:func:`~fmq_theory.cli._spec.parse_bits`) or ``none``."""
    return [] if spec == "none" else parse_bits(spec, flag="--trajectory-bits")


def _as_flags(message: str) -> str:
    """A config error with each field name written as its flag (``trajectory_samples`` -> ``--trajectory-samples``)."""
    for name in sorted(BoundCheckConfig.__dataclass_fields__, key=len, reverse=True):
        message = re.sub(rf"(?<![\w-]){name}\b", "--" + name.replace("_", "-"), message)
    return message


def _handler(args) -> int:
    try:
        cfg = _config(args)
    except ValueError as exc:
        raise ValueError(_as_flags(str(exc))) from None
    out = args.out or Path("results") / f"bound_check_{args.dataset}.csv"
    figure = args.figure or Path("results") / "figures" / f"bound_check_{args.dataset}.png"
    check_output_path(out, argument="--out")
    check_output_path(figure, argument="--figure")
    rows = run_bound_check(cfg, out=out, figure=figure, scheduler=args.scheduler,
                           workers=args.workers, threads=args.threads)
    print(f"wrote {out} ({len(rows)} rows) and {figure}")
    return 0


def _config(args) -> BoundCheckConfig:
    return BoundCheckConfig(
        dataset=args.dataset, checkpoint=args.checkpoint, classifier=args.classifier,
        methods=tuple(m for m in args.methods.split(",") if m), bits=tuple(args.bits),
        trajectory_bits=tuple(args.trajectory_bits),
        trajectory_methods=None if args.trajectory_methods is None else tuple(
            m for m in args.trajectory_methods.split(",") if m),
        samples=args.samples, trajectory_samples=args.trajectory_samples, pred_samples=args.pred_samples,
        gain_samples=args.gain_samples,
        draws=args.draws, solver=args.solver, steps=args.steps, n_boot=args.n_boot, confidence=args.confidence,
        device=args.device, seed=args.seed, batch_size=args.batch_size, time_limit=args.time_limit)
