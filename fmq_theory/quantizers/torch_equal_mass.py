"""Per-channel equal-mass (OT) quantization in torch, for weights that live on a GPU.

The same quantizer as ``quantize(w, method="equal_mass", granularity="channel")``: each
row is sorted, the sorted values are cut into ``K = 2**bits`` consecutive chunks with
``numpy.array_split``'s sizes (the first ``n mod K`` chunks one longer), and each chunk is
replaced by its mean.  On tie-free rows the levels equal the CPU quantizer's to float
rounding; tied values are split by sort position, as in the paper's reference code.

One sort and one cumulative sum per row, no Python loop over rows within a chunk, so the
cost is that of ``torch.sort`` on the device.  Memory: the rows are processed in chunks
(``chunk_rows``), so the sort's values and int64 indices and the float64 cumulative sum
(about 28 bytes per weight of a chunk) exist for one chunk at a time; by default a chunk is
1/16 of the rows, under half the size of the input.  Every row is computed independently,
so the result does not depend on the chunking.
"""

from __future__ import annotations

import torch

from fmq_theory._util import check_positive_int
from fmq_theory.vocab import PACKED_BITS


def chunk_bounds(n: int, levels: int, *, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and end (exclusive) positions of ``numpy.array_split``'s ``levels`` chunks of ``n``.

    Returns
    -------
    starts, ends : torch.Tensor, shape (levels,), int64
    """
    base, extra = divmod(n, levels)
    sizes = torch.full((levels,), base, dtype=torch.int64, device=device)
    sizes[:extra] += 1
    ends = torch.cumsum(sizes, 0)
    return ends - sizes, ends


#: Default number of chunks the rows are split into (see :func:`default_chunk_rows`).
CHUNKS = 16


def default_chunk_rows(rows: int) -> int:
    """Rows per chunk when none is given: ``ceil(rows / CHUNKS)``, at least 1.

    The work tensors of :func:`equal_mass_rows` take about 28 bytes per weight of a chunk
    (7 times its float32 size), so a chunk of 1/16 of the rows keeps them below half the
    input's size; :func:`dequantize_rows` needs 8 bytes per weight of a chunk (its int64
    gather index).
    """
    return max(1, -(-rows // CHUNKS))


def _chunk_rows(chunk_rows, rows: int) -> int:
    chunk_rows = check_positive_int(chunk_rows, name="chunk_rows", allow_none=True)
    return default_chunk_rows(rows) if chunk_rows is None else chunk_rows


@torch.no_grad()
def equal_mass_rows(weights: torch.Tensor, *, bits: int,
                    chunk_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Equal-mass quantize every row of a 2-D tensor.

    Parameters
    ----------
    weights : torch.Tensor, shape (rows, n), floating
        Rows are quantized independently; ``n >= 2**bits`` is required (shorter rows are
        left as they are by the CPU quantizer; call that for them).
    bits : int
        1..8.
    chunk_rows : int or None
        Rows sorted together; ``None``: :func:`default_chunk_rows`.  The result is the
        same for every value (rows are independent); only the peak memory and the number
        of kernel launches change.

    Returns
    -------
    codes : torch.Tensor, shape (rows, n), uint8
        Chunk index of every weight.
    levels : torch.Tensor, shape (rows, 2**bits), float32
        Chunk means (accumulated in float64).
    """
    if weights.ndim != 2 or not weights.is_floating_point():
        raise ValueError(f"weights must be a 2-D floating tensor, got shape {tuple(weights.shape)} "
                         f"and dtype {weights.dtype}")
    lo, hi = PACKED_BITS  # codes are uint8
    if not lo <= int(bits) <= hi:
        raise ValueError(f"bits={bits!r} is out of range {lo}..{hi}")
    levels_count = 2 ** int(bits)
    rows, n = weights.shape
    if n < levels_count:
        raise ValueError(f"rows of n={n} weights have fewer than 2**bits={levels_count} elements")
    if not torch.isfinite(weights).all():
        raise ValueError("weights contain NaN or Inf")
    step = _chunk_rows(chunk_rows, rows)
    starts, ends = chunk_bounds(n, levels_count, device=weights.device)
    counts = (ends - starts).to(torch.float64)
    position_code = torch.repeat_interleave(
        torch.arange(levels_count, device=weights.device, dtype=torch.uint8), ends - starts
    )
    codes = torch.empty((rows, n), dtype=torch.uint8, device=weights.device)
    levels = torch.empty((rows, levels_count), dtype=torch.float32, device=weights.device)
    for a in range(0, rows, step):
        b = min(a + step, rows)
        values, order = torch.sort(weights[a:b], dim=1)
        prefix = torch.nn.functional.pad(torch.cumsum(values, dim=1, dtype=torch.float64), (1, 0))
        del values
        levels[a:b] = ((prefix[:, ends] - prefix[:, starts]) / counts).to(torch.float32)
        del prefix
        codes[a:b].scatter_(1, order, position_code.expand(b - a, n))
        del order
    return codes, levels


@torch.no_grad()
def dequantize_rows(codes: torch.Tensor, levels: torch.Tensor, *, chunk_rows: int | None = None) -> torch.Tensor:
    """``levels[r, codes[r, i]]`` for every row ``r`` and column ``i``.

    Parameters
    ----------
    codes : torch.Tensor, shape (rows, n), integer
    levels : torch.Tensor, shape (rows, K)
    chunk_rows : int or None
        Rows gathered together (``torch.gather`` takes an int64 index, made for one chunk
        at a time); ``None``: :func:`default_chunk_rows`.  The result does not depend on it.

    Returns
    -------
    torch.Tensor, shape (rows, n), dtype of ``levels``
    """
    rows, n = codes.shape
    step = _chunk_rows(chunk_rows, rows)
    out = torch.empty((rows, n), dtype=levels.dtype, device=levels.device)
    for a in range(0, rows, step):
        b = min(a + step, rows)
        torch.gather(levels[a:b], 1, codes[a:b].to(torch.int64), out=out[a:b])
    return out
