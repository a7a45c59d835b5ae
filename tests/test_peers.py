"""Peers at equal honest bits: each peer's bits against its storage format written out by hand,
and its dequantized weights against an independent reading of the format (or the package's
own module path).

Oracles:
* bits: the byte layout of each format from its specification (GGML block sizes of llama.cpp's
  ``ggml-common.h``: Q4_0 is an fp16 scale + 16 bytes per 32 weights, TQ2_0 64 bytes + fp16 per
  256, MXFP4 one e8m0 byte + 16 bytes per 32; HQQ packs 8/b codes per byte, ten 3-bit codes
  per int32, fp16 scale and zero per group; torchao int4: 4 bits per code, bf16 scale and zero
  per group; NF4: 4 bits per code, an fp32 absmax per block, plus its serialised state);
* values: Q4_0 re-implemented in numpy from the format's definition; NF4 values lie on
  ``absmax * code`` for the 16 NF4 levels published in QLoRA (Dettmers et al. 2023, appendix E)
  and are the nearest such level; HQQ against ``hqq.core.quantize.HQQLinear`` (the package's
  own layer) built from the same weight; torchao int4 values on the group's 16-level affine
  grid of bf16 scale and zero.
"""

import math

import numpy as np
import pytest
import torch
from hqq.core.quantize import BaseQuantizeConfig, HQQLinear

from fmq_theory.harness.peers import (FAMILIES, SMALL_TENSOR_WEIGHTS, peer_at_budget, peer_candidates,
                                      quantize_peer)
from fmq_theory.quantizers import quantize_state_dict

#: The 16 NF4 levels, QLoRA (arXiv:2305.14314) appendix E.
NF4_LEVELS = np.array([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                       -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                       0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                       0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0])


def _sd(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"conv.weight": torch.randn(8, 4, 3, 3, generator=g) * 0.1,   # 288 weights: 9 blocks of 32
            "lin.weight": torch.randn(16, 64, generator=g) * 0.05,         # 1024 weights
            "lin.bias": torch.randn(16, generator=g),
            "norm.weight": 1 + 0.1 * torch.randn(16, generator=g),
            "steps": torch.tensor(3)}


def test_gguf_bits_follow_the_block_layout():
    sd = _sd()
    for qtype, block, nbytes in (("Q4_0", 32, 18), ("MXFP4", 32, 17), ("Q8_0", 32, 34), ("TQ2_0", 256, 66)):
        q = quantize_peer(sd, family="gguf", setting=qtype)
        for name in ("conv.weight", "lin.weight"):
            n = sd[name].numel()
            expect = n // block * nbytes * 8 if n % block == 0 else 16 * n
            assert q.tensor_bits[name] == expect, (qtype, name)
        assert q.tensor_bits["lin.bias"] == 16 * 16 and q.tensor_format["lin.bias"] == "fp16"
        assert "steps" not in q.tensor_bits and torch.equal(q.state_dict["steps"], sd["steps"])
        assert q.n_weights == 288 + 1024 + 32
        assert q.bits_per_weight == pytest.approx(q.total_bits / q.n_weights, rel=1e-15)


def test_gguf_q4_0_equals_the_format_read_from_its_definition():
    sd = _sd()
    w = sd["lin.weight"].numpy().reshape(-1, 32).astype(np.float32)
    # Q4_0: d = m / -8 with m the entry of largest magnitude (sign kept), stored in fp16;
    # codes trunc(x / d + 8.5) clipped to [0, 15]; value (code - 8) * fp16(d)
    m = w[np.arange(w.shape[0]), np.abs(w).argmax(axis=1)][:, None]
    d = m / -8
    inv = np.where(d == 0, 0, 1 / d)
    codes = np.clip(np.trunc(w.astype(np.float64) * inv.astype(np.float64) + 8.5), 0, 15)
    expect = ((codes - 8) * d.astype(np.float16).astype(np.float32)).astype(np.float32)
    got = quantize_peer(sd, family="gguf", setting="Q4_0").state_dict["lin.weight"].numpy().reshape(-1, 32)
    np.testing.assert_array_equal(got, expect)


def test_hqq_bits_and_its_own_layer():
    sd = _sd()
    for nbits, per_byte in ((2, 4), (3, None), (4, 2)):
        q = quantize_peer(sd, family="hqq:g64", setting=f"b{nbits}")
        groups = 1024 // 64
        codes = 64 * math.ceil(groups / 10) * 4 if per_byte is None else 1024 // per_byte
        assert q.tensor_bits["lin.weight"] == 8 * (codes + 2 * 2 * groups), nbits
        assert q.tensor_format["conv.weight"] == "fp16"  # 288 weights: not whole groups of 64
        layer = torch.nn.Linear(64, 16, bias=False)
        layer.weight.data = sd["lin.weight"].clone()
        cfg = BaseQuantizeConfig(nbits=nbits, group_size=64, axis=1)
        ref = HQQLinear(layer, quant_config=cfg, compute_dtype=torch.float16, device="cpu").dequantize()
        torch.testing.assert_close(q.state_dict["lin.weight"], ref.float(), rtol=0, atol=2e-3 * 2 ** -nbits)


def test_int4_bits_and_grid():
    sd = _sd()
    q = quantize_peer(sd, family="int4", setting="g32")
    assert q.tensor_bits["lin.weight"] == 4 * 1024 + 2 * 16 * (1024 // 32)
    assert q.tensor_bits["conv.weight"] == 4 * 288 + 2 * 16 * 9
    w = sd["lin.weight"].to(torch.bfloat16).float().reshape(-1, 32)
    deq = q.state_dict["lin.weight"].reshape(-1, 32)
    for g in range(w.shape[0]):
        levels = torch.unique(deq[g])
        assert len(levels) <= 16
        # the reconstruction error is at most half a step (plus bf16 rounding of the result)
        step = (w[g].max() - w[g].min()) / 15
        assert (deq[g] - w[g]).abs().max() <= 0.5 * step * 1.02 + 1e-2 * w[g].abs().max()


def test_nf4_bits_and_levels():
    sd = _sd()
    q = quantize_peer(sd, family="nf4", setting="g64")
    n = 1024
    # 4 bits a code and an fp32 absmax per block of 64, plus the serialised state (the 16-entry
    # fp32 code book and a short packed header): at most a few hundred bytes more
    base = 4 * n + 32 * (n // 64)
    assert base + 16 * 32 <= q.tensor_bits["lin.weight"] <= base + 16 * 32 + 8 * 400
    w = sd["lin.weight"].reshape(-1, 64).numpy()
    deq = q.state_dict["lin.weight"].reshape(-1, 64).numpy()
    absmax = np.abs(w).max(axis=1, keepdims=True)
    grid = absmax[:, :, None] * NF4_LEVELS[None, None, :]
    nearest = np.abs(grid - w[:, :, None]).argmin(axis=2)
    np.testing.assert_allclose(deq, np.take_along_axis(grid, nearest[:, :, None], 2)[:, :, 0], rtol=1e-6, atol=1e-7)
    assert q.tensor_format["conv.weight"] == "nf4 g64"  # a last, shorter block is allowed


def test_rules_and_naive_rule_count_like_the_quantizers():
    sd = _sd()
    qsd = quantize_state_dict({k: v for k, v in sd.items() if k != "steps"}, method="lloyd_max", bits=3)
    q = quantize_peer(sd, family="rule:lloyd_max", setting="b3")
    assert q.total_bits == qsd.total_bits
    for name in qsd.quantized:
        torch.testing.assert_close(q.state_dict[name], qsd.quantized[name].dequantize(), rtol=0, atol=0)
    big = {"big.weight": torch.randn(80, 64)} | sd
    naive = quantize_peer(big, family="naive:uniform_minmax", setting="b3")
    assert naive.tensor_format["lin.weight"] == "fp16" and naive.tensor_bits["lin.weight"] == 16 * 1024
    assert big["big.weight"].numel() > SMALL_TENSOR_WEIGHTS and naive.tensor_format["big.weight"].startswith("uniform_minmax b3")


def test_budget_picks_the_nearest_setting():
    sd = _sd()
    cache = {}
    found = peer_candidates(sd, family="rule:uniform_minmax", stop_above=3.75, cache=cache)
    bpw = [q.bits_per_weight for q in found]
    assert bpw == sorted(bpw) and bpw[-1] > 3.75
    best = peer_at_budget(sd, family="rule:uniform_minmax", budget=3.0, cache=cache)
    assert all(abs(best.bits_per_weight - 3.0) <= abs(b - 3.0) for b in bpw)
    assert peer_at_budget(sd, family="int4", budget=2.0) is None  # 4-bit format, 2-bit budget
    with pytest.raises(ValueError, match="family"):
        quantize_peer(sd, family="gptq", setting="b3")
    with pytest.raises(ValueError, match="setting"):
        quantize_peer(sd, family="gguf", setting="Q2_K")
    with pytest.raises(ValueError, match="budget"):
        peer_at_budget(sd, family="gguf", budget=0.0)
    assert set(FAMILIES) >= {"hqq:g64", "gguf", "nf4", "int4", "rule:equal_mass", "naive:lloyd_max"}
