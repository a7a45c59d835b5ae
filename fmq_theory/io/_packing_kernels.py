"""Numba kernels of :mod:`fmq_theory.io.packing`; each is ``None`` when numba is not installed.

The work unit is a full block of 8 codes, which fills exactly ``bits`` bytes: it is
assembled in (or split from) one 64-bit word with fixed-length loops that the compiler
unrolls.  A last, partial block (fewer than 8 codes) is left to the caller.  The kernels
live at module level so that numba's on-disk cache (``cache=True``) is reused across
processes.  Their plain-numpy twins (:func:`fmq_theory.io.packing.pack_codes_numpy`,
:func:`~fmq_theory.io.packing.unpack_codes_numpy`) are the test oracles.
"""

import numpy as np

try:
    import numba
except ImportError:  # numba is optional: fmq_theory.io.packing then runs the numpy twins
    numba = None

#: Whether numba is installed, i.e. whether the kernels below exist (else they are ``None``).
HAVE_NUMBA = numba is not None


def _njit(**options):
    """``numba.njit(cache=True, **options)``; without numba, a decorator that yields ``None``."""
    if numba is None:
        return lambda kernel: None
    return numba.njit(cache=True, **options)


@_njit()
def pack_blocks(codes, bits, out, first_block, last_block):  # pragma: no cover - compiled
    """Pack the full 8-code blocks ``first_block .. last_block - 1`` of ``codes`` into ``out``."""
    b = np.uint64(bits)
    for blk in range(first_block, last_block):
        base = blk * 8
        word = np.uint64(0)
        for j in range(8):
            word |= np.uint64(codes[base + j]) << (np.uint64(j) * b)
        first = blk * bits
        for k in range(bits):
            out[first + k] = np.uint8((word >> np.uint64(8 * k)) & np.uint64(255))


@_njit()
def unpack_blocks(packed, bits, out, first_block, last_block):  # pragma: no cover - compiled
    """Unpack the full 8-code blocks ``first_block .. last_block - 1`` of ``packed`` into ``out``."""
    b = np.uint64(bits)
    mask = (np.uint64(1) << b) - np.uint64(1)
    for blk in range(first_block, last_block):
        first = blk * bits
        word = np.uint64(0)
        for k in range(bits):
            word |= np.uint64(packed[first + k]) << np.uint64(8 * k)
        base = blk * 8
        for j in range(8):
            out[base + j] = np.uint8((word >> (np.uint64(j) * b)) & mask)


@_njit(parallel=True)
def pack_parallel(codes, bits, out, n_blocks, tasks):  # pragma: no cover - compiled
    """:func:`pack_blocks` over blocks ``0 .. n_blocks - 1``, split into ``tasks`` ranges."""
    per_task = (n_blocks + tasks - 1) // tasks
    for t in numba.prange(tasks):
        pack_blocks(codes, bits, out, t * per_task, min((t + 1) * per_task, n_blocks))


@_njit(parallel=True)
def unpack_parallel(packed, bits, out, n_blocks, tasks):  # pragma: no cover - compiled
    """:func:`unpack_blocks` over blocks ``0 .. n_blocks - 1``, split into ``tasks`` ranges."""
    per_task = (n_blocks + tasks - 1) // tasks
    for t in numba.prange(tasks):
        unpack_blocks(packed, bits, out, t * per_task, min((t + 1) * per_task, n_blocks))
