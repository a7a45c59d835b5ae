"""Per-channel equal-mass (OT) quantization in torch, for weights that live on a GPU.

The same quantizer as ``quantize(w, method="equal_mass", granularity="channel")``: each
row is sorted, the sorted values are cut into ``K = 2**bits`` consecutive chunks with
``numpy.array_split``'s sizes (the first ``n mod K`` chunks one longer), and each chunk is
replaced by its mean.  On tie-free rows the levels equal the CPU quantizer's to float
rounding; tied values are split by sort position, as in the paper's reference code.

One sort and one cumulative sum per row, no Python loop over rows, so the cost is that
of ``torch.sort`` on the device.
"""

from __future__ import annotations

import torch

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


@torch.no_grad()
def equal_mass_rows(weights: torch.Tensor, *, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Equal-mass quantize every row of a 2-D tensor.

    Parameters
    ----------
    weights : torch.Tensor, shape (rows, n), floating
        Rows are quantized independently; ``n >= 2**bits`` is required (shorter rows are
        left as they are by the CPU quantizer; call that for them).
    bits : int
        1..8.

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
    values, order = torch.sort(weights, dim=1)
    starts, ends = chunk_bounds(n, levels_count, device=weights.device)
    prefix = torch.nn.functional.pad(torch.cumsum(values, dim=1, dtype=torch.float64), (1, 0))
    sums = prefix[:, ends] - prefix[:, starts]
    levels = (sums / (ends - starts).to(torch.float64)).to(torch.float32)
    position_code = torch.repeat_interleave(
        torch.arange(levels_count, device=weights.device, dtype=torch.uint8), ends - starts
    )
    codes = torch.empty((rows, n), dtype=torch.uint8, device=weights.device)
    codes.scatter_(1, order, position_code.expand(rows, n))
    return codes, levels


def dequantize_rows(codes: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """``levels[r, codes[r, i]]`` for every row ``r`` and column ``i``."""
    return torch.gather(levels, 1, codes.to(torch.int64))
