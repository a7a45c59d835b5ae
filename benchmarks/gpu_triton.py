"""Fused Triton kernels for ``gpu.py``: per-channel ``uniform_minmax``, per-channel
``equal_mass`` and the middle layers of the exact ``lloyd_max`` DP (one program per row each).

``uniform_minmax``:

The same arithmetic as :func:`fmq_theory.quantizers.torch_rows.uniform_minmax_rows` (its
torch twin, which is the CPU fallback and the oracle): float32 ``(w - min) / scale``
correctly rounded (``div_rn``), round half to even, clip, and the dequantized
``fl(fl(code * scale) + min)`` with FMA contraction off.  The row is read once and the
codes and dequantized weights written once, the copy floor's traffic.  Rows up to
``BLOCK`` weights (one block per row).  Kept with the benchmarks, not the package: the
package has no Triton dependency.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from fmq_theory.quantizers.torch_rows import schedule


@triton.jit
def _uniform_rows_kernel(w_ptr, codes_ptr, out_ptr, scale_ptr, lo_ptr, rows, n, levels_minus_one,
                         ROWS: tl.constexpr, BLOCK: tl.constexpr):
    """``ROWS`` consecutive rows per program, each held whole in registers (``BLOCK >= n``)."""
    row = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    live = row < rows
    cols = tl.arange(0, BLOCK)
    mask = live[:, None] & (cols < n)[None, :]
    offsets = row[:, None] * n + cols[None, :]
    w = tl.load(w_ptr + offsets, mask=mask, other=0.0)
    lo = tl.min(tl.where(mask, w, float("inf")), axis=1)
    hi = tl.max(tl.where(mask, w, float("-inf")), axis=1)
    scale = tl.math.div_rn(hi - lo, levels_minus_one)
    step = tl.where(scale > 0, scale, 1.0)
    t = tl.math.div_rn(w - lo[:, None], step[:, None])
    base = tl.floor(t)
    frac = t - base
    odd = (base - 2.0 * tl.floor(base * 0.5)) != 0.0
    q = tl.where((frac > 0.5) | ((frac == 0.5) & odd), base + 1.0, base)  # round half to even
    q = tl.minimum(tl.maximum(q, 0.0), levels_minus_one)
    q = tl.where(scale[:, None] > 0, q, 0.0)
    tl.store(codes_ptr + offsets, q.to(tl.uint8), mask=mask)
    tl.store(out_ptr + offsets, q * scale[:, None] + lo[:, None], mask=mask)
    tl.store(scale_ptr + row, scale, mask=live)
    tl.store(lo_ptr + row, lo, mask=live)


def default_uniform_warps(n: int) -> int:
    """The warps of one ``uniform_minmax`` program of rows of ``n`` weights when none are given."""
    return min(16, max(4, triton.next_power_of_2(n) // 512))


def uniform_minmax_rows_triton(weights: torch.Tensor, *, bits: int, rows_per_program: int = 1,
                               num_warps: int | None = None):
    """``(codes, dequantized, scale, offset)`` of every row of a float32 CUDA tensor.

    Parameters
    ----------
    weights : torch.Tensor, shape (rows, n), float32
    bits : int
        1..8.
    rows_per_program : int
        Rows handled by one program (a power of two); the launch configuration, not the result.
    num_warps : int or None
        Warps per program; ``None``: :func:`default_uniform_warps`.  Not the result either.
    """
    rows, n = weights.shape
    weights = weights.contiguous()
    codes = torch.empty((rows, n), dtype=torch.uint8, device=weights.device)
    out = torch.empty_like(weights)
    scale = torch.empty(rows, dtype=torch.float32, device=weights.device)
    lo = torch.empty_like(scale)
    warps = default_uniform_warps(n) if num_warps is None else num_warps
    _uniform_rows_kernel[(triton.cdiv(rows, rows_per_program),)](
        weights, codes, out, scale, lo, rows, n, float(2**bits - 1), ROWS=rows_per_program,
        BLOCK=triton.next_power_of_2(n), num_warps=warps, enable_fp_fusion=False)
    return codes, out, scale, lo


# --------------------------------------------------------------------------------------
# exact lloyd_max: layers 2..K-1 of the DP, one program per row
# --------------------------------------------------------------------------------------
@triton.jit
def _lloyd_depth(p1, p2, forb, prev, cur, opt, out, mid_ptr, left_ptr, right_ptr, s0, s1,
                 NB: tl.constexpr, CB: tl.constexpr):
    """One depth of the recursion, the previous kernel's schedule: its nodes ``s0..s1-1`` NB
    at a time, each node's window of candidate splits CB at a time, as one NB x CB tile
    (NB = 1 to search one node's window, CB = 1 for one lane per node).  Ties go to the
    smallest split, as in ``torch.argmin``: the first minimum of a chunk, and a later chunk
    only when strictly lower."""
    nodes = tl.arange(0, NB)
    cands = tl.arange(0, CB)
    for start in range(s0, s1, NB):
        node = start + nodes
        live = node < s1
        i = tl.load(mid_ptr + node, mask=live, other=1)
        jlo = tl.load(opt + tl.load(left_ptr + node, mask=live, other=0), mask=live, other=0)
        jhi = tl.minimum(tl.load(opt + tl.load(right_ptr + node, mask=live, other=0), mask=live, other=0), i - 1)
        width = tl.where(live, jhi - jlo + 1, 0)
        p1i = tl.load(p1 + i, mask=live, other=0.0)[:, None]
        p2i = tl.load(p2 + i, mask=live, other=0.0)[:, None]
        best = tl.full((NB,), float("inf"), tl.float64)
        best_j = jlo
        for base in range(0, tl.max(width, axis=0), CB):
            j = (jlo + base)[:, None] + cands[None, :]
            ok = live[:, None] & (j <= jhi[:, None])
            s = p1i - tl.load(p1 + j, mask=ok, other=0.0)
            cnt = tl.where(ok, i[:, None] - j, 1).to(tl.float64)
            c = tl.maximum(p2i - tl.load(p2 + j, mask=ok, other=0.0) - s * s / cnt, 0.0)
            c = c + tl.load(prev + j, mask=ok, other=float("inf"))
            bad = (~ok) | (tl.load(forb + j, mask=ok, other=1) != 0)
            c = tl.where(bad, float("inf"), c)
            low = tl.min(c, axis=1)
            at = tl.argmin(c, axis=1)
            better = low < best
            best = tl.where(better, low, best)
            best_j = tl.where(better, jlo + base + at, best_j)
        tl.store(cur + i, best, mask=live)
        tl.store(opt + i, best_j, mask=live)
        tl.store(out + i - 1, best_j.to(tl.int32), mask=live)


@triton.jit
def _max_combine(a, b):
    return tl.maximum(a, b)


@triton.jit
def _segment_min_combine(k1, c1, j1, k2, c2, j2):
    """Segmented scan over lanes of increasing split, the segments (nodes) contiguous: the
    right operand wins a new node or a strictly lower cost; a tie keeps the left, smaller
    split."""
    take = (k1 != k2) | (c2 < c1)
    return k2, tl.where(take, c2, c1), tl.where(take, j2, j1)


@triton.jit
def _lloyd_depth_flat(p1, p2, forb, prev, cur, opt, out, mid_ptr, left_ptr, right_ptr, s0, s1, stamp,
                      head, nofs, nend, njlo, nbest, nbj, TILE: tl.constexpr):
    """One depth of the recursion with its candidates flattened: the windows of the depth's
    nodes laid end to end (they overlap in at most one split, so at most n + m candidates) and
    searched TILE at a time, one lane per candidate, whatever the windows' widths.

    A: per node, its window, its first and end place among the candidates and its running
    best (``+inf`` at its lowest split); ``head`` marks the first place of each non-empty
    window with ``stamp << 32 | node`` (stamps grow with layer and depth, so a running maximum
    over ``head`` finds each place's node without clearing the marks of earlier depths).
    B: each chunk's costs, reduced per node by a segmented scan; the lane that ends a node's
    run in the chunk keeps the result when strictly lower than the node's running best.
    C: the nodes' bests written out."""
    lanes = tl.arange(0, TILE)
    total = s0 * 0
    for start in range(s0, s1, TILE):
        node = start + lanes
        live = node < s1
        k = node - s0
        i = tl.load(mid_ptr + node, mask=live, other=1)
        jlo = tl.load(opt + tl.load(left_ptr + node, mask=live, other=0), mask=live, other=0)
        jhi = tl.minimum(tl.load(opt + tl.load(right_ptr + node, mask=live, other=0), mask=live, other=0), i - 1)
        width = tl.where(live, tl.maximum(jhi - jlo + 1, 0), 0)
        end = tl.cumsum(width, 0) + total
        first = end - width
        tl.store(nofs + k, first, mask=live)
        tl.store(nend + k, end, mask=live)
        tl.store(njlo + k, jlo, mask=live)
        tl.store(nbest + k, tl.full((TILE,), float("inf"), tl.float64), mask=live)
        tl.store(nbj + k, jlo, mask=live)
        tl.store(head + first, (stamp << 32) | k, mask=live & (width > 0))
        total += tl.sum(width, axis=0)
    tl.debug_barrier()
    carry0 = stamp << 32
    carry = carry0
    for c0 in range(0, total, TILE):
        q = c0 + lanes
        valid = q < total
        h = tl.maximum(tl.associative_scan(tl.load(head + q, mask=valid, other=0), 0, _max_combine), carry)
        carry = tl.max(h, axis=0)
        k = tl.where(valid, h - carry0, 0)  # the current stamp marks every place: h >= carry0
        first = tl.load(nofs + k, mask=valid, other=0)
        end = tl.load(nend + k, mask=valid, other=0)
        j = tl.load(njlo + k, mask=valid, other=0) + (q - first)
        i = tl.load(mid_ptr + s0 + k, mask=valid, other=1)
        s = tl.load(p1 + i, mask=valid, other=0.0) - tl.load(p1 + j, mask=valid, other=0.0)
        cnt = tl.where(valid, i - j, 1).to(tl.float64)
        c = tl.maximum(tl.load(p2 + i, mask=valid, other=0.0) - tl.load(p2 + j, mask=valid, other=0.0)
                       - s * s / cnt, 0.0)
        c = c + tl.load(prev + j, mask=valid, other=float("inf"))
        bad = (~valid) | (tl.load(forb + j, mask=valid, other=1) != 0)
        c = tl.where(bad, float("inf"), c)
        _, low, at = tl.associative_scan((tl.where(valid, k, -1), c, j), 0, _segment_min_combine)
        last = valid & ((q == end - 1) | (lanes == TILE - 1))
        better = last & (low < tl.load(nbest + k, mask=last, other=float("inf")))
        tl.store(nbest + k, low, mask=better)
        tl.store(nbj + k, at, mask=better)
        tl.debug_barrier()
    for start in range(s0, s1, TILE):
        node = start + lanes
        live = node < s1
        i = tl.load(mid_ptr + node, mask=live, other=1)
        best_j = tl.load(nbj + node - s0, mask=live, other=0)
        tl.store(cur + i, tl.load(nbest + node - s0, mask=live, other=float("inf")), mask=live)
        tl.store(opt + i, best_j, mask=live)
        tl.store(out + i - 1, best_j.to(tl.int32), mask=live)


@triton.jit
def _lloyd_layers_kernel(p1_ptr, p2_ptr, forb_ptr, buf_ptr, opt_ptr, splits_ptr, mid_ptr, left_ptr, right_ptr,
                         depth_ptr, head_ptr, node_ptr, best_ptr, n_depths, n, n_levels,
                         TILE: tl.constexpr, FLAT: tl.constexpr):
    """The level-synchronous divide and conquer of ``torch_rows.torch_layers`` for one row:
    per layer, per depth of the recursion, every node searches the window its ancestors fixed,
    then a barrier makes the depth's splits visible to the next one.

    FLAT: the depth's candidates flattened (:func:`_lloyd_depth_flat`), every lane on a
    candidate.  Otherwise the previous kernel's schedule, kept as the benchmark's baseline: a
    depth of at most 4 nodes searches one node's window TILE candidates at a time, a deeper
    one gives each of TILE nodes one lane that walks its window, so that each step lasts as
    long as the widest window among TILE nodes (about 10% of the lanes on a candidate)."""
    row = tl.program_id(0).to(tl.int64)
    stride = n + 1
    p1 = p1_ptr + row * stride
    p2 = p2_ptr + row * stride
    forb = forb_ptr + row * stride
    buf = buf_ptr + row * 2 * stride
    opt = opt_ptr + row * (n + 2)
    splits = splits_ptr + row * (n_levels - 2) * stride
    head = head_ptr + row * 2 * stride
    nodes = node_ptr + row * 4 * stride
    for cells in range(2, n_levels):
        prev = buf + ((cells - 1) % 2) * stride
        cur = buf + (cells % 2) * stride
        out = splits + (cells - 2) * stride
        tl.store(opt, cells - 1)
        tl.store(opt + n + 1, n - 1)
        tl.debug_barrier()
        for d in range(n_depths):
            s0 = tl.load(depth_ptr + d)
            s1 = tl.load(depth_ptr + d + 1)
            if FLAT:
                stamp = ((cells - 2) * n_depths + d + 1).to(tl.int64)
                _lloyd_depth_flat(p1, p2, forb, prev, cur, opt, out, mid_ptr, left_ptr, right_ptr, s0, s1, stamp,
                                  head, nodes, nodes + stride, nodes + 2 * stride, best_ptr + row * stride,
                                  nodes + 3 * stride, TILE)
            elif s1 - s0 <= 4:
                _lloyd_depth(p1, p2, forb, prev, cur, opt, out, mid_ptr, left_ptr, right_ptr, s0, s1, 1, TILE)
            else:
                _lloyd_depth(p1, p2, forb, prev, cur, opt, out, mid_ptr, left_ptr, right_ptr, s0, s1, TILE, 1)
            tl.debug_barrier()


@functools.lru_cache(maxsize=16)
def _flat_schedule(n: int, device: str):
    depths = schedule(n, device)
    mids, lefts, rights = (torch.cat([d[k] for d in depths]) for k in range(3))
    sizes = torch.tensor([0] + [d[0].numel() for d in depths], dtype=torch.int64)
    return mids, lefts, rights, torch.cumsum(sizes, 0).to(device), len(depths)


#: The DP kernel's launch configurations that ``gpu.py`` times: (flattened candidates, lanes
#: per step, warps); the first is the previous kernel's schedule and launch, the baseline.  On an
#: H200 (2026-12-06, ``benchmarks/gpu_h200_lloyd_flat.json``) the speed fell with every doubling of
#: the lanes from 256 (1.53x the baseline) to 1024 (1.17x), so 128 lanes and 2 warps are timed too; on
#: an H100 (``benchmarks/gpu_h100_lloyd_flat.json``) they were slower (1.24-1.32x against 256 lanes' 1.42x).
LLOYD_CONFIGS = ((False, 128, 4), (True, 128, 2), (True, 128, 4), (True, 256, 2), (True, 256, 4), (True, 512, 4),
                 (True, 1024, 4), (True, 1024, 8))


def triton_layers(p1, p2, forbidden, prev, n_levels, *, flat=True, tile=512, warps=4):
    """Drop-in replacement of :func:`fmq_theory.quantizers.torch_rows.torch_layers` on a GPU.

    ``flat``: the depth's candidates flattened (else the previous kernel's schedule);
    ``tile`` (a power of two) lanes per step, over ``warps`` warps.  The flattened schedule's
    work memory: 6 (n + 1) int64/float64 per row beside the DP's own (~5 (n + 1))."""
    if tile < 16 or tile & (tile - 1):
        raise ValueError(f"tile={tile!r} must be a power of two >= 16")
    r, n = p1.shape[0], p1.shape[1] - 1
    device = p1.device
    buf = torch.empty((r, 2, n + 1), dtype=torch.float64, device=device)
    buf[:, 1] = prev
    buf[:, 0] = torch.inf
    opt = torch.empty((r, n + 2), dtype=torch.int64, device=device)
    splits = torch.empty((r, max(n_levels - 2, 1), n + 1), dtype=torch.int32, device=device)
    # the flattened schedule's marks start below every stamp; its per-node scratch needs no clearing
    head = torch.zeros((r, 2, n + 1) if flat else (1,), dtype=torch.int64, device=device)
    nodes = torch.empty((r, 4, n + 1) if flat else (1,), dtype=torch.int64, device=device)
    best = torch.empty((r, n + 1) if flat else (1,), dtype=torch.float64, device=device)
    mids, lefts, rights, offsets, n_depths = _flat_schedule(n, str(device))
    if n_levels > 2:
        _lloyd_layers_kernel[(r,)](p1.contiguous(), p2.contiguous(), forbidden.to(torch.int8).contiguous(), buf,
                                   opt, splits, mids, lefts, rights, offsets, head, nodes, best, n_depths, n,
                                   n_levels, TILE=tile, FLAT=flat, num_warps=warps, enable_fp_fusion=False)
    return [splits[:, k] for k in range(n_levels - 2)], buf[:, (n_levels - 1) % 2]


# --------------------------------------------------------------------------------------
# equal_mass: sort in registers, chunk-end thresholds, cell means, codes, dequantized weights
# --------------------------------------------------------------------------------------
@triton.jit
def _equal_mass_cells(w, code, mask, idx, row, n, codes_ptr, out_ptr, levels_ptr, K: tl.constexpr,
                      BLOCK: tl.constexpr):
    """Levels, codes and dequantized weights of one row, given its cells ``code``: level =
    cell mean (float64: smallest value of the cell + mean offset from it, rounded once), an
    empty cell repeating the level below.  Shared by both equal_mass kernels."""
    wd = w.to(tl.float64)
    out = tl.zeros((BLOCK,), tl.float32)
    level = tl.sum(tl.zeros((BLOCK,), tl.float32), axis=0)
    for k in tl.static_range(K):
        inside = mask & (code == k)
        count = tl.sum(inside.to(tl.int32), axis=0)
        first = tl.min(tl.where(inside, w, float("inf")), axis=0)
        shifted = tl.sum(tl.where(inside, wd - first.to(tl.float64), 0.0), axis=0)
        mean = (first.to(tl.float64) + shifted / tl.maximum(count, 1).to(tl.float64)).to(tl.float32)
        level = tl.where(count > 0, mean, level)
        tl.store(levels_ptr + row * K + k, level)
        out = tl.where(inside, level, out)
    tl.store(codes_ptr + row * n + idx, code.to(tl.uint8), mask=mask)
    tl.store(out_ptr + row * n + idx, out, mask=mask)


@triton.jit
def _equal_mass_rows_kernel(w_ptr, codes_ptr, out_ptr, levels_ptr, route_ptr, n, K: tl.constexpr,
                            BLOCK: tl.constexpr, ROUTED: tl.constexpr):
    """The CPU quantizer's rule (``fit_equal_mass``): thresholds ``t_k`` = the sorted row at the
    last index of ``numpy.array_split``'s chunk ``k``, cell of ``w`` = ``#{k : t_k < w}``,
    levels by :func:`_equal_mass_cells`.  ``ROUTED``: only the rows whose ``route_ptr[row]``
    is 1, those the radix path leaves to this kernel (:func:`_equal_mass_radix_kernel`)."""
    row = tl.program_id(0).to(tl.int64)
    if ROUTED:
        if tl.load(route_ptr + row) == 1:
            _equal_mass_sorted_row(w_ptr, codes_ptr, out_ptr, levels_ptr, row, n, K, BLOCK)
    else:
        _equal_mass_sorted_row(w_ptr, codes_ptr, out_ptr, levels_ptr, row, n, K, BLOCK)


@triton.jit
def _equal_mass_sorted_row(w_ptr, codes_ptr, out_ptr, levels_ptr, row, n, K: tl.constexpr, BLOCK: tl.constexpr):
    """One row of :func:`_equal_mass_rows_kernel`, sorted in registers."""
    idx = tl.arange(0, BLOCK)
    mask = idx < n
    w = tl.load(w_ptr + row * n + idx, mask=mask, other=float("inf"))
    srt = tl.sort(w)
    base = n // K
    extra = n % K
    code = tl.zeros((BLOCK,), tl.int32)
    for k in tl.static_range(K - 1):
        last = (k + 1) * base + tl.minimum(k + 1, extra) - 1
        t = tl.sum(tl.where(idx == last, srt, 0.0), axis=0)
        code += (w > t).to(tl.int32)
    _equal_mass_cells(w, code, mask, idx, row, n, codes_ptr, out_ptr, levels_ptr, K, BLOCK)


@triton.jit
def _order_key(w):
    """Order-preserving int32 key of float32 ``w``: its bits ``b`` (``-0.0`` first made ``+0.0``, so
    that equal floats have equal keys), ``b ^ ((b >> 31) & 0x7fffffff)``, a signed int32 whose order
    is the order of the floats.  Without the first step the map is its own inverse
    (:func:`_key_bits`)."""
    bits = w.to(tl.int32, bitcast=True)
    bits = tl.where((bits << 1) == 0, 0, bits)  # -0.0 -> +0.0
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


@triton.jit
def _key_bits(key):
    """The float32 bits of an :func:`_order_key` (``+0.0`` for the key of both zeros)."""
    return key ^ ((key >> 31) & 0x7FFFFFFF)


@triton.jit
def _equal_mass_select_kernel(w_ptr, codes_ptr, out_ptr, levels_ptr, n, K: tl.constexpr, KP: tl.constexpr,
                              BLOCK: tl.constexpr):
    """The rule of :func:`_equal_mass_rows_kernel` without a sort: the K-1 chunk-end order
    statistics of the row are found together by a bitwise binary search on the
    order-preserving int32 key of the float (:func:`_order_key`).

    The order statistic of rank ``r`` is the smallest key ``v`` with ``#{key <= v} > r``; it is
    built from the top bit down, keeping a bit 0 when the count at ``v``'s prefix with that bit
    0 and all lower bits 1 already exceeds ``r`` (32 counting passes over the row in
    registers, all K-1 ranks at once).  The cell of ``w`` is ``#{k : key_k < key(w)}``, which
    is ``#{k : t_k < w}``.  Padding lanes hold ``+inf``, whose key exceeds every key the search
    tries below it, so they are never counted: the weights must be finite.
    """
    row = tl.program_id(0).to(tl.int64)
    idx = tl.arange(0, BLOCK)
    mask = idx < n
    w = tl.load(w_ptr + row * n + idx, mask=mask, other=float("inf"))
    key = _order_key(w)
    kk = tl.arange(0, KP)
    base = n // K
    extra = n % K
    rank = tl.where(kk < K - 1, (kk + 1) * base + tl.minimum(kk + 1, extra) - 1, n - 1)
    # the top bit (of the key offset by 2**31): is the order statistic negative, key <= -1?
    negative = tl.sum((key < 0).to(tl.int32), axis=0)
    found = tl.where(negative > rank, tl.full((KP,), -2147483648, tl.int32), 0)
    for i in range(31):
        bit = tl.full((KP,), 1, tl.int32) << (30 - i)
        cand = found | (bit - 1)
        count = tl.sum((key[None, :] <= cand[:, None]).to(tl.int32), axis=1)
        found = tl.where(count > rank, found, found | bit)
    code = tl.zeros((BLOCK,), tl.int32)
    for k in tl.static_range(K - 1):
        t = tl.sum(tl.where(kk == k, found, 0), axis=0)
        code += (key > t).to(tl.int32)
    _equal_mass_cells(w, code, mask, idx, row, n, codes_ptr, out_ptr, levels_ptr, K, BLOCK)


# --------------------------------------------------------------------------------------
# equal_mass, radix path: one digit of the scaled value, the candidates' keys sorted
# --------------------------------------------------------------------------------------
#: Bins of the radix path's digit (:func:`_radix_digit`): one histogram of 256 bins per row.
RADIX_BINS = 256

#: The largest int32, above every finite float's key: the padding of the sorted candidates.
_KEY_PAD = tl.constexpr(2147483647)


@triton.jit
def _radix_digit(w, lo, inv, NB: tl.constexpr):
    """The bin ``min(floor((w - lo) * inv), NB - 1)`` of the row's weights ``w`` (``inv = 0``:
    every weight in bin 0).  A non-decreasing function of ``w`` (each rounded step is), so a
    weight in a higher bin is larger than every weight in a lower one; ``-0.0`` and ``+0.0``
    share a bin.  Computed by this one function wherever a bin is needed, so that every pass
    sees the same bins."""
    t = tl.where(inv > 0, (w - lo) * inv, 0.0)
    return tl.minimum(tl.floor(t), NB - 1.0).to(tl.int32)


@triton.jit
def _count_at_most(table, value, NB: tl.constexpr, LOG_NB: tl.constexpr):
    """``#{b : table[b] <= value}`` for each lane of ``value``, ``table`` a non-decreasing int32
    array of ``NB`` entries in memory: binary lifting, ``LOG_NB + 1`` loads a lane."""
    count = value * 0
    for i in tl.static_range(LOG_NB + 1):
        probe = count + (NB >> i)
        inside = probe <= NB
        count = tl.where(inside & (tl.load(table + probe - 1, mask=inside, other=_KEY_PAD) <= value), probe, count)
    return count


@triton.jit
def _radix_thresholds(scratch, cells, held, n, kk, target, below, rho, seg_lo, seg_end, next_held,
                      K: tl.constexpr, S: tl.constexpr, LOG_S: tl.constexpr):
    """The K-1 thresholds of one row from the keys of its candidates, with the cumulative cell
    counts and the cells' first values found among them.

    ``scratch[0:held]`` holds the keys of every weight of the candidate bins (``held <= S``),
    in any order; they are sorted (``S`` lanes, padded with the largest int32) and written
    back.  A candidate bin's keys then occupy the sorted positions ``[seg_lo, seg_lo + size)``,
    ``seg_lo`` being the number of candidates in the bins below it, so target ``k`` (rank
    ``rho_k`` within its bin ``B_k``) is the key at ``seg_lo_k + rho_k``.  Binary lifting from
    there finds ``after_k``, the number of candidates ``<= t_k``, so
    ``#{w <= t_k} = below_k + after_k - seg_lo_k`` and the key at ``after_k`` is the smallest
    candidate above ``t_k``: the first value of cell ``k + 1`` when it lies in ``t_k``'s bin
    (``after_k < seg_end_k``) or when the next non-empty bin is a candidate (``next_held_k``);
    otherwise it is the smallest weight of that bin, not held (cell ``k + 1`` needs no first
    value when ``#{w <= t_k} = n``).

    Writes, for ``k < K - 1``: ``cells[k]`` = ``t_k``'s key, ``cells[K + k + 1]`` = the float
    bits of cell ``k + 1``'s first value, ``cells[2K + k]`` = ``#{w <= t_k}``.  Returns, per
    target, whether that first value was found (or is not needed).
    """
    j = tl.arange(0, S)
    inside = j < held
    keys = tl.load(scratch + j, mask=inside, other=0.0).to(tl.int32, bitcast=True)
    ordered = tl.sort(tl.where(inside, keys, _KEY_PAD))
    tl.debug_barrier()  # every key read before the sorted ones overwrite them
    tl.store(scratch + j, ordered.to(tl.float32, bitcast=True), mask=inside)
    tl.debug_barrier()
    at = seg_lo + rho
    t = tl.load(scratch + at, mask=target, other=0.0).to(tl.int32, bitcast=True)
    last = at
    for i in tl.static_range(LOG_S):
        probe = last + (S >> (i + 1))
        look = target & (probe < held)
        v = tl.load(scratch + probe, mask=look, other=0.0).to(tl.int32, bitcast=True)
        last = tl.where(look & (v <= t), probe, last)
    after = last + 1
    upto = below + after - seg_lo
    nxt = tl.load(scratch + after, mask=target & (after < held), other=0.0).to(tl.int32, bitcast=True)
    tl.store(cells + kk, t, mask=target)
    tl.store(cells + K + 1 + kk, _key_bits(nxt), mask=target)
    tl.store(cells + 2 * K + kk, upto, mask=target)
    return ~target | (upto == n) | (after < seg_end) | next_held


@triton.jit
def _equal_mass_radix_kernel(w_ptr, codes_ptr, out_ptr, levels_ptr, work_ptr, route_ptr, n,
                             K: tl.constexpr, BITS: tl.constexpr, NB: tl.constexpr, LOG_NB: tl.constexpr,
                             TILE: tl.constexpr, WIDTH: tl.constexpr, KC: tl.constexpr, CB: tl.constexpr,
                             LOG_CB: tl.constexpr):
    """The rule of :func:`_equal_mass_rows_kernel` (thresholds ``t_k`` = the row's order
    statistics at the chunk ends ``r_k``, cell ``#{k : t_k < w}``, level = cell mean in float64
    from the cell's smallest value, rounded once; an empty cell repeats the level below)
    without sorting the row: one program per row reads it in five passes (six on route 2).

    1. ``lo``, ``hi``: the row's minimum and maximum (``TILE`` weights a step).
    2. One histogram (``tl.histogram``, NB bins) of the digit ``b(w) = min(floor((w - lo) NB /
       (hi - lo)), NB - 1)`` (:func:`_radix_digit`), non-decreasing in ``w``.  Binary lifting
       over its prefix sums (:func:`_count_at_most`) names the bin ``B_k`` of every rank
       ``r_k``, the count ``below_k`` of the bins under it and the rank ``rho_k = r_k -
       below_k`` within it.  The *candidates* are the weights of the bins ``B_k``, and of the
       next non-empty bin after ``B_k`` when ``t_k`` is the last of its bin by rank (that bin
       then holds cell ``k + 1``'s first value); each candidate bin gets a segment of the row
       of ``out``, which is written only in the last pass.
    3. If the candidates fit in ``CB`` lanes, each one's key (:func:`_order_key`) goes to its
       bin's segment at a slot from an ``atomic_add`` on the bin's counter (any order: the
       sort that follows makes the result independent of it), and :func:`_radix_thresholds`
       sorts them and reads off the thresholds, the cumulative cell counts and the cells'
       first values (``route`` 0).  A first value it cannot see (``t_k`` tied with the rest
       of its bin: ``route`` 2) is the smallest key of the next non-empty bin, taken by an
       integer ``atomic_min`` of the keys of that bin's weights in one more pass (the minimum
       does not depend on the order of the atomics).  When the candidates do not fit (data
       concentrated in a few bins, e.g. one outlier stretching the range: ``route`` 1), the
       program stops there and the row is left to the sorting kernel
       (:func:`_equal_mass_rows_kernel`, ``ROUTED``), so that no whole-row sort sets this
       kernel's registers.
    4. ``WIDTH`` weights a step (one a lane): the code by a binary search of the key among the
       thresholds' keys (``BITS`` steps), written; ``w - first`` in float64 added to a
       (KC, WIDTH) tile of per-lane cell sums (one select and add per cell), which is summed
       across the lanes once at the end; one such pass per KC cells (one pass for b <= 4).
       Levels from the sums, counts and first values.
    5. The dequantized weights: each code's level.

    ``route_ptr[row]``: the route (0, 1 or 2).  ``work_ptr``: ``3 NB + 3 K`` int32 per row: the
    histogram's prefix sums, per bin a flag or segment start and a counter or minimum key, then
    the thresholds, first values and cumulative counts (:func:`_radix_thresholds`).  The
    weights must be finite.
    """
    row = tl.program_id(0).to(tl.int64)
    w_row = w_ptr + row * n
    out_row = out_ptr + row * n  # the candidates' keys until the last pass writes the row
    code_row = codes_ptr + row * n
    cumul = work_ptr + row * (3 * NB + 3 * K)
    flags = cumul + NB
    minima = flags + NB
    cells = minima + NB
    cols = tl.arange(0, TILE)
    lo_run = tl.full((TILE,), float("inf"), tl.float32)
    hi_run = tl.full((TILE,), float("-inf"), tl.float32)
    for start in range(0, n, TILE):
        live = start + cols < n
        w = tl.load(w_row + start + cols, mask=live, other=0.0)
        lo_run = tl.minimum(lo_run, tl.where(live, w, float("inf")))
        hi_run = tl.maximum(hi_run, tl.where(live, w, float("-inf")))
    lo = tl.min(lo_run, axis=0)
    span = tl.max(hi_run, axis=0) - lo
    spread = (span > 0) & (span < float("inf"))
    inv = tl.where(spread, NB / tl.where(spread, span, 1.0), 0.0)
    hist = tl.zeros((NB,), tl.int32)
    for start in range(0, n, TILE):
        live = start + cols < n
        w = tl.load(w_row + start + cols, mask=live, other=0.0)
        hist += tl.histogram(tl.where(live, _radix_digit(w, lo, inv, NB), 0), NB)
    bins = tl.arange(0, NB)
    hist -= tl.where(bins == 0, tl.cdiv(n, TILE) * TILE - n, 0)  # the padding lanes, counted in bin 0
    tl.store(cumul + bins, tl.cumsum(hist, 0))
    tl.store(flags + bins, tl.zeros((NB,), tl.int32))
    tl.debug_barrier()

    kk = tl.arange(0, K)
    target = kk < K - 1
    base = n // K
    extra = n % K
    rank = tl.where(target, (kk + 1) * base + tl.minimum(kk + 1, extra) - 1, n - 1)
    digit = _count_at_most(cumul, rank, NB, LOG_NB)  # the bin of rank r_k: cumul[digit] > r_k
    upto_bin = tl.load(cumul + digit)
    below = tl.load(cumul + digit - 1, mask=digit > 0, other=0)
    size = upto_bin - below
    rho = rank - below
    after = _count_at_most(cumul, upto_bin, NB, LOG_NB)  # the next non-empty bin (NB: none)
    tl.store(flags + digit, tl.full((K,), 1, tl.int32), mask=target)
    tl.store(flags + after, tl.full((K,), 1, tl.int32), mask=target & (rho == size - 1) & (after < NB))
    tl.debug_barrier()
    held_bins = tl.load(flags + bins) * hist
    held = tl.sum(held_bins, axis=0)
    segment = tl.cumsum(held_bins, 0) - held_bins
    tl.debug_barrier()  # every flag read before the segments replace them
    tl.store(flags + bins, tl.where(held_bins > 0, segment, -1))
    tl.store(minima + bins, tl.zeros((NB,), tl.int32))  # the candidates counted into each segment
    tl.debug_barrier()
    seg_lo = tl.load(flags + digit)
    next_held = tl.load(flags + after, mask=after < NB, other=-1) >= 0

    route = n * 0 + 1
    if held <= CB:
        for start in range(0, n, TILE):
            live = start + cols < n
            w = tl.load(w_row + start + cols, mask=live, other=0.0)
            b = _radix_digit(w, lo, inv, NB)
            seg = tl.load(flags + b, mask=live, other=-1)
            take = seg >= 0
            slot = tl.atomic_add(minima + b, tl.full((TILE,), 1, tl.int32), mask=take, sem="relaxed")
            tl.store(out_row + seg + slot, _order_key(w).to(tl.float32, bitcast=True), mask=take)
        tl.debug_barrier()
        missing = ~_radix_thresholds(out_row, cells, held, n, kk, target, below, rho, seg_lo, seg_lo + size,
                                     next_held, K, CB, LOG_CB)
        route = 2 * tl.max(missing.to(tl.int32), axis=0)
        if route == 2:  # the smallest key of each bin that holds a missing first value
            tl.store(flags + bins, tl.zeros((NB,), tl.int32))
            tl.debug_barrier()
            tl.store(flags + after, tl.full((K,), 1, tl.int32), mask=missing)
            tl.store(minima + after, tl.full((K,), _KEY_PAD, tl.int32), mask=missing)
            tl.debug_barrier()
            for start in range(0, n, TILE):
                live = start + cols < n
                w = tl.load(w_row + start + cols, mask=live, other=0.0)
                b = _radix_digit(w, lo, inv, NB)
                tl.atomic_min(minima + b, _order_key(w), mask=live & (tl.load(flags + b, mask=live, other=0) != 0),
                              sem="relaxed")
            tl.debug_barrier()
            smallest = tl.load(minima + after, mask=missing, other=0, cache_modifier=".cg")  # after the atomics, at L2
            tl.store(cells + K + 1 + kk, _key_bits(smallest), mask=missing)
    tl.store(route_ptr + row, route.to(tl.int8))
    if route != 1:  # route 1: the row is left to the sorting kernel
        tl.store(cells + K, lo.to(tl.int32, bitcast=True))  # cell 0 starts at the minimum
        tl.debug_barrier()
        lanes = tl.arange(0, WIDTH)
        chunk = tl.arange(0, KC)
        sums = tl.zeros((K,), tl.float64)
        for c0 in tl.static_range(0, K, KC):  # KC cells a pass: KC float64 sums a lane
            lane_sums = tl.zeros((KC, WIDTH), tl.float64)  # summed across the lanes after the pass
            for start in range(0, n, WIDTH):
                live = start + lanes < n
                w = tl.load(w_row + start + lanes, mask=live, other=0.0)
                key = _order_key(w)
                code = tl.zeros((WIDTH,), tl.int32)
                for i in tl.static_range(BITS):  # code = #{k : t_k < w}, the t_k sorted: binary lifting
                    step = K >> (i + 1)
                    code += tl.where(tl.load(cells + code + step - 1) < key, step, 0)
                first = tl.load(cells + K + code).to(tl.float32, bitcast=True)
                shifted = w.to(tl.float64) - first.to(tl.float64)
                if c0 == 0:
                    tl.store(code_row + start + lanes, code.to(tl.uint8), mask=live)
                cell = tl.where(live, code - c0, KC)  # padding lanes in no cell
                lane_sums += tl.where(cell[None, :] == chunk[:, None], shifted[None, :], -0.0)  # + -0.0: unchanged
            part = tl.sum(lane_sums, axis=1)
            sums += tl.sum(tl.where(kk[:, None] == c0 + chunk[None, :], part[None, :], 0.0), axis=1)
        upto = tl.load(cells + 2 * K + kk, mask=target, other=n)
        count = upto - tl.load(cells + 2 * K + kk - 1, mask=kk > 0, other=0)
        first = tl.load(cells + K + kk).to(tl.float32, bitcast=True)
        mean = (first.to(tl.float64) + sums / tl.maximum(count, 1).to(tl.float64)).to(tl.float32)
        source = tl.associative_scan(tl.where(count > 0, kk, -1), 0, _max_combine)  # the last non-empty cell
        tl.store(levels_ptr + row * K + kk, mean)
        tl.debug_barrier()
        level = tl.load(levels_ptr + row * K + source)
        tl.debug_barrier()  # every mean read before the levels replace them
        tl.store(levels_ptr + row * K + kk, level)
        tl.debug_barrier()
        for start in range(0, n, TILE):
            live = start + cols < n
            code = tl.load(code_row + start + cols, mask=live, other=0).to(tl.int32)
            tl.store(out_row + start + cols, tl.load(levels_ptr + row * K + code, mask=live, other=0.0), mask=live)


def _equal_mass_outputs(weights: torch.Tensor, *, bits: int) -> tuple:
    """``(weights, codes, dequantized, levels)``: the contiguous rows and the empty outputs of an
    ``equal_mass`` path, once the row length is checked (``2**bits`` to 8192 weights, held whole
    by the sorting kernel)."""
    rows, n = weights.shape
    levels_count = 2**bits
    if not levels_count <= n <= 8192:
        raise ValueError(f"rows of n={n} weights: this kernel takes {levels_count}..8192")
    weights = weights.contiguous()
    codes = torch.empty((rows, n), dtype=torch.uint8, device=weights.device)
    out = torch.empty_like(weights)
    levels = torch.empty((rows, levels_count), dtype=torch.float32, device=weights.device)
    return weights, codes, out, levels


def radix_candidates(n: int, bits: int) -> int:
    """Lanes of the radix path's candidate sort when none are given:
    ``next_power_of_2(n 2**bits / 64)``, at least 128, at most ``next_power_of_2(n)``.

    For N(0, 1) rows the candidate bins hold about ``0.12 n`` weights at ``b = 4`` (the bins
    of the 15 thresholds, each ``(max - min) / 256`` wide at density ``phi(t_k)``), so
    ``n / 4`` lanes leave about a factor 2 of room (``n = 4096``: ~480 of 1024)."""
    block = triton.next_power_of_2(n)
    return min(block, max(128, triton.next_power_of_2(-(-n * 2**bits // 64))))


#: The radix path's launch configurations that ``gpu.py`` times, as (tile, warps); the first is
#: the default.  Not yet timed on a GPU.  Counted from the PTX for sm_90a (each source line's
#: instructions times its executions, rows of 4,096, b = 4, route 0; registers from ``ptxas``):
#: about 270 instructions per weight at 512 x 2 (80 registers), 310 at 1024 x 4 (64), 380 at
#: 2048 x 8 (60), against about 990 for the sorting kernel (86 registers, 16 warps).  Fewer
#: warps a row spread the cell sums' one cross-lane reduction per row over more weights a
#: lane; the tile only sets how many weights a lane reads per step in the other passes.
RADIX_CONFIGS = ((512, 2), (1024, 4), (2048, 8))


def equal_mass_radix_rows_triton(weights: torch.Tensor, *, bits: int, tile: int = RADIX_CONFIGS[0][0],
                                 num_warps: int = RADIX_CONFIGS[0][1], candidates: int | None = None):
    """The radix path (:func:`_equal_mass_radix_kernel`): ``(codes, dequantized, levels, route)``
    of every row of a float32 CUDA tensor (finite weights, rows of ``2**bits`` to 8192).

    Two launches: the radix kernel on every row, then the sorting kernel
    (:func:`_equal_mass_rows_kernel`, ``ROUTED``) on the rows it left (route 1), its other
    programs returning at once.

    Parameters
    ----------
    weights : torch.Tensor, shape (rows, n), float32
    bits : int
        1..8.
    tile : int
        Weights a program reads per step (a power of two >= 16; at most the row's power of two
        is used) in the passes other than the cell sums, which read ``32 num_warps``.
    num_warps : int
        Warps per program of the radix kernel (one program per row).
    candidates : int or None
        Lanes of the candidate sort (a power of two); ``None``: :func:`radix_candidates`.  A row
        whose candidates do not fit goes to the sorting kernel.  ``tile``, ``num_warps`` and
        ``candidates`` are the launch configuration, not the result.

    Returns
    -------
    codes : torch.Tensor, shape (rows, n), uint8
    dequantized : torch.Tensor, shape (rows, n), float32
    levels : torch.Tensor, shape (rows, 2**bits), float32
    route : torch.Tensor, shape (rows,), int8
        0: thresholds and first values from the sorted candidates; 1: too many candidates,
        the row sorted whole by the sorting kernel; 2: as 0, with some cells' first values
        from one more pass over their bins.
    """
    weights, codes, out, levels = _equal_mass_outputs(weights, bits=bits)
    rows, n = weights.shape
    levels_count, block = 2**bits, triton.next_power_of_2(n)
    if tile < 16 or tile & (tile - 1):
        raise ValueError(f"tile={tile!r} must be a power of two >= 16")
    lanes = radix_candidates(n, bits) if candidates is None else candidates
    if lanes < 2 or lanes & (lanes - 1) or lanes > block:
        raise ValueError(f"candidates={candidates!r} must be a power of two from 2 to {block}")
    work = torch.empty((rows, 3 * RADIX_BINS + 3 * levels_count), dtype=torch.int32, device=weights.device)
    route = torch.empty(rows, dtype=torch.int8, device=weights.device)
    _equal_mass_radix_kernel[(rows,)](weights, codes, out, levels, work, route, n, K=levels_count, BITS=bits,
                                      NB=RADIX_BINS, LOG_NB=RADIX_BINS.bit_length() - 1, TILE=min(tile, block),
                                      WIDTH=32 * num_warps, KC=min(levels_count, 16), CB=lanes,
                                      LOG_CB=lanes.bit_length() - 1,
                                      num_warps=num_warps, enable_fp_fusion=False)
    _equal_mass_rows_kernel[(rows,)](weights, codes, out, levels, route, n, K=levels_count, BLOCK=block, ROUTED=True,
                                     num_warps=_sorting_warps(block), enable_fp_fusion=False)
    return codes, out, levels, route


def _sorting_warps(block: int) -> int:
    """Warps of one program of the sorting and bisecting kernels, rows of ``block`` lanes."""
    return min(16, max(4, block // 256))


#: The paths of :func:`equal_mass_rows_triton`.
EQUAL_MASS_PATHS = ("sort", "bisect", "radix")


def equal_mass_rows_triton(weights: torch.Tensor, *, bits: int, path: str = "sort"):
    """``(codes, dequantized, levels)`` of every row of a float32 CUDA tensor (finite weights,
    rows of ``2**bits`` to 8192 weights).

    Parameters
    ----------
    weights : torch.Tensor, shape (rows, n), float32
    bits : int
        1..8.
    path : {"sort", "bisect", "radix"}
        ``"sort"``: the row is sorted in registers (``tl.sort``, :func:`_equal_mass_rows_kernel`);
        ``"bisect"``: no sort, the K-1 thresholds are order statistics found by a 32-pass
        binary search on the float's bits (:func:`_equal_mass_select_kernel`); ``"radix"``: one
        histogram of a digit of the scaled value, then a sort of the few weights of the
        thresholds' bins (:func:`_equal_mass_radix_kernel`, default launch configuration of
        :func:`equal_mass_radix_rows_triton`).  The results are the same.
    """
    if path not in EQUAL_MASS_PATHS:
        raise ValueError(f"path={path!r}: give one of {', '.join(EQUAL_MASS_PATHS)}")
    if path == "radix":
        return equal_mass_radix_rows_triton(weights, bits=bits)[:3]
    weights, codes, out, levels = _equal_mass_outputs(weights, bits=bits)
    rows, n = weights.shape
    levels_count, block = 2**bits, triton.next_power_of_2(n)
    warps = _sorting_warps(block)
    if path == "bisect":
        _equal_mass_select_kernel[(rows,)](weights, codes, out, levels, n, K=levels_count,
                                           KP=max(2, triton.next_power_of_2(levels_count - 1)), BLOCK=block,
                                           num_warps=warps, enable_fp_fusion=False)
    else:
        _equal_mass_rows_kernel[(rows,)](weights, codes, out, levels, None, n, K=levels_count, BLOCK=block,
                                         ROUTED=False, num_warps=warps, enable_fp_fusion=False)
    return codes, out, levels
