"""``scripts/probe_gptq.py``: the rounding of issue 12's GPTQ probe, against closed forms.

Oracles: with an input second moment ``H`` that is diagonal nothing is compensated, so GPTQ equals
round-to-nearest on the same grid; on two input columns the compensation is the least-squares one,
``w2 + (H21 / H22)(w1 - q1)`` (with ``H`` damped as the probe damps it), rounded; every output lies
on its row's grid; and the im2col rows of a convolution reproduce its output through the weight.
"""

from __future__ import annotations

import torch
from _scripts import load_script

from fmq_theory.quantizers.torch_rows import uniform_minmax_rows

probe = load_script("probe_gptq")


def grid(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's ``uniform_minmax`` step and offset, shape (rows, 1)."""
    _, scale, offset = uniform_minmax_rows(w, bits=bits)
    return scale[:, None], offset[:, None]


def test_a_diagonal_moment_leaves_nothing_to_compensate():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 40, generator=g, dtype=torch.float64)
    h = torch.diag(torch.rand(40, generator=g, dtype=torch.float64) + 0.1)
    rtn = probe.rtn_round(w, 3)
    torch.testing.assert_close(probe.gptq_round(w, h, 3, block=16), rtn, rtol=0, atol=1e-12)


def test_two_columns_get_the_least_squares_compensation():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(50, 2, generator=g, dtype=torch.float64)
    a = torch.randn(2, 2, generator=g, dtype=torch.float64)
    h = a @ a.T + 0.05 * torch.eye(2, dtype=torch.float64)
    damped = h + 0.01 * torch.diag(h).mean() * torch.eye(2, dtype=torch.float64)
    scale, offset = grid(w, 2)
    q1 = probe.on_grid(w[:, :1], scale, offset, 2)
    w2 = w[:, 1:] + damped[1, 0] / damped[1, 1] * (w[:, :1] - q1)
    want = torch.cat([q1, probe.on_grid(w2, scale, offset, 2)], dim=1)
    torch.testing.assert_close(probe.gptq_round(w, h, 2), want, rtol=0, atol=1e-12)


def test_every_rounded_weight_lies_on_its_rows_grid():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(8, 300, generator=g, dtype=torch.float64)
    x = torch.randn(1000, 300, generator=g, dtype=torch.float64)
    x = x @ torch.randn(300, 300, generator=g, dtype=torch.float64)
    q = probe.gptq_round(w, x.T @ x / 1000, 3)
    scale, offset = grid(w, 3)
    k = (q - offset) / scale
    torch.testing.assert_close(k, k.round(), rtol=0, atol=1e-9)
    assert k.min() >= 0 and k.max() <= 7


def test_conv_input_rows_reproduce_the_convolution():
    conv = torch.nn.Conv2d(3, 5, 3, padding=1, bias=False).double()
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    rows = probe.layer_inputs(conv, x)
    out = rows @ conv.weight.reshape(5, -1).T  # (batch * positions, out channels)
    torch.testing.assert_close(out, conv(x).permute(0, 2, 3, 1).reshape(-1, 5))
