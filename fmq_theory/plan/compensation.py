r"""Error-compensating rounding onto a fitted grid, with the layer statistics it needs, data-free.

A quantized tensor stores codes into fixed per-group levels (:class:`~fmq_theory.quantizers.QuantizedTensor`).
Rounding every weight to its nearest level minimises the weight error :math:`\|W - Q\|^2`, but
what the network feels is the output error of its layer, :math:`(W - Q)\,x` over the inputs
:math:`x` it meets.  With :math:`H = \mathbb{E}[x x^\top]`, the expected squared output error is

.. math::

    \mathcal{E}(Q) = \operatorname{tr}\big((W - Q) H (W - Q)^\top\big),

and :func:`compensated` lowers it on the *same* levels and so at the same bytes: the input
columns are rounded one at a time, and each column's rounding error is pushed onto the columns
not yet rounded along the conditional least-squares direction, through the upper Cholesky
factor :math:`U` of :math:`H^{-1}` (Frantar, Ashkboos, Hoefler and Alistarh 2023, "GPTQ:
Accurate post-training quantization for generative pre-trained transformers", ICLR; the optimal
brain surgeon update of Hassibi and Stork 1993 applied column by column):

.. math::

    q_{:,i} = \operatorname{round}(w_{:,i}), \qquad
    w_{:,j} \leftarrow w_{:,j} - \frac{w_{:,i} - q_{:,i}}{U_{ii}}\, U_{ij} \quad (j > i).

The grid is not refitted (GPTQ's "static groups"): the file, its side information and its
honest bits per weight are those of the candidate the plan chose.

Data-free: :func:`input_moments` takes :math:`H` over the inputs each layer meets while the
full-precision model samples from Gaussian noise with the deployed solver, the trajectories the
sensitivity of :mod:`fmq_theory.plan.sensitivity` comes from; no training or test image is used.

Examples
--------
>>> import numpy as np, torch
>>> from fmq_theory.quantizers import quantize
>>> w = torch.tensor([[0.4, 0.4]], dtype=torch.float64)
>>> qt = quantize(w, method="uniform_minmax", bits=1, granularity="tensor")  # levels 0.4 only
>>> compensated(w, qt, torch.eye(2, dtype=torch.float64)).codes.tolist()
[[0, 0]]
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from fmq_theory.flow.checks import check_noise
from fmq_theory.flow.solvers import integrate
from fmq_theory.flow.velocity import XT, Adapter, placement
from fmq_theory.plan.weighted import nearest_codes
from fmq_theory.quantizers import QuantizedTensor

__all__ = ["COMPENSATED_MODULES", "compensated", "input_moments", "layer_rows", "output_error"]

#: Modules whose weight multiplies an input vector, so that :func:`compensated` applies to it.
COMPENSATED_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def layer_rows(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input vectors ``module``'s flattened weight ``(out, -1)`` multiplies, one per row.

    A linear layer's inputs along the last axis; a convolution's im2col patches (ordered as its
    weight's ``(in, *kernel)`` axes), one per output position.

    Raises
    ------
    ValueError
        A grouped convolution (its weight does not multiply one vector), or a module that is not
        one of :data:`COMPENSATED_MODULES`.
    """
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1])
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        if module.groups != 1:
            raise ValueError(f"module: a grouped convolution (groups={module.groups}) has no input vector per row")
        if isinstance(module, nn.Conv1d):  # as a 2-D convolution of width 1
            x, kernel = x.unsqueeze(-1), (module.kernel_size[0], 1)
            dilation, padding, stride = (module.dilation[0], 1), (module.padding[0], 0), (module.stride[0], 1)
        else:
            kernel, dilation, padding, stride = module.kernel_size, module.dilation, module.padding, module.stride
        if isinstance(padding, str):
            raise ValueError(f"module: padding={padding!r} is not handled (give it as numbers)")
        cols = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    raise ValueError(f"module: {type(module).__name__} is not one of {[m.__name__ for m in COMPENSATED_MODULES]}")


def input_moments(model: nn.Module, noise: torch.Tensor, *, adapter: Adapter = XT(), solver: str = "midpoint",
                  steps: int = 10, batch_size: int = 64, progress: bool = True) -> dict:
    r"""``{weight name: H}``, :math:`H = \mathbb{E}[x x^\top]` (float64, on the CPU) of the inputs of every
    ungrouped :data:`COMPENSATED_MODULES` weight, over the full-precision model's own sampling from ``noise``.

    Every velocity call of the solver (``steps`` of ``solver``, as deployed) contributes all of its
    input vectors (:func:`layer_rows`) with equal weight.  Nothing of the data set is used.

    Raises
    ------
    ValueError
        ``noise`` empty or not finite; no module of the model has such a weight.
    """
    check_noise(noise)
    adapter.check(noise.shape[0])
    layers = {f"{name}.weight": m for name, m in model.named_modules()
              if isinstance(m, COMPENSATED_MODULES) and getattr(m, "groups", 1) == 1}
    if not layers:
        raise ValueError("model has no linear or ungrouped convolution weight to compensate")
    sums, counts, hooks = {}, dict.fromkeys(layers, 0), []
    for key, module in layers.items():
        def hook(mod, inputs, output, key=key):
            rows = layer_rows(mod, inputs[0].detach()).double()
            sums[key] = sums.get(key, 0) + rows.T @ rows
            counts[key] += rows.shape[0]
        hooks.append(module.register_forward_hook(hook))
    device, dtype = placement(model, like=noise)
    try:
        with torch.no_grad():
            for start in tqdm(range(0, noise.shape[0], batch_size), desc="layer input moments", unit="batch",
                              disable=not progress):
                rows = slice(start, start + batch_size)
                integrate(adapter.bind(model, rows=rows, device=device),
                          noise[rows].to(device=device, dtype=dtype), solver=solver, steps=steps)
    finally:
        for h in hooks:
            h.remove()
    return {key: (sums[key] / counts[key]).cpu() for key in layers if counts[key]}


def output_error(w: torch.Tensor, back: torch.Tensor, h: torch.Tensor) -> float:
    r""":math:`\operatorname{tr}((W - Q) H (W - Q)^\top)` of a weight ``w`` restored as ``back`` (both
    flattened to ``(out, -1)``), the expected squared output error of its layer over inputs of
    second moment ``h``."""
    d = (back.reshape(back.shape[0], -1) - w.reshape(w.shape[0], -1)).double()
    return float(torch.einsum("oi,ij,oj->", d, h.double(), d))


def compensated(w: torch.Tensor, qt: QuantizedTensor, h: torch.Tensor, *, damp: float = 0.01,
                block: int = 128) -> QuantizedTensor:
    r"""``qt`` with its codes chosen by error-compensating rounding of ``w`` against ``h``.

    Parameters
    ----------
    w : torch.Tensor
        The tensor ``qt`` quantizes (``qt.shape``); flattened to ``(out, -1)``, whose columns are
        the layer's inputs.
    qt : QuantizedTensor
        Any fit of ``w``: its levels, side information and grouping are kept.
    h : torch.Tensor
        :math:`\mathbb{E}[x x^\top]` of the layer's inputs, ``(w[0].numel(),) * 2``
        (:func:`input_moments`).
    damp : float
        Added to :math:`H`'s diagonal as a fraction of its mean (GPTQ's 1%), so that
        :math:`H` is positive definite; an input never met (a zero diagonal entry) gets 1.
    block : int
        Columns whose updates are applied together (the result does not depend on it beyond
        floating-point rounding).

    Returns
    -------
    QuantizedTensor
        Same levels and stored arrays as ``qt``; only the codes differ.  With ``h`` the
        identity the updates vanish (:math:`U` is diagonal) and the codes are round-to-nearest.

    Raises
    ------
    ValueError
        A shape that does not match, a non-finite ``w`` or ``h``, or ``damp`` not in (0, 1].
    """
    if tuple(w.shape) != tuple(qt.shape):
        raise ValueError(f"w: shape {tuple(w.shape)} is not the quantized tensor's {tuple(qt.shape)}")
    if w.dim() < 2:
        raise ValueError(f"w: shape {tuple(w.shape)} has no input axis to compensate along")
    rows, cols = w.shape[0], w[0].numel()
    if tuple(h.shape) != (cols, cols):
        raise ValueError(f"h: shape {tuple(h.shape)}, expected ({cols}, {cols}) for w of shape {tuple(w.shape)}")
    if not (torch.isfinite(w).all() and torch.isfinite(h).all()):
        raise ValueError("w and h must be finite")
    if not 0 < damp <= 1:
        raise ValueError(f"damp={damp!r} must be in (0, 1]")
    work = w.detach().reshape(rows, cols).double().cpu().clone()
    h = h.detach().double().cpu().clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    h += damp * torch.diag(h).mean() * torch.eye(cols, dtype=h.dtype)
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    levels = np.asarray(qt.levels, dtype=np.float64)
    group_size = qt.codes.shape[1]
    flat = np.arange(rows)[:, None] * cols + np.arange(cols)[None, :]
    group, position = flat // group_size, flat % group_size
    codes = np.empty((rows, cols), dtype=qt.codes.dtype)
    every_row = np.arange(rows)
    for a in range(0, cols, block):
        b = min(a + block, cols)
        err = torch.empty((rows, b - a), dtype=torch.float64)
        for i in range(a, b):
            grid = levels[group[:, i]]  # each row's levels at column i (the plan's own rule picks the nearest)
            codes[:, i] = nearest_codes(work[:, i:i + 1].numpy(), grid)[:, 0]
            q = torch.from_numpy(grid[every_row, codes[:, i]])
            err[:, i - a] = (work[:, i] - q) / u[i, i]
            work[:, i:b] -= err[:, i - a:i - a + 1] * u[i, i:b]
        work[:, b:] -= err @ u[a:b, b:]
    out = np.zeros_like(qt.codes)
    out[group.reshape(-1), position.reshape(-1)] = codes.reshape(-1)
    return replace(qt, codes=out, info={})
