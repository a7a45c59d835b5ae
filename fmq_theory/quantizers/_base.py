"""The result type shared by every quantizer, and granularity parsing.

A quantized tensor is stored as integer codes (one per weight, ``bits`` bits each) plus
side information (``stored``: codebooks, scales, offsets at their storage dtype).  The
reconstruction levels are a deterministic function of ``stored`` (see
:func:`fmq_theory.quantizers.registry.levels_from_stored`), so a checkpoint that holds the
packed codes and ``stored`` reproduces :meth:`QuantizedTensor.dequantize` bit for bit, and
``bits_per_weight`` counts exactly what such a checkpoint holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from fmq_theory.quantizers._kernels import gather_levels

#: Normalised granularity: ``("tensor",)``, ``("channel",)`` or ``("group", g)``.
Granularity = tuple


def parse_granularity(granularity: Any) -> Granularity:
    """Normalise a granularity given as ``"tensor"``, ``"channel"``, ``("group", g)`` or ``"group:g"``.

    Raises
    ------
    ValueError
        Naming the argument and the bad value.
    """
    if isinstance(granularity, str):
        if granularity in ("tensor", "channel"):
            return (granularity,)
        if granularity.startswith("group:"):
            granularity = ("group", granularity.split(":", 1)[1])
    if isinstance(granularity, (tuple, list)) and len(granularity) == 1 and granularity[0] in ("tensor", "channel"):
        return (granularity[0],)
    if isinstance(granularity, (tuple, list)) and len(granularity) == 2 and granularity[0] == "group":
        try:
            size = int(granularity[1])
        except (TypeError, ValueError):
            size = 0
        if size >= 1 and str(granularity[1]).strip().lstrip("+").isdigit():
            return ("group", size)
    raise ValueError(
        f"granularity={granularity!r} is not one of 'tensor', 'channel', ('group', g) "
        "or 'group:g' with a positive integer g"
    )


def format_granularity(granularity: Granularity) -> str:
    """Inverse of :func:`parse_granularity` for strings: ``"tensor"``, ``"channel"``, ``"group:64"``."""
    return granularity[0] if len(granularity) == 1 else f"group:{granularity[1]}"


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """A tensor quantized by one method at one bit width.

    Attributes
    ----------
    method : str
        Name of the quantizer (one of :data:`fmq_theory.quantizers.METHODS`).
    bits : int
        Index bits per weight; each group has at most ``2**bits`` levels.
    granularity : tuple
        ``("tensor",)``, ``("channel",)`` (slices along axis 0) or ``("group", g)``
        (consecutive runs of ``g`` weights of the row-major flattened tensor).
    shape : tuple of int
        Shape of the original tensor.
    dtype : str
        Dtype of the original tensor (``"float32"``, ``"float16"``, ``"bfloat16"``, ...).
    codes : numpy.ndarray, shape (n_groups, group_size), unsigned integer
        Level index of every weight; row ``g`` is group ``g``.  Entries past the end of
        the tensor (padding of a last, shorter group) are 0 and ignored.
    levels : numpy.ndarray, shape (n_groups, 2**bits), float
        Reconstruction levels of every group; equals
        ``levels_from_stored(method, bits, stored)`` exactly.
    stored : dict of str to numpy.ndarray
        The side information a checkpoint stores besides the packed codes, each array at
        its storage dtype (e.g. ``{"codebook": (n_groups, K) float32}`` or
        ``{"scale": (n_groups,), "offset": (n_groups,)}``).
    framework : {"numpy", "torch"}
        Type of the input; :meth:`dequantize` returns the same type.
    device : str
        Torch device of the input (``"cpu"`` for numpy input).
    info : dict of str to numpy.ndarray
        Diagnostics that are not part of the checkpoint (never stored, not counted in
        :attr:`bits_per_weight`), e.g. for ``lloyd_max``
        ``{"excess_mse_bound": (n_groups,), "histogram": (n_groups,) bool}``.
    """

    method: str
    bits: int
    granularity: Granularity
    shape: tuple
    dtype: str
    codes: np.ndarray
    levels: np.ndarray
    stored: Mapping[str, np.ndarray] = field(default_factory=dict)
    framework: str = "numpy"
    device: str = "cpu"
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_weights(self) -> int:
        """Number of weights of the original tensor."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def overhead_bits(self) -> int:
        """Bits of side information: every array in :attr:`stored` at its storage dtype."""
        return int(sum(8 * np.asarray(a).nbytes for a in self.stored.values()))

    @property
    def bits_per_weight(self) -> float:
        """Index bits plus side-information bits, divided by the number of weights."""
        return (self.bits * self.n_weights + self.overhead_bits) / self.n_weights

    def dequantized_numpy(self) -> np.ndarray:
        """The reconstructed weights as a numpy array of the original shape, in the
        levels' (storage) dtype, i.e. before the cast to the input dtype."""
        flat = gather_levels(self.levels, self.codes).reshape(-1)
        return flat[: self.n_weights].reshape(self.shape)

    def dequantize(self):
        """The reconstructed tensor: same type (numpy/torch), dtype, shape and device as
        the input.  Levels are cast to the input dtype (e.g. rounded to float16)."""
        values = self.dequantized_numpy()
        if self.framework == "torch":
            import torch

            return torch.from_numpy(np.ascontiguousarray(values).reshape(self.shape)).to(
                device=self.device, dtype=getattr(torch, self.dtype)
            )
        return values.astype(self.dtype, copy=False)
