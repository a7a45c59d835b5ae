"""Argument specifications shared by the ``fmq`` sub-commands: bit widths and weight laws."""

from __future__ import annotations

import argparse

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
