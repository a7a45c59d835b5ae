r"""The options the plan chooses from for one tensor, fitted, with their exact storage cost.

A :class:`Candidate` is a method, a bit width, a grouping and the dtype its side
information (codebooks, scales, offsets) is stored at:

================== ==================================================== ====================
method             what is stored per group                             groupings
================== ==================================================== ====================
``lloyd_max``      the exact MSE-optimal codebook (1-D k-means DP)       tensor, channel
``weighted_lloyd`` the sensitivity-weighted optimal codebook             tensor, channel
                   (:mod:`fmq_theory.plan.weighted`; stored as a
                   ``lloyd_max`` codebook)
``uniform_mse``    scale and offset of the MSE-optimal clipped grid      tensor, channel, group
``uniform_minmax`` scale and offset of the min-max grid (nothing         tensor, channel, group
                   clipped)
``normal_float``   the block absmax (NF codebook is a function of b)     group (blocks)
``half_quadratic`` scale and offset of HQQ's grid (min-max step, zero     channel, group
                   point fitted by its lp proximal iteration;
                   :mod:`fmq_theory.quantizers.half_quadratic`)
``float16``,       the tensor itself at that dtype (``bits`` 16 / 32):   tensor
``float32``        for tiny, sensitive tensors
================== ==================================================== ====================

Storage dtype ``float16`` is fitted in float32 and then rounded: the stored arrays are
cast, the levels rebuilt from them (:func:`fmq_theory.quantizers.levels_from_stored`) and
every weight re-assigned to its nearest rebuilt level, so the codes are the best ones for
what the file holds.  (``bfloat16`` side information is not offered: the package's
quantized file stores side arrays through numpy, which has no bfloat16; at equal size
float16 has 3 more mantissa bits and weights never need bfloat16's range.)

Cost (:attr:`FittedCandidate.nbytes`) is exactly the bytes the quantized file holds for the
tensor: ``ceil(bits * n / 8)`` packed code bytes plus every stored array at its dtype
(:mod:`fmq_theory.io.quantized_file`), or ``n`` times the item size for a kept tensor.

Examples
--------
>>> import torch
>>> w = torch.linspace(-1, 1, 64).reshape(4, 16)
>>> fit = fit_candidate(w, Candidate("uniform_mse", 2, "channel", "float16"), sensitivity=None)
>>> fit.nbytes  # 64 codes of 2 bits + 4 fp16 scales + 4 fp16 offsets
32
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from fmq_theory.io.packing import packed_nbytes
from fmq_theory.plan.weighted import nearest_codes, weighted_codebooks
from fmq_theory.quantizers import QuantizedTensor, levels_from_stored, parse_granularity, quantize
from fmq_theory.vocab import PACKED_BITS

__all__ = ["Candidate", "FittedCandidate", "default_candidates", "dequantized", "fit_candidate", "fit_options",
           "scored_candidate",
           "CODE_FAMILIES", "PLAN_METHODS", "KEPT_METHODS"]

#: Methods that quantize (codes plus side information).
PLAN_METHODS = ("lloyd_max", "weighted_lloyd", "uniform_mse", "uniform_minmax", "normal_float", "half_quadratic")
#: The families a plan's variants restrict their quantized options to (kept tensors are in every
#: family): codes that minimise the (weighted) squared error and so clip or pool a group's
#: extreme weights, min-max grids that keep every group's range, and HQQ's grids, a min-max step
#: whose zero point is fitted to a sparse (lp, p < 1) error (:mod:`fmq_theory.plan.selection`).
CODE_FAMILIES = {"optimal": ("lloyd_max", "weighted_lloyd", "uniform_mse", "normal_float"),
                 "minmax": ("uniform_minmax",), "half_quadratic": ("half_quadratic",)}
#: Methods that keep the tensor at a float dtype.
KEPT_METHODS = ("float16", "float32")
#: Storage dtypes of side information.
STORAGE_DTYPES = ("float16", "float32")


@dataclass(frozen=True)
class Candidate:
    """One option for a tensor.

    Attributes
    ----------
    method : str
        One of :data:`PLAN_METHODS` or :data:`KEPT_METHODS`.
    bits : int
        Code bits (1..8), or 16 / 32 for a kept tensor.
    granularity : str
        ``"tensor"``, ``"channel"`` or ``"group:g"``.
    storage : str
        Dtype of the side information (``"float16"``/``"float32"``), or of a kept tensor.
    """

    method: str
    bits: int
    granularity: str = "tensor"
    storage: str = "float32"

    def __post_init__(self):
        if self.method in KEPT_METHODS:
            if (self.bits, self.granularity, self.storage) != ({"float16": 16, "float32": 32}[self.method],
                                                               "tensor", self.method):
                raise ValueError(f"kept candidate {self!r} must have bits 16/32, tensor grouping, storage = method")
            return
        if self.method not in PLAN_METHODS:
            raise ValueError(f"method={self.method!r} is not one of {PLAN_METHODS + KEPT_METHODS}")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not PACKED_BITS[0] <= self.bits <= PACKED_BITS[1]:
            raise ValueError(f"bits={self.bits!r} must be an int in {PACKED_BITS[0]}..{PACKED_BITS[1]}")
        parse_granularity(self.granularity)
        if self.storage not in STORAGE_DTYPES:
            raise ValueError(f"storage={self.storage!r} is not one of {STORAGE_DTYPES}")
        if self.method == "normal_float" and not self.granularity.startswith("group:"):
            raise ValueError("normal_float candidates need a 'group:g' granularity (its blocks)")
        if self.method in ("lloyd_max", "weighted_lloyd") and self.granularity.startswith("group:"):
            raise ValueError(f"{self.method} candidates use 'tensor' or 'channel' grouping")

    @property
    def label(self) -> str:
        """Short name, e.g. ``uniform_mse b3 group:64 fp16``."""
        if self.method in KEPT_METHODS:
            return self.method
        return f"{self.method} b{self.bits} {self.granularity} {self.storage.replace('float', 'fp')}"


@dataclass(frozen=True, eq=False)
class FittedCandidate:
    r"""A candidate fitted to one tensor, with its error and the additive model's price of it.

    Only these few numbers of the error are kept, not :math:`e_i^2` per weight: a plan fits
    about 100 options of every tensor, and their squared errors in float64 would take about
    800 bytes a weight (more than 23 GB for the paper's 55.7M network).

    Attributes
    ----------
    candidate : Candidate
    stored : QuantizedTensor or torch.Tensor or None
        What the file holds: a quantized tensor, or the tensor at the kept dtype (``None`` in a
        fit that keeps prices only: :meth:`fmq_theory.plan.FittedCandidates.option` fits it again).
    nbytes : int
        Exact data bytes in the quantized file.
    mse : float
        Mean of :math:`e_i^2` over the tensor, on the values the model gets back (after the
        cast to the parameter's dtype).
    predicted : float
        :math:`\sum_i \hat s_i e_i^2` with the scoring sensitivity (0 if none was given: a
        tensor without sensitivity, such as a float buffer).
    predicted_replicates : numpy.ndarray
        Shape ``(R,)``: the same sum with each replicate of the scoring sensitivity (empty if
        none was given; :meth:`fmq_theory.plan.sensitivity.WeightSensitivity.terms`).
    """

    candidate: Candidate
    stored: object
    nbytes: int
    mse: float
    predicted: float
    predicted_replicates: np.ndarray

    def restored(self, dtype: torch.dtype) -> torch.Tensor:
        """The values the model gets back, as a CPU tensor of ``dtype`` (the parameter's): the
        dequantized codes, or the kept tensor cast back."""
        if self.stored is None:
            raise ValueError(f"{self.candidate.label!r} keeps its prices only (keep_codes=False): get it with "
                             "FittedCandidates.option, which fits it again")
        if isinstance(self.stored, QuantizedTensor):
            return dequantized(self.stored).to(dtype)
        return self.stored.to(dtype)


def default_candidates(shape: tuple, *, n_weights: int) -> tuple:
    """The default options for a tensor of ``shape``.

    Every tensor: kept in float16 and float32; ``uniform_mse`` and ``uniform_minmax`` at 8
    bits per tensor (float16 or float32 scale and offset); ``lloyd_max`` at 4 bits per tensor
    (float16 codebook).  Tensors of more than 256 weights also: ``lloyd_max`` and
    ``weighted_lloyd`` at 1-4 bits (tensor, and channel for tensors with 2+ dimensions) with
    float16 or float32 codebooks; ``uniform_mse`` at 2-6 bits per channel (float16 or float32
    scales) and in groups of 64 and 256 (float16); ``uniform_minmax`` at 1-6 bits per channel
    (per tensor for 1-D tensors; float16 or float32) and in groups of 64 and 256 (float16);
    ``normal_float`` at 2-4 bits in blocks of 64 and 256 (float16 absmax); ``half_quadratic`` at 1-4
    bits per channel (per tensor for 1-D tensors) and in groups of 64 and 128 (float16 scale and
    offset, the sizes and dtype of the ``hqq`` peer).
    """
    out = [Candidate("float16", 16, "tensor", "float16"), Candidate("float32", 32, "tensor", "float32"),
           Candidate("uniform_mse", 8, "tensor", "float32"), Candidate("uniform_mse", 8, "tensor", "float16"),
           Candidate("lloyd_max", 4, "tensor", "float16"),
           Candidate("uniform_minmax", 8, "tensor", "float16"), Candidate("uniform_minmax", 8, "tensor", "float32")]
    if n_weights <= 256:
        return tuple(out)
    grains = ("tensor", "channel") if len(shape) >= 2 else ("tensor",)
    for storage in STORAGE_DTYPES:
        for bits in (1, 2, 3, 4):
            for g in grains:
                if (bits, g, storage) != (4, "tensor", "float16"):
                    out.append(Candidate("lloyd_max", bits, g, storage))
                out.append(Candidate("weighted_lloyd", bits, g, storage))
        for bits in (2, 3, 4, 5, 6):
            for g in (*grains[1:], "group:64", "group:256"):
                if storage == "float16" or g == "channel":
                    out.append(Candidate("uniform_mse", bits, g, storage))
    for bits in (2, 3, 4):
        for g in ("group:64", "group:256"):
            out.append(Candidate("normal_float", bits, g, "float16"))
    whole = grains[-1]  # the channel, or the tensor of a 1-D weight
    for bits in (1, 2, 3, 4):
        for g in (whole, "group:64", "group:128"):
            out.append(Candidate("half_quadratic", bits, g, "float16"))
    for storage in STORAGE_DTYPES:
        for bits in (1, 2, 3, 4, 5, 6):
            for g in (whole, "group:64", "group:256"):
                if storage == "float16" or g == whole:
                    out.append(Candidate("uniform_minmax", bits, g, storage))
    return tuple(out)


#: numpy's twins of the torch float dtypes, which numpy casts itself.
_NUMPY_FLOATS = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t.to(dtype)`` as a CPU tensor; cast by numpy where it knows both dtypes (the same
    round-to-nearest-even, in the calling thread: no torch intra-op threads are started from
    :func:`~fmq_theory.plan.core.fit_candidates`'s workers)."""
    t = t.detach().cpu()
    if t.dtype in _NUMPY_FLOATS and dtype in _NUMPY_FLOATS:
        return torch.from_numpy(t.numpy().astype(_NUMPY_FLOATS[dtype], order="C"))
    return t.to(dtype)


def _grouped(flat: np.ndarray, n_groups: int, group_size: int) -> np.ndarray:
    padded = np.zeros(n_groups * group_size, dtype=np.float64)
    padded[: flat.size] = flat
    return padded.reshape(n_groups, group_size)


def _restore(qt: QuantizedTensor, stored: dict, x: np.ndarray, n: int) -> QuantizedTensor:
    """``qt`` with side information ``stored``: levels rebuilt, every weight re-assigned to its nearest level."""
    levels = levels_from_stored(qt.method, qt.bits, stored)
    codes = nearest_codes(x, levels)
    codes.reshape(-1)[n:] = 0
    return QuantizedTensor(method=qt.method, bits=qt.bits, granularity=qt.granularity, shape=qt.shape,
                           dtype=qt.dtype, codes=codes, levels=levels, stored=stored, framework=qt.framework,
                           device=qt.device)


def _fit_quantized(w: torch.Tensor, cand: Candidate, sensitivity, cache: dict) -> QuantizedTensor:
    method = "lloyd_max" if cand.method == "weighted_lloyd" else cand.method
    options = {"block_size": None} if method == "normal_float" else {}
    key = (method, cand.bits, cand.granularity)
    if key not in cache:
        cache[key] = quantize(w, method=method, bits=cand.bits, granularity=cand.granularity, **options)
    qt = cache[key]
    n = qt.n_weights
    x = _grouped(_cast(w, torch.float64).numpy().reshape(-1), *qt.codes.shape)
    stored = dict(qt.stored)
    if cand.method == "weighted_lloyd":
        wkey = ("weighted_lloyd", cand.bits, cand.granularity)
        if wkey not in cache:  # with the other widths of this grouping that fit_options announced
            widths = sorted(set(cache.get(("weighted_lloyd", "widths", cand.granularity), ())) | {cand.bits})
            s = _grouped(np.asarray(sensitivity, dtype=np.float64).reshape(-1), *qt.codes.shape)
            for b, codebook in weighted_codebooks(x, s, bits=widths).items():
                cache[("weighted_lloyd", b, cand.granularity)] = codebook
        stored = {"codebook": cache[wkey]}
    if cand.method == "weighted_lloyd" or cand.storage != "float32":
        stored = {k: np.asarray(v).astype(cand.storage) for k, v in stored.items()}
        qt = _restore(qt, stored, x, n)
    return qt


def dequantized(qt: QuantizedTensor) -> torch.Tensor:
    """``qt.dequantize()`` as a CPU torch tensor of the input dtype, for any stored dtype.

    Same values as :meth:`QuantizedTensor.dequantize` (levels gathered in their stored
    dtype, then cast to the input dtype); written with :func:`numpy.take_along_axis` because
    the numba gather kernel of :mod:`fmq_theory.quantizers` does not accept float16 levels.
    """
    values = np.take_along_axis(np.asarray(qt.levels), np.asarray(qt.codes).astype(np.intp), axis=1)
    values = values.reshape(-1)[: qt.n_weights].reshape(qt.shape)
    return _cast(torch.from_numpy(np.ascontiguousarray(values)), getattr(torch, qt.dtype))


def fit_candidate(w: torch.Tensor, cand: Candidate, *, sensitivity, cache: dict | None = None,
                  score: Callable | None = None) -> FittedCandidate | None:
    """Fit ``cand`` to the tensor ``w``; ``None`` if its side information overflows the dtype.

    Parameters
    ----------
    w : torch.Tensor
        A floating tensor (any shape, non-empty).
    cand : Candidate
    sensitivity : numpy.ndarray or None
        Per-weight sensitivity of ``w``'s shape; required for ``weighted_lloyd``.
    cache : dict, optional
        Fits of this same tensor shared between candidates (the float32 fit that a float16
        candidate rounds, the weighted codebook); pass one dict per tensor.
    score : callable, optional
        ``squared_error -> (sum, replicate sums)`` of the scoring sensitivity, e.g.
        ``estimate.scorer(name)``
        (:meth:`~fmq_theory.plan.sensitivity.WeightSensitivity.scorer`): what
        :attr:`FittedCandidate.predicted` and :attr:`~FittedCandidate.predicted_replicates` hold.

    Raises
    ------
    ValueError
        ``w`` is empty (a kept candidate's MSE was NaN) or, for a quantized candidate, has a NaN
        or infinite entry; a ``weighted_lloyd`` candidate without a ``sensitivity`` of one value
        per weight of ``w`` (a shorter one was padded with zeros), or with a negative or
        non-finite one.
    """
    n = w.numel()
    if n == 0:
        raise ValueError(f"w is empty (shape {tuple(w.shape)})")
    if cand.method in KEPT_METHODS:
        kept = _cast(w, getattr(torch, cand.storage))
        nbytes, stored = n * kept.element_size(), kept
    else:
        if cand.method == "weighted_lloyd" and (sensitivity is None or np.size(sensitivity) != n):
            got = None if sensitivity is None else np.shape(sensitivity)
            raise ValueError(f"candidate {cand.label!r} needs the tensor's sensitivity, one value per weight of w "
                             f"(shape {tuple(w.shape)}), got {got}")
        qt = _fit_quantized(w, cand, sensitivity, {} if cache is None else cache)
        if not all(np.all(np.isfinite(np.asarray(v, dtype=np.float64))) for v in qt.stored.values()):
            return None
        nbytes = packed_nbytes(n, qt.bits) + sum(int(np.asarray(a).nbytes) for a in qt.stored.values())
        stored = qt
    return scored_candidate(w, cand, stored=stored, nbytes=nbytes, score=score)


def fit_options(w: torch.Tensor, options, *, sensitivity, score: Callable | None = None) -> list:
    """:func:`fit_candidate` for every candidate of ``options`` on the one tensor ``w``, sharing
    the work they have in common: a float16 candidate rounds its float32 twin's fit, and the
    weighted codebooks of every width of one grouping come from one DP run per group
    (:func:`fmq_theory.plan.weighted.weighted_codebooks`).  Each result equals
    :func:`fit_candidate`'s for that candidate alone."""
    cache: dict = {}
    for c in options:
        if c.method == "weighted_lloyd":
            key = ("weighted_lloyd", "widths", c.granularity)
            cache[key] = cache.get(key, ()) + (c.bits,)
    return [fit_candidate(w, c, sensitivity=sensitivity, cache=cache, score=score) for c in options]


def scored_candidate(w: torch.Tensor, cand: Candidate, *, stored, nbytes: int,
                     score: Callable | None = None) -> FittedCandidate | None:
    """The :class:`FittedCandidate` of ``w`` that stores ``stored`` (a fit of ``cand``, or one read
    back from a file), scored on the values the model gets back (``score`` as in
    :func:`fit_candidate`); ``None`` if an error is not finite (rounded side information that
    overflows)."""
    original = _cast(w, torch.float64).numpy()
    back = _cast(dequantized(stored) if isinstance(stored, QuantizedTensor) else _cast(stored, w.dtype),
                 torch.float64).numpy()
    e2 = (back - original) ** 2
    if not np.all(np.isfinite(e2)):
        return None
    predicted, replicates = (0.0, np.zeros(0)) if score is None else score(e2)
    return FittedCandidate(candidate=cand, stored=stored, nbytes=int(nbytes), mse=float(e2.mean()),
                           predicted=predicted, predicted_replicates=replicates)
