"""Fused Triton kernel of per-channel ``uniform_minmax`` (one program per row), for ``gpu.py``.

The same arithmetic as :func:`fmq_theory.quantizers.torch_rows.uniform_minmax_rows` (its
torch twin, which is the CPU fallback and the oracle): float32 ``(w - min) / scale``
correctly rounded (``div_rn``), round half to even, clip, and the dequantized
``fl(fl(code * scale) + min)`` with FMA contraction off.  The row is read once and the
codes and dequantized weights written once, the copy floor's traffic.  Rows up to
``BLOCK`` weights (one block per row).  Kept with the benchmarks, not the package: the
package has no Triton dependency.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _uniform_rows_kernel(w_ptr, codes_ptr, out_ptr, scale_ptr, lo_ptr, n, levels_minus_one,
                         BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n
    w = tl.load(w_ptr + row * n + cols, mask=mask, other=0.0)
    lo = tl.min(tl.where(mask, w, float("inf")), axis=0)
    hi = tl.max(tl.where(mask, w, float("-inf")), axis=0)
    scale = tl.math.div_rn(hi - lo, levels_minus_one)
    step = tl.where(scale > 0, scale, 1.0)
    t = tl.math.div_rn(w - lo, step)
    base = tl.floor(t)
    frac = t - base
    odd = (base - 2.0 * tl.floor(base * 0.5)) != 0.0
    q = tl.where((frac > 0.5) | ((frac == 0.5) & odd), base + 1.0, base)  # round half to even
    q = tl.minimum(tl.maximum(q, 0.0), levels_minus_one)
    q = tl.where(scale > 0, q, 0.0)
    tl.store(codes_ptr + row * n + cols, q.to(tl.uint8), mask=mask)
    tl.store(out_ptr + row * n + cols, q * scale + lo, mask=mask)
    tl.store(scale_ptr + row, scale)
    tl.store(lo_ptr + row, lo)


def uniform_minmax_rows_triton(weights: torch.Tensor, *, bits: int):
    """``(codes, dequantized, scale, offset)`` of every row of a float32 CUDA tensor."""
    rows, n = weights.shape
    weights = weights.contiguous()
    codes = torch.empty((rows, n), dtype=torch.uint8, device=weights.device)
    out = torch.empty_like(weights)
    scale = torch.empty(rows, dtype=torch.float32, device=weights.device)
    lo = torch.empty_like(scale)
    block = triton.next_power_of_2(n)
    _uniform_rows_kernel[(rows,)](weights, codes, out, scale, lo, n, float(2**bits - 1), BLOCK=block,
                                  num_warps=min(16, max(4, block // 512)), enable_fp_fusion=False)
    return codes, out, scale, lo
