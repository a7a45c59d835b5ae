"""Numba kernels of :mod:`fmq_theory.packing` (imported only when numba is installed).

The work unit is a block of 8 codes, which fills exactly ``bits`` bytes: it is assembled
in (or split from) one 64-bit word.  The kernels live at module level so that numba's
on-disk cache (``cache=True``) is reused across processes.  Their plain-numpy twins
(:func:`fmq_theory.packing.pack_codes_numpy`, :func:`~fmq_theory.packing.unpack_codes_numpy`)
are the test oracles.
"""

import numba
import numpy as np


@numba.njit(cache=True)
def pack_blocks(codes, bits, out, first_block, last_block):  # pragma: no cover - compiled
    """Pack blocks ``first_block .. last_block - 1`` of 8 codes each into ``out``."""
    n = codes.size
    b = np.uint64(bits)
    for blk in range(first_block, last_block):
        base = blk * 8
        word = np.uint64(0)
        for i in range(base, min(base + 8, n)):
            word |= np.uint64(codes[i]) << (np.uint64(i - base) * b)
        first = blk * bits
        for k in range(first, min(first + bits, out.size)):
            out[k] = np.uint8((word >> np.uint64(8 * (k - first))) & np.uint64(255))


@numba.njit(cache=True)
def unpack_blocks(packed, bits, out, first_block, last_block):  # pragma: no cover - compiled
    """Unpack blocks ``first_block .. last_block - 1`` of 8 codes each into ``out``."""
    n = out.size
    b = np.uint64(bits)
    mask = (np.uint64(1) << b) - np.uint64(1)
    for blk in range(first_block, last_block):
        first = blk * bits
        word = np.uint64(0)
        for k in range(first, min(first + bits, packed.size)):
            word |= np.uint64(packed[k]) << np.uint64(8 * (k - first))
        base = blk * 8
        for i in range(base, min(base + 8, n)):
            out[i] = np.uint8((word >> (np.uint64(i - base) * b)) & mask)


@numba.njit(parallel=True, cache=True)
def pack_parallel(codes, bits, out, tasks):  # pragma: no cover - compiled
    """:func:`pack_blocks` over all blocks, split into ``tasks`` parallel ranges."""
    n_blocks = (codes.size + 7) // 8
    per_task = (n_blocks + tasks - 1) // tasks
    for t in numba.prange(tasks):
        pack_blocks(codes, bits, out, t * per_task, min((t + 1) * per_task, n_blocks))


@numba.njit(parallel=True, cache=True)
def unpack_parallel(packed, bits, out, tasks):  # pragma: no cover - compiled
    """:func:`unpack_blocks` over all blocks, split into ``tasks`` parallel ranges."""
    n_blocks = (out.size + 7) // 8
    per_task = (n_blocks + tasks - 1) // tasks
    for t in numba.prange(tasks):
        unpack_blocks(packed, bits, out, t * per_task, min((t + 1) * per_task, n_blocks))
