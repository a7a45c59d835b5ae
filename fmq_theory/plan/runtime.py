r"""Inference from a quantized file with the codes kept packed: dequantize on the fly.

:func:`load_quantized_model` replaces every quantized parameter of a module by a
:class:`PackedTensor` child holding only what the file holds (the bit-packed code stream
as ``uint8`` and the per-group levels rebuilt from the stored side information), and
every kept float16 tensor by a :class:`CastTensor`.  The attribute itself becomes a
property (of a per-module subclass) that rebuilds the full-precision tensor on each access,
so a layer's forward gets its weight as before and drops it afterwards; at rest the model
holds :math:`\lceil b n / 8\rceil` bytes per tensor plus its levels (:func:`resident_bytes`).
The rebuilt weights equal the dequantized state dict bit for bit (levels gathered in their
stored dtype, cast to the parameter's dtype), so samples equal those of the dequantized
model.  Reading such an attribute outside a forward (e.g. ``conv.weight.device``) works
too, at the cost of one dequantization.  An empty buffer ``fmq_compute_dtype`` of the
parameters' dtype is added to the model so that
:func:`fmq_theory.flow.velocity.placement` still finds the compute dtype when every
parameter is packed.

Unpacking follows :mod:`fmq_theory.io.packing`: code :math:`i` is stream bits
:math:`ib..ib+b-1`, least significant first; stream bit :math:`k` is bit :math:`k \bmod 8`
of byte :math:`\lfloor k/8 \rfloor`.

Examples
--------
>>> packed = torch.tensor([57, 3], dtype=torch.uint8)  # codes 1, 2, 3, 0, 3 at 2 bits
>>> unpack_codes_torch(packed, bits=2, count=5).tolist()
[1, 2, 3, 0, 3]
"""

from __future__ import annotations

import os

import numpy as np
import torch

from fmq_theory.io.packing import pack_codes, packed_nbytes
from fmq_theory.plan.core import QuantizationPlan, load_plan

__all__ = ["CastTensor", "PackedTensor", "load_quantized_model", "resident_bytes", "unpack_codes_torch"]


def unpack_codes_torch(packed: torch.Tensor, *, bits: int, count: int) -> torch.Tensor:
    """The ``count`` codes of a packed ``uint8`` stream, as ``int64`` (torch twin of
    :func:`fmq_theory.io.packing.unpack_codes`).

    Raises
    ------
    ValueError
        ``bits`` outside 1..8, ``count`` not a non-negative integer, or ``packed`` not a 1-D
        ``uint8`` tensor of exactly :func:`~fmq_theory.io.packing.packed_nbytes` bytes.
    """
    expected = packed_nbytes(count, bits)  # checks bits and count
    if not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8 or packed.shape != (expected,):
        raise ValueError(f"packed must be a 1-D uint8 tensor of {expected} bytes ({count} codes of {bits} bits), "
                         f"got {type(packed).__name__} {getattr(packed, 'dtype', '')} "
                         f"{tuple(getattr(packed, 'shape', ()))}")
    shifts = torch.arange(8, device=packed.device, dtype=torch.uint8)
    stream = ((packed[:, None] >> shifts) & 1).reshape(-1)[: count * bits].reshape(count, bits)
    weights = torch.tensor([1 << j for j in range(bits)], device=packed.device, dtype=torch.int64)
    return (stream.to(torch.int64) * weights).sum(1)


class PackedTensor(torch.nn.Module):
    """A tensor stored as packed codes plus per-group levels; calling it dequantizes."""

    def __init__(self, packed: np.ndarray, levels: np.ndarray, *, bits: int, shape: tuple, group_size: int,
                 dtype: torch.dtype):
        super().__init__()
        self.register_buffer("packed", torch.from_numpy(np.ascontiguousarray(packed)))
        self.register_buffer("levels", torch.from_numpy(np.ascontiguousarray(levels)))
        self.bits, self.shape, self.group_size, self.dtype = int(bits), tuple(shape), int(group_size), dtype

    def forward(self) -> torch.Tensor:
        n = int(np.prod(self.shape, dtype=np.int64))
        codes = unpack_codes_torch(self.packed, bits=self.bits, count=n)
        group = torch.arange(n, device=codes.device) // self.group_size
        flat = self.levels.reshape(-1)[group * self.levels.shape[1] + codes]
        return flat.to(self.dtype).reshape(self.shape)


class CastTensor(torch.nn.Module):
    """A tensor kept at a smaller float dtype; calling it casts to the parameter's dtype."""

    def __init__(self, value: torch.Tensor, *, dtype: torch.dtype):
        super().__init__()
        self.register_buffer("value", value.detach().clone())
        self.dtype = dtype

    def forward(self) -> torch.Tensor:
        return self.value.to(self.dtype)


def _owner(model: torch.nn.Module, name: str) -> tuple[torch.nn.Module, str]:
    path, _, attr = name.rpartition(".")
    return (model.get_submodule(path) if path else model), attr


def _packed_property(attr: str) -> property:
    key = f"{attr}_fmq_packed"
    return property(lambda self: self._modules[key](), doc=f"``{attr}`` dequantized on access")


def _attach(module: torch.nn.Module, attr: str, holder: torch.nn.Module) -> None:
    """Replace ``module.<attr>`` by ``holder``: the attribute becomes a property that calls it."""
    if attr in module._parameters:
        del module._parameters[attr]
    elif attr in module._buffers:
        del module._buffers[attr]
    module.add_module(f"{attr}_fmq_packed", holder)
    cls = type(module)
    if not getattr(cls, "_fmq_packed_class", False):
        cls = type(cls.__name__, (cls,), {"_fmq_packed_class": True, "__module__": cls.__module__})
        module.__class__ = cls
    setattr(cls, attr, _packed_property(attr))


def load_quantized_model(model: torch.nn.Module, path) -> torch.nn.Module:
    """Swap every quantized tensor of ``model`` for one that keeps its codes packed.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture the plan was made for (its weights are replaced; modified in place).
    path : str, os.PathLike or QuantizationPlan
        A file written by :meth:`QuantizationPlan.save` (or ``fmq plan``), or a plan.

    Returns
    -------
    torch.nn.Module
        ``model``, in eval mode on the CPU, holding packed codes and levels.

    Raises
    ------
    ValueError
        The file names a tensor the model does not have, or one of another shape.
    """
    plan = path if isinstance(path, QuantizationPlan) else load_plan(os.fspath(path))
    model.cpu().eval()
    state = model.state_dict()
    dtype = next((t.dtype for t in state.values() if t.is_floating_point()), torch.float32)
    model.register_buffer("fmq_compute_dtype", torch.empty(0, dtype=dtype))
    dtypes = plan.settings["dtypes"]
    for choice in plan.choices:
        if choice.name not in state:
            raise ValueError(f"the plan has tensor {choice.name!r}, which model does not have")
        target = state[choice.name]
        module, attr = _owner(model, choice.name)
        qt = plan.quantized.quantized.get(choice.name)
        if qt is not None:
            if tuple(qt.shape) != tuple(target.shape):
                raise ValueError(f"tensor {choice.name!r} has shape {qt.shape} in the plan, {tuple(target.shape)} "
                                 "in model")
            codes = np.asarray(qt.codes).reshape(-1)[: qt.n_weights]
            holder = PackedTensor(pack_codes(codes, qt.bits), np.asarray(qt.levels), bits=qt.bits, shape=qt.shape,
                                  group_size=qt.codes.shape[1], dtype=getattr(torch, qt.dtype))
            _attach(module, attr, holder)
            continue
        kept = plan.quantized.passthrough[choice.name]
        if tuple(kept.shape) != tuple(target.shape):
            raise ValueError(f"tensor {choice.name!r} has shape {tuple(kept.shape)} in the plan, "
                             f"{tuple(target.shape)} in model")
        if kept.dtype == target.dtype:
            with torch.no_grad():
                target.copy_(kept)
        else:
            _attach(module, attr, CastTensor(kept, dtype=getattr(torch, dtypes[choice.name])))
    return model


def resident_bytes(model: torch.nn.Module) -> int:
    """Bytes of every parameter and buffer the model holds at rest (packed codes included)."""
    seen, total = set(), 0
    for t in (*model.parameters(), *model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total
