r"""Per-channel ``uniform_minmax`` and exact ``lloyd_max`` in torch, for weights on a GPU.

The same quantizers as ``quantize(w, method=..., granularity="channel")`` on the CPU,
written with torch tensor operations batched over the rows, so they run on any torch
device; on the CPU they are the fallbacks that the tests compare with the numpy twins
(``tests/test_torch_rows.py``).

``uniform_minmax``: the reference's float32 arithmetic, operation for operation
(:func:`fmq_theory.quantizers.uniform.fit_uniform_minmax`): ``scale = (max - min) / (K - 1)``,
``code = clip(round((w - min) / scale), 0, K - 1)`` (round half to even), level
``fl(fl(code * scale) + min)``.

``lloyd_max``: the exact dynamic programme of :mod:`fmq_theory.quantizers.lloyd_max`
(1-D k-means, Wang & Song's Ckmeans.1d.dp, cited there) over every sorted row, with the
divide-and-conquer optimisation run *level-synchronously*: the optimal last split
:math:`o_c(i)` of the first :math:`i` points into :math:`c` cells is monotone in
:math:`i` (the within-cell sum of squares satisfies the quadrangle inequality, Wu 1991,
cited in :mod:`fmq_theory.plan.weighted`), so the :math:`i` of one depth of the
recursion tree over :math:`1..n` are solved together for all rows of a batch,
each searching only :math:`[o_c(\text{lo} - 1), o_c(\text{hi} + 1)]` of its node, which
its ancestors fixed.  That is :math:`O(K n \log n)` work per row in :math:`O(K \log n)`
tensor steps.  Ties: a row is kept at full length and a split between two equal values
is forbidden (its candidate cost is :math:`+\infty`), which is the DP over the distinct
values with their multiplicities that the CPU solves; deleting columns of a Monge array
leaves it Monge, so the monotone search stays exact.  Rows with fewer than :math:`K`
distinct values (a quantizer with fewer cells) are solved by the CPU kernel.

Examples
--------
>>> import torch
>>> w = torch.tensor([[0.0, 0.1, 0.2, 5.0, 5.1, 9.0]])
>>> codes, levels = lloyd_max_rows(w, bits=1)
>>> codes.tolist(), [round(v, 4) for v in levels[0].tolist()]
([[0, 0, 0, 1, 1, 1]], [0.1, 6.3667])
>>> codes, scale, offset = uniform_minmax_rows(w, bits=2)
>>> codes.tolist()
[[0, 0, 0, 2, 2, 3]]
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from fmq_theory._util import check_positive_int
from fmq_theory.quantizers import _kernels
from fmq_theory.vocab import PACKED_BITS

__all__ = ["affine_dequantize_rows", "lloyd_max_rows", "lloyd_thresholds_sorted", "schedule", "torch_layers",
           "uniform_minmax_rows"]

#: Default number of weights solved together by one batch of the Lloyd-Max DP (its work
#: tensors take about 100 bytes per weight of the batch).
DEFAULT_BATCH = 1 << 21


def _check(weights: torch.Tensor, bits: int) -> int:
    if weights.ndim != 2 or not weights.is_floating_point():
        raise ValueError(f"weights must be a 2-D floating tensor, got shape {tuple(weights.shape)} "
                         f"and dtype {weights.dtype}")
    lo, hi = PACKED_BITS  # codes are uint8
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ValueError(f"bits={bits!r} must be an integer in {lo}..{hi}")
    if weights.shape[1] < 1:
        raise ValueError("weights must have at least one column")
    if not torch.isfinite(weights).all():
        raise ValueError("weights contain NaN or Inf")
    return 2**bits


@torch.no_grad()
def uniform_minmax_rows(weights: torch.Tensor, *, bits: int):
    """Min-max uniform quantization of every row, in the dtype of ``weights``.

    Returns
    -------
    codes : torch.Tensor, shape of ``weights``, uint8
    scale, offset : torch.Tensor, shape (rows,)
        Step and minimum of every row (a constant row has ``scale == 0`` and codes 0).
    """
    n_levels = _check(weights, bits)
    lo, hi = torch.aminmax(weights, dim=1, keepdim=True)
    # a tensor divisor: CUDA divides by a Python scalar as a product with its reciprocal, one
    # rounding off the CPU quantizer's quotient (measured on the H200: codes differed)
    scale = (hi - lo) / torch.full_like(hi, n_levels - 1)
    if not bool(torch.isfinite(scale).all()):
        raise ValueError(f"weights span a range too wide for a {weights.dtype} scale (max - min overflows); "
                         "quantize them on the CPU, which rescales such rows")
    step = torch.where(scale > 0, scale, torch.ones_like(scale))
    t = torch.sub(weights, lo)
    t.div_(step).round_().clamp_(0, n_levels - 1)
    codes = t.to(torch.uint8)
    del t
    if not bool((scale > 0).all()):
        codes.masked_fill_(scale <= 0, 0)
    return codes, scale[:, 0], lo[:, 0]


def affine_dequantize_rows(codes: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """``fl(fl(code * scale) + offset)`` row by row (two roundings, as ``affine_levels``).

    Raises
    ------
    ValueError
        ``codes`` not 2-D, ``scale`` or ``offset`` not finite floating tensors of shape ``(rows,)``.
    """
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (rows, m), got shape {tuple(codes.shape)}")
    for name, value in (("scale", scale), ("offset", offset)):
        if value.shape != (codes.shape[0],) or not value.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor of shape ({codes.shape[0]},), got {value.dtype} "
                             f"{tuple(value.shape)}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} contains NaN or Inf")
    out = codes.to(scale.dtype)
    out.mul_(scale[:, None])
    return out.add_(offset[:, None])


@functools.lru_cache(maxsize=64)
def schedule(n: int, device: str):
    """The order in which the DP of :func:`torch_layers` solves the prefix lengths ``1..n``.

    ``i = n`` first (its search is the whole range), then the divide-and-conquer tree
    over ``i = 1..n-1`` depth by depth, so that no node's window is wider than its
    parent's.

    Parameters
    ----------
    n : int
        Number of points of a row, ``>= 1``.
    device : str
        Torch device of the returned tensors.

    Returns
    -------
    tuple of (mid, left, right)
        Per depth, int64 tensors of equal length: the prefix lengths solved at that depth
        and the positions ``lo - 1`` and ``hi + 1`` of their nodes, whose optimal splits
        (solved at earlier depths; ``0`` and ``n + 1`` hold the bounds of the whole range)
        bound their search.
    """
    n = check_positive_int(n, name="n")
    depths = [(np.array([n]), np.array([0]), np.array([n + 1]))]
    lo = np.array([1])
    hi = np.array([n - 1])
    while lo.size and n > 1:
        mid = (lo + hi) // 2
        depths.append((mid, lo - 1, hi + 1))
        left = lo <= mid - 1
        right = mid + 1 <= hi
        lo, hi = np.concatenate([lo[left], mid[right] + 1]), np.concatenate([mid[left] - 1, hi[right]])
    return tuple(tuple(torch.as_tensor(a, dtype=torch.int64, device=device) for a in depth) for depth in depths)


def _cell_cost(p1, p2, i, j):
    """Within-cell sum of squares of points ``j..i-1`` from the prefix sums (``i > j``)."""
    s = p1[0] - p1[1]
    count = (i - j).to(torch.float64)
    return torch.clamp_min(p2[0] - p2[1] - s * s / count, 0.0)


def torch_layers(p1, p2, forbidden, prev, n_levels):
    """Layers ``2..n_levels-1`` of the DP in torch (the default ``layers`` solver).

    Parameters
    ----------
    p1, p2 : torch.Tensor, shape (r, n + 1), float64
        Prefix sums of the centred values and of their squares (leading 0).
    forbidden : torch.Tensor, shape (r, n + 1), bool
        ``forbidden[:, j]``: a split before point ``j`` would separate equal values.
    prev : torch.Tensor, shape (r, n + 1), float64
        Optimal cost of the first ``i`` points in one cell (``+inf`` at ``i = 0``).
    n_levels : int

    Returns
    -------
    splits : list of torch.Tensor, shape (r, n + 1), int32
        ``splits[c - 2][:, i - 1]`` is the optimal start of the last of ``c`` cells of the
        first ``i`` points, ``c = 2..n_levels-1``.
    prev : torch.Tensor, shape (r, n + 1), float64
        Optimal costs of ``n_levels - 1`` cells.
    """
    r, n = p1.shape[0], p1.shape[1] - 1
    device = p1.device
    splits = []
    for cells in range(2, n_levels):
        opt = torch.empty((r, n + 2), dtype=torch.int64, device=device)
        opt[:, 0] = cells - 1
        opt[:, n + 1] = n - 1
        cur = torch.full((r, n + 1), torch.inf, dtype=torch.float64, device=device)
        for mid, left, right in schedule(n, str(device)):
            jlo = opt[:, left]
            jhi = torch.minimum(opt[:, right], mid - 1)
            width = (jhi - jlo).clamp_min_(0) + 1
            cap = 4 * (int(width.sum()) // width.numel() + 1)
            for narrow in (True, False):  # pad the few wide windows separately
                take = width <= cap if narrow else width > cap
                rows, node = torch.nonzero(take, as_tuple=True)
                if rows.numel() == 0:
                    continue
                span = cap if narrow else int(width[rows, node].max())
                lo_j = jlo[rows, node]
                j = lo_j[:, None] + torch.arange(span, device=device)
                outside = j > jhi[rows, node][:, None]
                j.clamp_(max=n)
                i = mid[node]
                flat = j + (rows * (n + 1))[:, None]
                at_i = (rows * (n + 1) + i)[:, None]
                cost = _cell_cost((p1.view(-1)[at_i], p1.view(-1)[flat]), (p2.view(-1)[at_i], p2.view(-1)[flat]),
                                  i[:, None], j)
                cost += prev.view(-1)[flat]
                cost.masked_fill_(outside | forbidden.view(-1)[flat], torch.inf)
                arg = torch.argmin(cost, dim=1, keepdim=True)
                cur[rows, i] = cost.gather(1, arg)[:, 0]
                opt[rows, i] = lo_j + arg[:, 0]
        splits.append(opt[:, 1:].to(torch.int32))
        prev = cur
    return splits, prev


def _batch_thresholds(sorted_x: torch.Tensor, n_levels: int, layers) -> torch.Tensor:
    """Optimal thresholds of rows that all have at least ``n_levels`` distinct values."""
    r, n = sorted_x.shape
    device = sorted_x.device
    x = sorted_x.to(torch.float64)
    v = x - x.mean(dim=1, keepdim=True)
    p1 = torch.nn.functional.pad(torch.cumsum(v, dim=1), (1, 0))
    p2 = torch.nn.functional.pad(torch.cumsum(v * v, dim=1), (1, 0))
    del v, x
    forbidden = torch.zeros((r, n + 1), dtype=torch.bool, device=device)
    forbidden[:, 1:n] = sorted_x[:, 1:] == sorted_x[:, :-1]  # a split between equal values
    positions = torch.arange(n + 1, device=device)
    prev = _cell_cost((p1, p1[:, :1]), (p2, p2[:, :1]), positions, torch.zeros_like(positions))
    prev[:, 0] = torch.inf
    splits, prev = layers(p1, p2, forbidden, prev, n_levels)
    j = torch.arange(n_levels - 1, n, device=device)  # the last cell ends at n
    cost = _cell_cost((p1[:, n, None], p1[:, j]), (p2[:, n, None], p2[:, j]), torch.tensor(n, device=device), j)
    cost += prev[:, j]
    cost.masked_fill_(forbidden[:, j], torch.inf)
    ends = torch.empty((r, n_levels - 1), dtype=torch.int64, device=device)
    ends[:, -1] = j[torch.argmin(cost, dim=1)]
    for c in range(n_levels - 2, 0, -1):  # splits[c - 1] are the splits of c + 1 cells
        ends[:, c - 1] = splits[c - 1].gather(1, ends[:, c, None] - 1)[:, 0].to(torch.int64)
    return sorted_x.gather(1, ends - 1)


@torch.no_grad()
def lloyd_thresholds_sorted(sorted_x: torch.Tensor, n_levels: int, *, batch: int = DEFAULT_BATCH,
                            layers=torch_layers) -> torch.Tensor:
    """Exact Lloyd-Max thresholds of every row of ``sorted_x`` (rows sorted ascending).

    The torch twin of :func:`fmq_theory.quantizers._kernels.lloyd_rows`: threshold ``k``
    is the largest value of cell ``k``; ``+inf`` for cells a row with fewer than
    ``n_levels`` distinct values does not use.

    Parameters
    ----------
    sorted_x : torch.Tensor, shape (r, m), floating
    n_levels : int
        ``>= 2``.
    batch : int
        Weights per DP batch (rows are grouped up to this many weights; at least one row).
    layers : callable
        Solver of the DP's middle layers with the signature and result of
        :func:`torch_layers` (the default); a fused GPU kernel can be passed instead.

    Returns
    -------
    torch.Tensor, shape (r, n_levels - 1), dtype of ``sorted_x``

    Raises
    ------
    ValueError
        ``sorted_x`` not a 2-D floating tensor with a column, or not finite and sorted along
        its rows; ``n_levels`` not an integer ``>= 2``.
    """
    if isinstance(n_levels, bool) or not isinstance(n_levels, (int, np.integer)) or n_levels < 2:
        raise ValueError(f"n_levels={n_levels!r} must be an integer >= 2")
    if sorted_x.ndim != 2 or not sorted_x.is_floating_point() or sorted_x.shape[1] < 1:
        raise ValueError(f"sorted_x must be a 2-D floating tensor with at least one column, got shape "
                         f"{tuple(sorted_x.shape)} and dtype {sorted_x.dtype}")
    if not bool((torch.isfinite(sorted_x).all() & (sorted_x[:, 1:] >= sorted_x[:, :-1]).all())):
        raise ValueError("sorted_x must be finite and sorted ascending along each row")
    r, m = sorted_x.shape
    out = torch.full((r, n_levels - 1), torch.inf, dtype=sorted_x.dtype, device=sorted_x.device)
    distinct = 1 + (sorted_x[:, 1:] != sorted_x[:, :-1]).sum(dim=1)
    few = distinct < n_levels
    if bool(few.any()):
        rows = sorted_x[few].cpu().numpy()
        out[few] = torch.from_numpy(_kernels.lloyd_rows(rows, n_levels)).to(out)
    many = torch.nonzero(~few)[:, 0]
    step = max(1, batch // max(m, 1))
    for start in range(0, many.numel(), step):
        index = many[start : start + step]
        out[index] = _batch_thresholds(sorted_x[index], n_levels, layers)
    return out


@torch.no_grad()
def lloyd_max_rows(weights: torch.Tensor, *, bits: int, batch: int = DEFAULT_BATCH, layers=torch_layers):
    """Exact Lloyd-Max (1-D k-means) quantization of every row.

    ``batch`` and ``layers`` as in :func:`lloyd_thresholds_sorted`.

    Returns
    -------
    codes : torch.Tensor, shape of ``weights``, uint8
        Cell of every weight (the "left" rule: ``#{k : threshold_k < w}``).
    levels : torch.Tensor, shape (rows, 2**bits), float32
        Cell means (float64 prefix sums, rounded once); an unused cell repeats the level below.
    """
    n_levels = _check(weights, bits)
    sorted_x = torch.sort(weights, dim=1).values
    thresholds = lloyd_thresholds_sorted(sorted_x, n_levels, batch=batch, layers=layers)
    # cell statistics as the CPU's: each cell summed relative to its first (smallest) value
    m = weights.shape[1]
    thresholds = thresholds.contiguous()
    ends = torch.searchsorted(sorted_x, thresholds, right=True)
    starts = torch.nn.functional.pad(ends, (1, 0))
    ends = torch.cat([ends, torch.full_like(ends[:, :1], m)], dim=1)
    first = sorted_x.gather(1, starts.clamp(max=m - 1)).to(torch.float64)
    cell = torch.searchsorted(thresholds, sorted_x, right=False)
    shifted = sorted_x.to(torch.float64) - first.gather(1, cell)
    del cell, sorted_x
    prefix = torch.nn.functional.pad(torch.cumsum(shifted, dim=1), (1, 0))
    del shifted
    counts = ends - starts
    means = first + (prefix.gather(1, ends) - prefix.gather(1, starts)) / counts.clamp_min(1)
    del prefix
    below = torch.where(counts > 0, torch.arange(n_levels, device=weights.device), -1).cummax(dim=1).values
    levels = means.gather(1, below).to(torch.float32)
    if not bool(torch.isfinite(levels).all()):
        raise ValueError("weights: a cell mean overflows the float32 levels (|weights| near or above the float32 "
                         "limit); quantize them on the CPU, which keeps float64 levels for float64 weights")
    codes = torch.searchsorted(thresholds, weights.contiguous(), right=False, out_int32=True)
    return codes.to(torch.uint8), levels
