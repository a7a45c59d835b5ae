"""Dense bit packing of quantization codes (1 to 8 bits per code) into bytes.

Layout
------
``n`` codes of ``b`` bits become a stream of ``n * b`` bits stored in
``ceil(n * b / 8)`` bytes, least significant bit first:

* code ``i`` occupies stream bits ``i*b, ..., i*b + b - 1``, its bit ``j`` (value ``2**j``)
  at stream bit ``i*b + j``;
* stream bit ``k`` is bit ``k mod 8`` (value ``2**(k mod 8)``) of byte ``k // 8``;
* the ``8 * ceil(n*b/8) - n*b`` padding bits after the last code are zero.

This is the little-endian bit order of ``numpy.packbits(..., bitorder="little")`` applied
to the codes' bits, least significant first; for ``b = 4`` it puts code ``2m`` in the low
nibble and code ``2m + 1`` in the high nibble of byte ``m`` (the order bitsandbytes uses
for NF4 reads the other way round).  Eight consecutive codes always fill exactly ``b``
bytes, which is what the parallel kernels exploit.

Two implementations compute the same bytes: a numba kernel (one 8-code block per step,
parallel over tasks of 2**18 codes for large inputs) and a plain-numpy twin (:func:`pack_codes_numpy`,
:func:`unpack_codes_numpy`) that expands every code into its bits and calls
:func:`numpy.packbits`.  The twin is the test oracle and the fallback when numba is not
installed.

Examples
--------
>>> import numpy as np
>>> packed = pack_codes(np.array([1, 2, 3, 0, 3], dtype=np.uint8), bits=2)
>>> packed.tolist()  # 0b00_11_10_01 = 57, then 0b11 = 3
[57, 3]
>>> unpack_codes(packed, bits=2, count=5).tolist()
[1, 2, 3, 0, 3]
"""

from __future__ import annotations

import numpy as np

from fmq_theory.io import _packing_kernels as _kernels
from fmq_theory.vocab import PACKED_BITS

__all__ = [
    "packed_nbytes",
    "pack_codes",
    "unpack_codes",
    "pack_codes_numpy",
    "unpack_codes_numpy",
    "numba_available",
]

#: Codes handled per step of the numpy twin (a multiple of 8 so chunks end on byte edges).
_TWIN_CHUNK = 1 << 20


def packed_nbytes(count: int, bits: int) -> int:
    """Bytes that ``count`` codes of ``bits`` bits occupy once packed: ``ceil(count*bits/8)``."""
    _check_bits(bits)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count={count!r} must be a non-negative integer")
    return (int(count) * bits + 7) // 8


def _check_bits(bits) -> None:
    low, high = PACKED_BITS
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not low <= bits <= high:
        raise ValueError(f"bits={bits!r} must be an integer in {low}..{high}")


def _validated_codes(codes, bits: int) -> np.ndarray:
    """Flatten ``codes`` (row-major) after checking dtype and range; no copy when possible."""
    _check_bits(bits)
    arr = np.asarray(codes)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"codes must be an integer array, got dtype {arr.dtype}")
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.size:
        high = int(flat.max())
        low = int(flat.min()) if np.issubdtype(arr.dtype, np.signedinteger) else 0
        if low < 0 or high >= (1 << bits):
            bad = low if low < 0 else high
            raise ValueError(f"codes contain {bad}, outside 0..{(1 << bits) - 1} for bits={bits}")
    return flat


def _validated_packed(packed, bits: int, count: int) -> np.ndarray:
    expected = packed_nbytes(count, bits)
    arr = np.asarray(packed)
    if arr.dtype != np.uint8:
        raise TypeError(f"packed must be a uint8 array, got dtype {arr.dtype}")
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.size != expected:
        raise ValueError(
            f"packed has {flat.size} bytes but {count} codes of {bits} bits need {expected}"
        )
    used = (count * bits) % 8
    if used and int(flat[-1]) >> used:
        raise ValueError(
            f"packed has non-zero padding bits after the last code (last byte {int(flat[-1])}, "
            f"only its {used} low bits belong to codes)"
        )
    return flat


# --------------------------------------------------------------------------- numpy twin


def pack_codes_numpy(codes, bits: int) -> np.ndarray:
    """Plain-numpy twin of :func:`pack_codes` (bit expansion + :func:`numpy.packbits`).

    Parameters
    ----------
    codes : array_like of int, any shape
        Codes in ``0 .. 2**bits - 1``, packed in row-major order.
    bits : int
        Bits per code, 1..8.

    Returns
    -------
    numpy.ndarray, shape (ceil(codes.size * bits / 8),), uint8
    """
    flat = _validated_codes(codes, bits)
    out = np.empty(packed_nbytes(flat.size, bits), dtype=np.uint8)
    shifts = np.arange(bits, dtype=np.uint8)
    for start in range(0, flat.size, _TWIN_CHUNK):
        chunk = flat[start : start + _TWIN_CHUNK].astype(np.uint8)
        stream = ((chunk[:, None] >> shifts) & np.uint8(1)).reshape(-1)
        block = np.packbits(stream, bitorder="little")
        first = start * bits // 8
        out[first : first + block.size] = block
    return out


def unpack_codes_numpy(packed, bits: int, count: int) -> np.ndarray:
    """Plain-numpy twin of :func:`unpack_codes` (:func:`numpy.unpackbits` + bit weights).

    Returns
    -------
    numpy.ndarray, shape (count,), uint8
    """
    flat = _validated_packed(packed, bits, count)
    out = np.empty(count, dtype=np.uint8)
    weights = (np.uint8(1) << np.arange(bits, dtype=np.uint8)).astype(np.uint8)
    chunk_bytes = _TWIN_CHUNK * bits // 8
    for first in range(0, flat.size, chunk_bytes):
        start = first * 8 // bits
        n_codes = min(_TWIN_CHUNK, count - start)
        stream = np.unpackbits(flat[first : first + chunk_bytes], bitorder="little")
        code_bits = stream[: n_codes * bits].reshape(n_codes, bits)
        out[start : start + n_codes] = (code_bits * weights).sum(axis=1, dtype=np.uint8)
    return out


# --------------------------------------------------------------------------- numba kernels


#: Codes per parallel task of the numba kernels; smaller inputs run on one thread (starting
#: the thread pool costs more than packing a few hundred thousand codes).
_PARALLEL_BLOCK = 1 << 18


def _pack_numba(codes, bits, out):
    """Numba packing: full 8-code blocks by the kernels (one thread under
    :data:`_PARALLEL_BLOCK` codes), the last partial block (at most 7 codes) by the twin."""
    n_blocks = codes.size // 8
    if codes.size < _PARALLEL_BLOCK:
        _kernels.pack_blocks(codes, bits, out, 0, n_blocks)
    else:
        _kernels.pack_parallel(codes, bits, out, n_blocks, -(-codes.size // _PARALLEL_BLOCK))
    if codes.size % 8:
        out[n_blocks * bits :] = pack_codes_numpy(codes[n_blocks * 8 :], bits)


def _unpack_numba(packed, bits, out):
    """Numba unpacking, the inverse of :func:`_pack_numba`."""
    n_blocks = out.size // 8
    if out.size < _PARALLEL_BLOCK:
        _kernels.unpack_blocks(packed, bits, out, 0, n_blocks)
    else:
        _kernels.unpack_parallel(packed, bits, out, n_blocks, -(-out.size // _PARALLEL_BLOCK))
    if out.size % 8:
        out[n_blocks * 8 :] = unpack_codes_numpy(packed[n_blocks * bits :], bits, out.size % 8)


def _numba_kernels():
    """The numba kernels as ``(pack, unpack)``, each ``kernel(src, bits, out)``; ``None``
    when numba is not installed."""
    return (_pack_numba, _unpack_numba) if _kernels.HAVE_NUMBA else None


def numba_available() -> bool:
    """Whether :func:`pack_codes` / :func:`unpack_codes` run the numba kernels."""
    return _numba_kernels() is not None


def pack_codes(codes, bits: int) -> np.ndarray:
    """Pack integer codes of ``bits`` bits each densely into bytes (layout: module docstring).

    Parameters
    ----------
    codes : array_like of int, any shape
        Codes in ``0 .. 2**bits - 1``; packed in row-major (C) order.
    bits : int
        Bits per code, 1..8.

    Returns
    -------
    numpy.ndarray, shape (ceil(codes.size * bits / 8),), uint8
        The packed stream; padding bits after the last code are zero.

    Raises
    ------
    ValueError
        ``bits`` outside 1..8 or a code outside ``0 .. 2**bits - 1``.
    TypeError
        ``codes`` not of an integer dtype.

    Notes
    -----
    Runs a parallel numba kernel when numba is installed, else :func:`pack_codes_numpy`;
    both give identical bytes.
    """
    flat = _validated_codes(codes, bits)
    kernels = _numba_kernels()
    if kernels is None:
        return pack_codes_numpy(flat, bits)
    out = np.empty(packed_nbytes(flat.size, bits), dtype=np.uint8)
    if flat.size:
        kernels[0](flat, int(bits), out)
    return out


def unpack_codes(packed, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: the first ``count`` codes of a packed stream.

    Parameters
    ----------
    packed : numpy.ndarray of uint8, shape (ceil(count * bits / 8),)
        A stream produced by :func:`pack_codes`.
    bits : int
        Bits per code, 1..8.
    count : int
        Number of codes in the stream.

    Returns
    -------
    numpy.ndarray, shape (count,), uint8

    Raises
    ------
    ValueError
        Wrong stream length for ``count`` and ``bits``, or non-zero padding bits (the
        stream was not written by :func:`pack_codes` or is corrupt).
    """
    flat = _validated_packed(packed, bits, count)
    kernels = _numba_kernels()
    if kernels is None:
        return unpack_codes_numpy(flat, bits, count)
    out = np.empty(count, dtype=np.uint8)
    if count:
        kernels[1](flat, int(bits), out)
    return out
