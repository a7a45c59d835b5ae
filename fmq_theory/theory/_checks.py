"""Argument checks shared by the theory calculators."""

from __future__ import annotations

import numpy as np

from fmq_theory.vocab import LAW_BITS


def check_bits(bits) -> int:
    """``bits`` as an int in :data:`fmq_theory.vocab.LAW_BITS`; ``ValueError`` naming it otherwise."""
    lo, hi = LAW_BITS
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not lo <= bits <= hi:
        raise ValueError(f"bits={bits!r} must be an integer in {lo}..{hi}")
    return int(bits)


def check_sample_size(n) -> int:
    """``n`` (weights per tensor) as an int ``>= 2``; ``ValueError`` naming it otherwise."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n={n!r} must be an integer >= 2 (or None for the law itself)")
    return int(n)


def check_bit_list(bits) -> list:
    """``bits`` (a sequence of widths) as a list of ints checked by :func:`check_bits`;
    ``ValueError`` naming it for a single width or anything else that is not a sequence."""
    if isinstance(bits, (str, bytes)) or not hasattr(bits, "__iter__"):
        raise ValueError(f"bits={bits!r} must be a sequence of integers (e.g. [{bits!r}] for one width)")
    return [check_bits(b) for b in bits]
