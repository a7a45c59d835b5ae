"""Argument specifications shared by the ``fmq`` sub-commands: bit widths, weight laws, the sweep engine."""

from __future__ import annotations

import argparse

from fmq_theory.harness.engine import EngineReport, scheduler_choice
from fmq_theory.vocab import LAWS, QUANTIZER_BITS


class BitsSpecError(argparse.ArgumentTypeError, ValueError):
    """A malformed bit specification.

    It is an :class:`argparse.ArgumentTypeError`, so argparse prints its message when it
    is raised from a ``type=`` function, and a :class:`ValueError`, so handlers that parse
    the specification themselves report it like any other bad argument.
    """


def parse_bits(spec: str, *, flag: str = "--bits", max_bits: int = QUANTIZER_BITS[1]) -> list[int]:
    """Parse ``3``, ``2:8`` (inclusive) or a comma list of those, such as ``2:4,8``.

    Returns the bit widths in the given order without repeats.

    Raises
    ------
    BitsSpecError
        Naming ``flag`` and ``spec``, when a part is not ``B`` or ``LO:HI`` with
        ``1 <= LO <= HI <= max_bits``.
    """
    bits: list[int] = []
    for part in str(spec).split(","):
        try:
            ends = [int(p) for p in part.strip().split(":")]
        except ValueError:
            raise BitsSpecError(f"{flag} {spec!r} is not B, LO:HI or a comma list of those") from None
        if len(ends) not in (1, 2):
            raise BitsSpecError(f"{flag} {spec!r} is not B, LO:HI or a comma list of those")
        lo, hi = ends[0], ends[-1]
        if not 1 <= lo <= hi <= max_bits:
            raise BitsSpecError(f"{flag} {spec!r} must satisfy 1 <= LO <= HI <= {max_bits}")
        bits.extend(range(lo, hi + 1))
    return list(dict.fromkeys(bits))


def add_law_arguments(p: argparse.ArgumentParser, *, required: bool) -> None:
    """Add ``--law``, ``--nu`` and ``--beta`` to ``p``."""
    p.add_argument("--law", choices=LAWS, required=required, help="weight law (unit variance)")
    p.add_argument("--nu", type=float, default=None, help="Student-t degrees of freedom (> 2)")
    p.add_argument("--beta", type=float, default=None, help="generalized-Gaussian shape (> 0)")


def law_kwargs(args) -> dict:
    """``{'nu': .., 'beta': ..}`` from ``--law/--nu/--beta``, checked; ``ValueError`` naming the flag."""
    if args.law == "student-t" and args.nu is None:
        raise ValueError("--nu is required for --law student-t")
    if args.law == "gen-gaussian" and args.beta is None:
        raise ValueError("--beta is required for --law gen-gaussian")
    if args.law != "student-t" and args.nu is not None:
        raise ValueError(f"--nu applies only to --law student-t, not {args.law!r}")
    if args.law != "gen-gaussian" and args.beta is not None:
        raise ValueError(f"--beta applies only to --law gen-gaussian, not {args.law!r}")
    if args.law == "student-t" and not args.nu > 2:
        raise ValueError(f"--nu must be > 2 (finite variance), got {args.nu!r}")
    if args.law == "gen-gaussian" and not args.beta > 0:
        raise ValueError(f"--beta must be > 0, got {args.beta!r}")
    return {"nu": args.nu, "beta": args.beta}


def check_group_size(n) -> int:
    """``--n`` (weights per group) checked to be ``>= 2``."""
    if n < 2:
        raise ValueError(f"--n must be >= 2, got {n!r}")
    return n


def _scheduler(value: str) -> str:
    try:
        return scheduler_choice(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--{exc}") from None


def positive_int(value: str) -> int:
    """argparse type: a positive integer (``1``, ``64``), refused otherwise."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be a positive integer")
    return int(value)


def add_engine_flags(p: argparse.ArgumentParser) -> None:
    """Add ``--scheduler``, ``--workers`` and ``--threads`` (:mod:`fmq_theory.harness.engine`) to a sweep command."""
    p.add_argument("--scheduler", type=_scheduler, default="local",
                   help="where the cells run: 'local' (a Dask LocalCluster on this machine, the default), "
                   "a scheduler address tcp://HOST:PORT (a running cluster), or 'none' (one loop in "
                   "this process)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="workers of the local cluster (default: one per GPU on CUDA, one per 4 cores on "
                   "the CPU); with an address, wait for this many")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads of every cell (default: cores // workers); CPU rows agree to the "
                   "last digit across schedulers at equal --threads")


def engine_summary(out, report: EngineReport) -> str:
    """The closing lines of a sweep command: rows written, cells skipped, failures."""
    lines = [f"{out}: {len(report.written)} new rows, {report.skipped} already there, "
             f"{report.not_started} not started (deadline), {len(report.failed)} failed; "
             f"scheduler {report.scheduler}, {report.workers} workers, {report.wall_s:.1f} s"]
    lines += [f"failed cell {key}: see the traceback above" for key, _ in report.failed]
    return "\n".join(lines)
