"""Conversion of user tensors (numpy arrays or torch tensors) to float arrays, with checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Input dtypes accepted, by name.
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def is_torch_tensor(obj) -> bool:
    """Whether ``obj`` is a torch tensor (without importing torch if it is not loaded)."""
    module = type(obj).__module__
    if not module.startswith("torch"):
        return False
    import torch

    return isinstance(obj, torch.Tensor)


@dataclass(frozen=True)
class ArrayInput:
    """A checked input tensor as a C-contiguous numpy array.

    Attributes
    ----------
    values : numpy.ndarray, original shape
        float64 for float64 input, else float32 (float16/bfloat16 are widened exactly).
    dtype : str
        Name of the input dtype (one of :data:`FLOAT_DTYPES`).
    framework : {"numpy", "torch"}
    device : str
    absmax : float
        ``max|values|`` (0 for an empty input), from the range already read by the
        finiteness check.
    """

    values: np.ndarray
    dtype: str
    framework: str
    device: str
    absmax: float

    @property
    def storage_dtype(self) -> np.dtype:
        """float64 for float64 input, float32 otherwise."""
        return self.values.dtype


def floating_kind(w) -> bool:
    """Whether ``w`` (numpy array or torch tensor) has a real floating dtype."""
    if is_torch_tensor(w):
        return bool(w.is_floating_point())
    return isinstance(w, np.ndarray) and w.dtype.kind == "f"


def as_array(w, *, name: str = "w", allow_empty: bool = False) -> ArrayInput:
    """Check ``w`` and return it as an :class:`ArrayInput`.

    Raises
    ------
    TypeError
        If ``w`` is neither a numpy array nor a torch tensor, or its dtype is not one of
        float16, bfloat16, float32, float64 (integers, bool, complex, float128).
    ValueError
        If ``w`` is empty (unless ``allow_empty``) or holds NaN or infinite values.
    """
    if is_torch_tensor(w):
        import torch

        dtype = str(w.dtype).removeprefix("torch.")
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} has dtype {w.dtype}; supported: {', '.join(FLOAT_DTYPES)}")
        target = torch.float64 if dtype == "float64" else torch.float32
        values = w.detach().to(device="cpu", dtype=target).contiguous().numpy()
        framework, device = "torch", str(w.device)
    elif isinstance(w, np.ndarray):
        dtype = w.dtype.name
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} has dtype {w.dtype}; supported: {', '.join(FLOAT_DTYPES)}")
        target = np.float64 if dtype == "float64" else np.float32
        values = np.ascontiguousarray(w, dtype=target).reshape(w.shape)  # keeps a 0-d shape
        framework, device = "numpy", "cpu"
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor, not {type(w).__name__}")
    if values.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape {tuple(values.shape)})")
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = values.size - int(np.count_nonzero(np.isfinite(values)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or Inf)")
    return ArrayInput(values, dtype, framework, device, max(-lo, hi))
