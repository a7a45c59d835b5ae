"""Parsing of the bit specifications that every ``fmq`` sub-command accepts."""

from __future__ import annotations

import argparse


class BitsSpecError(argparse.ArgumentTypeError, ValueError):
    """A malformed bit specification.

    It is an :class:`argparse.ArgumentTypeError`, so argparse prints its message when it
    is raised from a ``type=`` function, and a :class:`ValueError`, so handlers that parse
    the specification themselves report it like any other bad argument.
    """


def parse_bits(spec: str, *, flag: str = "--bits", max_bits: int = 16) -> list[int]:
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
