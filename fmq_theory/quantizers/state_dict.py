"""Quantize a whole model state dict the way the paper does, with a per-tensor report."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from fmq_theory.quantizers._base import QuantizedTensor, format_granularity
from fmq_theory.quantizers._input import floating_kind, is_torch_tensor
from fmq_theory.quantizers.api import quantize
from fmq_theory.theory.wasserstein import quantization_w2
from fmq_theory.vocab import PAPER_METHODS

#: Methods whose reference code leaves a tensor of fewer than ``2**bits`` weights unchanged.
REFERENCE_SMALL_UNCHANGED = ("equal_mass", "piecewise_quantile", "log2")


@dataclass(frozen=True)
class TensorReport:
    """Error and cost of one quantized tensor.

    Attributes
    ----------
    name : str
    shape : tuple of int
    n_weights : int
    method : str
    bits : int
    granularity : str
        The grouping actually used (``"tensor"``, ``"channel"``, ``"group:g"``).
    mse : float
        Mean of ``(w - dequantize(w))**2`` over the tensor (float64, on the values the
        user gets back, i.e. after the cast to the input dtype).
    w2 : float
        Exact W2 between the empirical laws of the entries of ``w`` and of its
        dequantized version (whole tensor, every group pooled).
    bits_per_weight : float
        Index bits plus side-information bits over the number of weights.
    """

    name: str
    shape: tuple
    n_weights: int
    method: str
    bits: int
    granularity: str
    mse: float
    w2: float
    bits_per_weight: float


@dataclass(frozen=True)
class QuantizedStateDict:
    """A quantized state dict.

    Attributes
    ----------
    quantized : dict of str to QuantizedTensor
        Every floating, non-empty tensor.
    passthrough : dict of str to tensor
        Every other entry, untouched (integer/bool tensors such as BatchNorm's
        ``num_batches_tracked``, and empty floating tensors).
    report : tuple of TensorReport
        One per quantized tensor, in the original key order.
    keys : tuple of str
        The original key order.
    """

    quantized: Mapping[str, QuantizedTensor]
    passthrough: Mapping[str, object]
    report: tuple
    keys: tuple

    def state_dict(self) -> dict:
        """The dequantized state dict: same keys and order, types, dtypes, devices."""
        return {
            k: (self.quantized[k].dequantize() if k in self.quantized else self.passthrough[k])
            for k in self.keys
        }

    @property
    def n_weights(self) -> int:
        """Number of quantized weights."""
        return sum(r.n_weights for r in self.report)

    @property
    def total_bits(self) -> int:
        """Bits of a checkpoint of the quantized tensors: codes plus stored side info."""
        return sum(q.bits * q.n_weights + q.overhead_bits for q in self.quantized.values())

    @property
    def total_bytes(self) -> float:
        """:attr:`total_bits` / 8 (the passthrough tensors are not counted)."""
        return self.total_bits / 8

    @property
    def bits_per_weight(self) -> float:
        """:attr:`total_bits` over :attr:`n_weights`."""
        return self.total_bits / max(self.n_weights, 1)

    @property
    def mse(self) -> float:
        """MSE over all quantized weights (per-tensor MSEs weighted by their sizes)."""
        return sum(r.mse * r.n_weights for r in self.report) / max(self.n_weights, 1)


def _as_float64(t) -> np.ndarray:
    if is_torch_tensor(t):
        return t.detach().to(device="cpu").double().numpy()
    return np.asarray(t, dtype=np.float64)


def _quantizable(tensor) -> bool:
    """Floating and non-empty."""
    if not floating_kind(tensor):
        return False
    return (tensor.numel() if is_torch_tensor(tensor) else tensor.size) > 0


def _reference_tensor(tensor, *, method: str, bits: int, granularity) -> QuantizedTensor:
    """The reference code's result for ``tensor`` under ``reference_compatible``."""
    n = tensor.numel() if is_torch_tensor(tensor) else tensor.size
    if method in REFERENCE_SMALL_UNCHANGED and n < 2**bits:
        # every group has fewer than 2**bits weights: equal_mass keeps each weight as its
        # own level, which stores the tensor exactly in the same codebook format
        kept = quantize(tensor, method="equal_mass", bits=bits, granularity=granularity)
        return replace(kept, method=method)
    options = {"reference_means": True} if method == "equal_mass" else {}
    return quantize(tensor, method=method, bits=bits, granularity=granularity, **options)


def quantize_state_dict(
    sd: Mapping[str, object],
    *,
    method: str,
    bits: int,
    granularity="channel",
    reference_compatible: bool = False,
    **options,
) -> QuantizedStateDict:
    """Quantize every floating tensor of ``sd`` (the paper's rule).

    Tensors with ``ndim > 1`` use ``granularity`` (default: per output channel, the
    slices along axis 0); tensors with ``ndim <= 1`` given ``"channel"`` are quantized per
    tensor (see :func:`~fmq_theory.quantizers.quantize`).  Integer and bool tensors, and
    empty floating tensors, pass through untouched.

    Parameters
    ----------
    sd : mapping of str to torch.Tensor or numpy.ndarray
        A state dict (CPU or CUDA tensors) or a dict of numpy arrays.
    method, bits, granularity, **options
        As for :func:`~fmq_theory.quantizers.quantize`.
    reference_compatible : bool
        Reproduce the paper's reference code (Quantized-FM/LowBit-HighFid @ 63d3f53,
        ``quantizerFunctions/PC-*-Quant.py``) bit for bit on float32/float64 tensors,
        including two behaviours that are not part of the quantizers' definitions and
        that the library does not do by default: (1) for ``equal_mass``,
        ``piecewise_quantile`` and ``log2``, a tensor with fewer than ``2**bits`` weights
        is left unchanged (the reference's ``numel() < 2**bits`` rule; here it is stored
        exactly, each weight its own codebook level, and its bits are counted);
        (2) ``equal_mass`` levels are the float32 ``numpy.mean`` of each cell
        (``reference_means=True``) instead of the correctly rounded mean.  The one
        remaining difference is on tied weights, where the reference's unstable argsort
        can give equal weights different levels and this package never does (see
        :mod:`fmq_theory.quantizers.equal_mass`).  Only for the four methods of
        :data:`fmq_theory.vocab.PAPER_METHODS`, without ``options``; the reference's only
        grouping is ``"channel"`` (the default), so equality is established there
        (``scripts/reference_equality.py``, ``tests/test_reference_quantizers.py``).

    Returns
    -------
    QuantizedStateDict

    Examples
    --------
    >>> import torch
    >>> sd = {"w": torch.tensor([[0.0, 0.1, 0.9, 1.0]]), "step": torch.tensor(3)}
    >>> qsd = quantize_state_dict(sd, method="uniform_minmax", bits=1)
    >>> qsd.state_dict()
    {'w': tensor([[0., 0., 1., 1.]]), 'step': tensor(3)}
    >>> qsd.report[0].name, round(qsd.report[0].mse, 6)
    ('w', 0.005)
    """
    if not isinstance(sd, Mapping):
        raise TypeError(f"sd must be a mapping of names to tensors, not {type(sd).__name__}")
    if not isinstance(reference_compatible, (bool, np.bool_)):
        raise TypeError(f"reference_compatible={reference_compatible!r} must be a bool")
    if reference_compatible and (method not in PAPER_METHODS or options):
        raise ValueError(
            f"reference_compatible=True applies to the paper's methods {', '.join(PAPER_METHODS)} "
            f"without options, not method={method!r} with options {sorted(options)}"
        )
    quantized, passthrough, report = {}, {}, []
    for name, tensor in sd.items():
        if not _quantizable(tensor):
            passthrough[name] = tensor
            continue
        try:
            if reference_compatible:
                qt = _reference_tensor(tensor, method=method, bits=bits, granularity=granularity)
            else:
                qt = quantize(tensor, method=method, bits=bits, granularity=granularity, **options)
        except ValueError as exc:
            raise ValueError(f"tensor {name!r}: {exc}") from exc
        original = _as_float64(tensor)
        restored = _as_float64(qt.dequantize())
        quantized[name] = qt
        report.append(
            TensorReport(
                name=name,
                shape=qt.shape,
                n_weights=qt.n_weights,
                method=method,
                bits=qt.bits,
                granularity=format_granularity(qt.granularity),
                mse=float(np.mean((original - restored) ** 2)),
                w2=quantization_w2(original, restored),
                bits_per_weight=qt.bits_per_weight,
            )
        )
    return QuantizedStateDict(quantized, passthrough, tuple(report), tuple(sd.keys()))
