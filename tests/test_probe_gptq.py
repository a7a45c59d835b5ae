"""``scripts/probe_gptq.py``: its two arms are the package's per-channel ``uniform_minmax`` and its compensated
codes on that grid (the rounding itself is tested against the OBQ oracle in ``tests/test_plan_compensation.py``)."""

from __future__ import annotations

import torch
import torch.nn as nn
from _scripts import load_script

from fmq_theory.plan.candidates import dequantized
from fmq_theory.plan.compensation import input_moments, output_error
from fmq_theory.quantizers import quantize

probe = load_script("probe_gptq")


class _Velocity(nn.Module):
    """A two-layer convolutional velocity field ``v(x, t)``."""

    def __init__(self):
        super().__init__()
        self.inner, self.outer = nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(6, 1, 3, padding=1)

    def forward(self, x, t):
        return self.outer(torch.nn.functional.silu(self.inner(x)))


def _model_and_moments():
    torch.manual_seed(0)
    model = _Velocity().double()
    noise = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return model, input_moments(model, noise, steps=2, progress=False)


def test_the_rtn_arm_is_the_packages_per_channel_minmax():
    model, moments = _model_and_moments()
    q, weighted = probe.quantized_copy(model, moments, bits=3, arm="rtn")
    params, total = dict(q.named_parameters()), 0.0
    for name, h in moments.items():
        w = dict(model.named_parameters())[name].data
        expect = dequantized(quantize(w.reshape(w.shape[0], -1), method="uniform_minmax", bits=3,
                                      granularity="channel")).reshape(w.shape)
        assert torch.equal(params[name].data, expect)
        total += output_error(w.reshape(w.shape[0], -1), expect.reshape(w.shape[0], -1), h)
    assert weighted == total
    assert torch.equal(q.inner.bias, model.inner.bias)  # biases stay as they are


def test_the_gptq_arm_keeps_the_grid_and_lowers_the_output_error():
    model, moments = _model_and_moments()
    rtn, e_rtn = probe.quantized_copy(model, moments, bits=3, arm="rtn")
    gptq, e_gptq = probe.quantized_copy(model, moments, bits=3, arm="gptq")
    assert e_gptq < e_rtn
    for name in moments:
        w = dict(model.named_parameters())[name].data
        qt = quantize(w.reshape(w.shape[0], -1), method="uniform_minmax", bits=3, granularity="channel")
        rows = dict(gptq.named_parameters())[name].data.reshape(w.shape[0], -1)
        levels = torch.as_tensor(qt.levels).to(rows.dtype)
        # every compensated weight is one of its row's levels
        assert all(torch.isin(rows[i], levels[i]).all() for i in range(rows.shape[0]))
