"""What both feature networks share: input checks, exact float32 arithmetic, progress bars."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["check_uint8_images", "full_fp32", "with_progress"]


@contextlib.contextmanager
def full_fp32():
    """Disable TF32 in cuDNN convolutions and CUDA matmuls for the duration (restored after).

    PyTorch lets cuDNN use TF32 (10-bit mantissa) for float32 convolutions by default, which
    made Inception features depend on the batch size at the 1e-3 level on an H100; exact
    float32 keeps features reproducible across batch sizes and devices.
    """
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def check_uint8_images(images, *, name: str = "images") -> torch.Tensor:
    """``images`` as a uint8 tensor of shape ``(N, C, H, W)`` with ``C`` in (1, 3) and ``N >= 1``.

    Raises
    ------
    TypeError
        Not a numpy array or tensor, or not uint8 (samples must be quantized to [0, 255] first).
    ValueError
        Wrong shape, or no image.
    """
    if isinstance(images, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(images))
    elif isinstance(images, torch.Tensor):
        t = images.detach()
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(images).__name__}")
    if t.dtype != torch.uint8:
        raise TypeError(f"{name} must be uint8 in [0, 255] (quantize samples first), got {t.dtype}")
    if t.ndim != 4 or t.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have shape (N, C, H, W) with C in (1, 3), got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image")
    return t


def with_progress(iterable, enabled: bool, desc: str):
    """``iterable`` wrapped in a tqdm bar labelled ``desc`` when ``enabled``, else unchanged."""
    return tqdm(iterable, desc=desc) if enabled else iterable
