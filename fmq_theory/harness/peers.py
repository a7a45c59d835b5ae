"""Peers at equal honest bits per weight: other quantizers, run through their own packages.

Each peer quantizes a float state dict the way its package does and returns the dequantized
weights with the **honest** bit count of the package's real storage format: every packed code,
scale, zero-point, codebook and block header at the dtype the package stores it in.

* ``hqq``: HQQ [1]_ (``hqq.core.quantize.Quantizer``, calibration-free half-quadratic
  optimisation of the zero-point): codes packed as the package packs them, fp16 scale and fp16
  zero per group of ``g``. Bits per weight: ``b`` (3-bit: 3.2, ten codes per int32) + 32/g.
* ``gguf``: llama.cpp block formats through ``gguf.quants.quantize`` (only the types the package
  quantizes in Python): the raw block bytes. Bits per weight: Q4_0 4.5, Q4_1 5.0, Q5_0 5.5,
  Q8_0 8.5, MXFP4 4.25, TQ2_0 2.0625, TQ1_0 1.6875.
* ``nf4``: bitsandbytes NF4 [2]_ (``bitsandbytes.functional.quantize_4bit``): packed codes plus
  every tensor of its serialised ``QuantState`` (absmax, code book, nested statistics, the packed
  JSON header). Bits per weight: 4 + 32/g (with double quantisation about 4 + 8/g).
* ``int4``: torchao int4 weight-only, the tinygemm path (asymmetric, bf16 weights, bf16 scale and
  zero per group of ``g``; ``torchao``'s own quant primitives). Bits per weight: 4 + 32/g.
* ``rule:<method>``: the package's per-channel quantizers
  (:func:`fmq_theory.quantizers.quantize_state_dict`, ``granularity="channel"``), counted by
  ``QuantizedTensor.bits_per_weight``.
* ``naive:<method>``: a naive baseline rule: per-channel ``method`` for tensors of more than
  4,096 weights, every smaller tensor kept in fp16 (16 bits per weight).

Scope of the package peers (``hqq``, ``gguf``, ``nf4``, ``int4``).  Their packages quantize
weight matrices and leave vectors in 16-bit floats; here every floating tensor of two or more
dimensions is flattened row-major and cut into consecutive groups (blocks) of ``g`` weights -
exactly what each package does to a matrix whose rows are a multiple of ``g`` long, and the
im2col layout of a convolution - and every 1-D tensor, or tensor whose size the package cannot
block, is kept in fp16 and counted at 16 bits.  ``nf4`` accepts a last, shorter block.

A :class:`PeerQuantized` carries the dequantized state dict (float32, same keys), the bits of
every tensor and their total; :func:`peer_at_budget` picks, for one family, the setting whose
honest bits per weight on the given state dict are nearest a budget.

References
----------
.. [1] H. Badri and A. Shaji, "Half-Quadratic Quantization of Large Machine Learning Models",
   2023, https://mobiusml.github.io/hqq_blog/.
.. [2] T. Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs", NeurIPS 2023,
   arXiv:2305.14314.

Examples
--------
>>> import torch
>>> sd = {"w": torch.linspace(-1, 1, 128).reshape(2, 64), "b": torch.zeros(2)}
>>> q = quantize_peer(sd, family="gguf", setting="Q4_0")
>>> q.tensor_bits["w"] / 128, q.tensor_bits["b"] / 2   # 18 bytes per block of 32; fp16 bias
(4.5, 16.0)
>>> round(q.bits_per_weight, 4)
4.6769
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import bitsandbytes.functional as bnb_functional
import gguf
import numpy as np
import torch
from hqq.core.quantize import BaseQuantizeConfig as hqq_config
from hqq.core.quantize import Quantizer as HQQQuantizer
from torchao.quantization import quant_primitives as ao_primitives
from torchao.quantization.quant_primitives import MappingType

from fmq_theory.quantizers import quantize_state_dict

__all__ = ["PeerQuantized", "FAMILIES", "quantize_peer", "peer_candidates", "peer_at_budget",
           "SMALL_TENSOR_WEIGHTS"]

#: The naive rule keeps tensors of at most this many weights in fp16.
SMALL_TENSOR_WEIGHTS = 4096

#: GGUF types that ``gguf.quants`` quantizes in Python (the K-quants Q2_K..Q6_K and the IQ
#: types are dequantize-only there: their quantizers live in llama.cpp's C code).
GGUF_TYPES = ("TQ1_0", "TQ2_0", "MXFP4", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0")

_PAPER_AND_OPTIMAL = ("equal_mass", "uniform_minmax", "piecewise_quantile", "log2",
                      "lloyd_max", "uniform_mse", "normal_float")

#: Family -> its settings, in increasing order of bits (on every model here; the ``nf4``
#: settings only roughly: its double quantisation stores a 256-entry fp32 code book per tensor).
FAMILIES = {
    **{f"rule:{m}": tuple(f"b{b}" for b in range(1, 7)) for m in _PAPER_AND_OPTIMAL},
    **{f"naive:{m}": tuple(f"b{b}" for b in range(1, 7)) for m in ("uniform_minmax", "lloyd_max")},
    "hqq:g64": ("b1", "b2", "b3", "b4", "b8"),
    "hqq:g128": ("b1", "b2", "b3", "b4", "b8"),
    "gguf": GGUF_TYPES,
    "nf4": ("g256+dq", "g64+dq", "g64"),
    "int4": ("g256", "g128", "g64", "g32"),
}


@dataclass(frozen=True)
class PeerQuantized:
    """A state dict quantized by one peer at one setting.

    Attributes
    ----------
    family : str
        Key of :data:`FAMILIES` (e.g. ``"hqq:g64"``).
    setting : str
        One of the family's settings (e.g. ``"b3"``, ``"Q4_0"``, ``"g64+dq"``).
    state_dict : dict of str to torch.Tensor
        The dequantized weights, float32, the original keys and shapes.
    tensor_bits : dict of str to int
        Stored bits of every floating tensor.
    tensor_format : dict of str to str
        How each tensor is stored (e.g. ``"hqq b3 g64"``, ``"fp16"``).
    """

    family: str
    setting: str
    state_dict: Mapping[str, torch.Tensor]
    tensor_bits: Mapping[str, int]
    tensor_format: Mapping[str, str]

    @property
    def n_weights(self) -> int:
        """Floating weights of the state dict."""
        return sum(int(v.numel()) for k, v in self.state_dict.items() if k in self.tensor_bits)

    @property
    def total_bits(self) -> int:
        """Bits of every stored tensor together."""
        return int(sum(self.tensor_bits.values()))

    @property
    def bits_per_weight(self) -> float:
        """Honest bits per weight: :attr:`total_bits` over :attr:`n_weights`."""
        return self.total_bits / self.n_weights

    @property
    def label(self) -> str:
        """``"family/setting"``."""
        return f"{self.family}/{self.setting}"


def _fp16(w: torch.Tensor) -> tuple[torch.Tensor, int, str]:
    return w.to(torch.float16).float(), 16 * w.numel(), "fp16"


def _hqq(w: torch.Tensor, nbits: int, group: int, *, round_zero: bool | None = None) -> tuple[torch.Tensor, int, str]:
    """HQQ with the package's own defaults for a weight matrix (``BaseQuantizeConfig``: axis 1,
    optimised zero, the zero rounded at 4 bits, unless ``round_zero`` says otherwise), scale and
    zero kept in fp16 as ``HQQLinear`` keeps them.

    A convolution kernel goes in as its ``(out, in * k * k)`` matrix (HQQ's unpacking assumes
    two dimensions)."""
    params = hqq_config(nbits=nbits, group_size=group, axis=1)["weight_quant_params"]
    if round_zero is not None:
        params = dict(params, round_zero=round_zero)
    w_q, meta = HQQQuantizer.quantize(w.float().reshape(w.shape[0], -1), compute_dtype=torch.float16,
                                      device="cpu", **params)
    meta = dict(meta, compute_dtype=torch.float16, scale=meta["scale"].to(torch.float16),
                zero=meta["zero"].to(torch.float16))
    deq = HQQQuantizer.dequantize(w_q, meta).float().reshape(w.shape)
    bits = 8 * (w_q.numel() * w_q.element_size() + 2 * meta["scale"].numel() * 2)
    return deq, bits, f"hqq b{nbits} g{group}"


def _gguf(w: torch.Tensor, qtype: str) -> tuple[torch.Tensor, int, str]:
    kind = gguf.GGMLQuantizationType[qtype]
    block = gguf.GGML_QUANT_SIZES[kind][0]
    rows = w.detach().float().cpu().numpy().reshape(-1, block)
    raw = gguf.quants.quantize(rows, kind)
    deq = gguf.quants.dequantize(raw, kind).reshape(w.shape)
    return torch.from_numpy(np.ascontiguousarray(deq)).float(), 8 * raw.nbytes, f"gguf {qtype}"


def _nf4(w: torch.Tensor, block: int, double_quant: bool) -> tuple[torch.Tensor, int, str]:
    packed, state = bnb_functional.quantize_4bit(w.float().contiguous(), blocksize=block, quant_type="nf4",
                                                 compress_statistics=double_quant)
    deq = bnb_functional.dequantize_4bit(packed, state).float().reshape(w.shape)
    stored = [packed] + [v for v in state.as_dict(packed=True).values() if torch.is_tensor(v)]
    bits = 8 * sum(t.numel() * t.element_size() for t in stored)
    return deq, bits, f"nf4 g{block}{'+dq' if double_quant else ''}"


def _int4(w: torch.Tensor, group: int) -> tuple[torch.Tensor, int, str]:
    """torchao's tinygemm int4 weight-only numerics on the bf16 weight, flattened to groups."""
    hp = w.to(torch.bfloat16).reshape(-1, group)
    block = (1, group)
    scale, zero = ao_primitives._choose_qparams_affine_tinygemm(
        hp, mapping_type=MappingType.ASYMMETRIC, block_size=block, target_dtype=torch.int32, quant_min=0,
        quant_max=15, scale_dtype=torch.bfloat16, zero_point_dtype=torch.bfloat16)
    codes = ao_primitives._quantize_affine_tinygemm(hp, block, scale, zero, torch.int32, quant_min=0, quant_max=15)
    deq = ao_primitives._dequantize_affine_tinygemm(codes, block, scale, zero, torch.int32, quant_min=0,
                                                    quant_max=15, output_dtype=torch.bfloat16)
    bits = 4 * hp.numel() + 8 * (scale.numel() * scale.element_size() + zero.numel() * zero.element_size())
    return deq.float().reshape(w.shape), bits, f"int4 g{group}"


def _blocks(w: torch.Tensor, block: int, rows_multiple: int = 1) -> bool:
    """A weight (2-D or more) of whole blocks, their count a multiple of ``rows_multiple``."""
    return w.ndim >= 2 and w.numel() % block == 0 and (w.numel() // block) % rows_multiple == 0


def _package_peer(family: str, setting: str):
    """``(fits, quantize)`` of a package peer: which weights it takes, and how."""
    if family.startswith("hqq:"):
        group, nbits = int(family.split(":g")[1]), int(setting[1:])
        # HQQ packs 8 // nbits groups per byte along the group axis (3 bits: ten per int32,
        # padded by the package itself)
        rows = 8 // nbits if nbits in (1, 2, 4) else 1
        return (lambda w: _blocks(w, group, rows)), (lambda w: _hqq(w, nbits, group))
    if family == "gguf":
        block = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[setting]][0]
        return (lambda w: _blocks(w, block)), (lambda w: _gguf(w, setting))
    if family == "nf4":
        block, dq = int(setting.split("+")[0][1:]), setting.endswith("+dq")
        return (lambda w: w.ndim >= 2), (lambda w: _nf4(w, block, dq))
    group = int(setting[1:])
    return (lambda w: _blocks(w, group)), (lambda w: _int4(w, group))


def quantize_peer(sd: Mapping[str, torch.Tensor], *, family: str, setting: str) -> PeerQuantized:
    """Quantize every floating tensor of ``sd`` with one peer at one setting (see the module notes).

    Parameters
    ----------
    sd : mapping of str to torch.Tensor
        A float state dict (CPU or CUDA; the result is on the CPU).  Non-floating entries are
        copied unchanged and not counted.
    family : str
        A key of :data:`FAMILIES`.
    setting : str
        One of ``FAMILIES[family]``.

    Returns
    -------
    PeerQuantized
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
    if setting not in FAMILIES[family]:
        raise ValueError(f"setting must be one of {FAMILIES[family]} for family {family!r}, got {setting!r}")
    cpu = {k: v.detach().cpu() for k, v in sd.items()}
    floating = {k: v for k, v in cpu.items() if v.is_floating_point() and v.numel() > 0}
    out, bits, fmt = dict(cpu), {}, {}
    if family.startswith(("rule:", "naive:")):
        method, b = family.split(":")[1], int(setting[1:])
        big = {k: v for k, v in floating.items()
               if family.startswith("rule:") or v.numel() > SMALL_TENSOR_WEIGHTS}
        qsd = quantize_state_dict({k: v.float() for k, v in big.items()}, method=method, bits=b,
                                  granularity="channel")
        reports = {r.name: r for r in qsd.report}
        for name, qt in qsd.quantized.items():
            out[name] = qt.dequantize().float()
            bits[name] = qt.bits * qt.n_weights + qt.overhead_bits
            fmt[name] = f"{method} b{b} {reports[name].granularity}"
        for name in floating.keys() - big.keys():
            out[name], bits[name], fmt[name] = _fp16(floating[name])
    else:
        fits, fn = _package_peer(family, setting)
        for name, w in floating.items():
            out[name], bits[name], fmt[name] = fn(w) if fits(w) else _fp16(w)
    return PeerQuantized(family=family, setting=setting, state_dict=out, tensor_bits=bits, tensor_format=fmt)


def peer_candidates(sd: Mapping[str, torch.Tensor], *, family: str, stop_above: float,
                    cache: dict | None = None) -> list:
    """The settings of ``family`` quantized on ``sd``, in the family's order, up to and including
    the first whose honest bits per weight exceed ``stop_above``.

    ``cache`` (a dict keyed by ``(family, setting)``) keeps the results between calls.
    """
    cache = {} if cache is None else cache
    found = []
    for setting in FAMILIES[family]:
        key = (family, setting)
        if key not in cache:
            cache[key] = quantize_peer(sd, family=family, setting=setting)
        found.append(cache[key])
        if cache[key].bits_per_weight > stop_above:
            break
    return found


def peer_at_budget(sd: Mapping[str, torch.Tensor], *, family: str, budget: float, tolerance: float = 0.75,
                   cache: dict | None = None) -> PeerQuantized | None:
    """The setting of ``family`` whose honest bits per weight on ``sd`` are nearest ``budget``.

    Ties go to the smaller bit count.  ``None`` when no setting lies within ``tolerance``
    bits of the budget (e.g. a 4-bit-only format at a 2-bit budget).
    """
    if not budget > 0:
        raise ValueError(f"budget must be > 0, got {budget!r}")
    cands = peer_candidates(sd, family=family, stop_above=budget + tolerance, cache=cache)
    best = min(cands, key=lambda q: (abs(q.bits_per_weight - budget), q.bits_per_weight))
    return best if abs(best.bits_per_weight - budget) <= tolerance else None
