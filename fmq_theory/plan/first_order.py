r"""The first-order displacement of the samples by a weight error, cross-weight terms included.

The plan prices a weight error :math:`e` by the diagonal of the sample-level Fisher
:math:`F = E_z[J^\top J]` (:mod:`fmq_theory.plan.sensitivity`): :math:`\sum_i s_i e_i^2`.
The first-order displacement itself is the whole quadratic form

.. math::

    E_z |J e|^2 = e^\top F e = \sum_i F_{ii} e_i^2 + \sum_{i \ne j} F_{ij} e_i e_j ,

and the cross terms vanish only when the errors of distinct weights are uncorrelated with mean
zero.  Quantization errors are not: an MSE-optimal code (Lloyd–Max, the MSE-clipped uniform
grid) satisfies the centroid condition :math:`E[w \mid q] = q`, so within every cell
:math:`\sum w_i e_i = -\sum e_i^2` for :math:`e = q - w`: the errors are anti-aligned with
the weights themselves, every tensor shrinks a little, and the shrinkages of all tensors move
the samples together.

The same VJP probes as the sensitivity (:func:`~fmq_theory.plan.sensitivity.probe_gradients`)
estimate the whole form without bias: for a batch of noise draws and :math:`u \sim N(0, I)`,
:math:`g = \nabla_\theta \sum_z \langle u_z, x_N(\theta; z)\rangle` has
:math:`E_u[(g \cdot e)^2] = \sum_z |J_z e|^2`, while :math:`E_u[\sum_i g_i^2 e_i^2]` is the
diagonal's :math:`\sum_z \sum_i |\partial x_N(z)/\partial\theta_i|^2 e_i^2`.  Both are
returned per sample and per entry of the sample, on the same probes, so that they compare
with each other and with a sampled mean squared displacement
(:func:`fmq_theory.plan.selection.displacement`).  Only the model and Gaussian noise are used.

Examples
--------
>>> import torch
>>> class Field(torch.nn.Module):  # v(x, t) = W x
...     def __init__(self):
...         super().__init__()
...         self.W = torch.nn.Parameter(torch.eye(3) * 0.5)
...     def forward(self, x, t):
...         return x @ self.W.T
>>> noise = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
>>> one_weight = {"W": torch.zeros(3, 3).index_put_((torch.tensor(0), torch.tensor(0)), torch.tensor(0.1))}
>>> d = first_order_displacement(Field(), noise, [one_weight], projections=4, batch_size=8)[0]
>>> abs(d.value - d.diagonal) < 1e-12 * d.value  # one weight: no cross terms
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from scipy import stats

from fmq_theory.flow.solvers import check_probe_settings
from fmq_theory.flow.velocity import XT, Adapter, placement
from fmq_theory.plan.sensitivity import probe_gradients

__all__ = ["FirstOrderDisplacement", "first_order_displacement"]


@dataclass(frozen=True)
class FirstOrderDisplacement:
    """The first-order displacement of one weight error, per sample and per entry.

    Attributes
    ----------
    value : float
        :math:`E_z |J e|^2 / d` (``d`` entries per sample): the whole quadratic form.
    low, high : float
        Its Student-t interval over the batches at ``level`` (``low`` clipped at 0; both
        ``value`` with one batch).
    diagonal : float
        :math:`\\sum_i s_i e_i^2 / d` on the same probes: the additive model's price.
    level : float
    n_probes : int
        Batches times projections.
    """

    value: float
    low: float
    high: float
    diagonal: float
    level: float
    n_probes: int


def _checked_errors(model: torch.nn.Module, errors) -> list[dict]:
    if isinstance(errors, Mapping) or not isinstance(errors, Sequence) or not errors:
        raise ValueError("errors must be a non-empty sequence of mappings (parameter name -> error tensor)")
    shapes = {k: tuple(p.shape) for k, p in model.named_parameters()}
    out = []
    for j, e in enumerate(errors):
        if not isinstance(e, Mapping):
            raise ValueError(f"errors[{j}] must be a mapping of parameter names to tensors, got {type(e).__name__}")
        for name, t in e.items():
            if name not in shapes:
                raise ValueError(f"errors[{j}]: {name!r} is not a parameter of the model")
            t = torch.as_tensor(t)
            if tuple(t.shape) != shapes[name]:
                raise ValueError(f"errors[{j}][{name!r}] has shape {tuple(t.shape)}, the parameter {shapes[name]}")
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"errors[{j}][{name!r}] holds NaN or Inf")
        out.append(dict(e))
    return out


def first_order_displacement(
    model: torch.nn.Module,
    noise: torch.Tensor,
    errors: Sequence[Mapping[str, torch.Tensor]],
    *,
    adapter: Adapter = XT(),
    solver: str = "midpoint",
    steps: int = 10,
    projections: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    level: float = 0.95,
    progress: bool = False,
) -> tuple[FirstOrderDisplacement, ...]:
    """The first-order displacement of every weight error in ``errors`` (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The full-precision velocity model, called through ``adapter``.
    noise : torch.Tensor, shape ``(n, *event)``
        Gaussian starting noise.
    errors : sequence of mapping
        Each maps parameter names to the error :math:`e = \\hat\\theta - \\theta` of that
        parameter (its shape); a parameter left out has no error.
    adapter, solver, steps, projections, batch_size, seed
        As :func:`~fmq_theory.plan.sensitivity.weight_sensitivity`: with the same values (and
        batches of equal size) the probes are that estimate's, so ``diagonal`` equals its
        ``predicted`` on the squared errors divided by the entries per sample.
    level : float
        Level of the interval.
    progress : bool
        tqdm bar over batches.

    Returns
    -------
    tuple of FirstOrderDisplacement
        One per error, in order.

    Raises
    ------
    ValueError
        ``errors`` empty or not mappings of the model's parameter names to finite tensors of
        their shapes; ``level`` outside (0, 1).
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be in (0, 1)")
    errs = _checked_errors(model, errors)
    check_probe_settings(solver=solver, steps=steps, projections=projections, batch_size=batch_size)
    device, _ = placement(model, like=noise)
    errs = [{k: torch.as_tensor(t).to(device=device, dtype=torch.float64) for k, t in e.items()} for e in errs]
    entries = int(np.prod(noise.shape[1:]))
    n_batches = math.ceil(int(noise.shape[0]) / batch_size)
    quad = np.zeros((len(errs), n_batches))
    diag = np.zeros((len(errs), n_batches))
    rows_of = np.zeros(n_batches)
    for b, rows, grads in probe_gradients(model, noise, adapter=adapter, solver=solver, steps=steps,
                                          projections=projections, batch_size=batch_size, seed=seed,
                                          progress=progress):
        rows_of[b] = rows.stop - rows.start
        g = {k: v.double() for k, v in grads.items()}
        for j, e in enumerate(errs):
            dot = sum(float((g[k] * t).sum()) for k, t in e.items() if k in g)
            quad[j, b] += dot * dot
            diag[j, b] += sum(float((g[k] ** 2 * t ** 2).sum()) for k, t in e.items() if k in g)
    scale = projections * entries
    out = []
    for j in range(len(errs)):
        per = quad[j] / (scale * rows_of)  # each batch's estimate per sample and entry
        value = float(quad[j].sum() / (scale * rows_of.sum()))
        if n_batches > 1:
            half = float(stats.t.ppf(0.5 + level / 2, df=n_batches - 1)) * float(np.std(per, ddof=1)) / math.sqrt(n_batches)
        else:
            half = 0.0
        out.append(FirstOrderDisplacement(value=value, low=max(value - half, 0.0), high=value + half,
                                          diagonal=float(diag[j].sum() / (scale * rows_of.sum())), level=level,
                                          n_probes=n_batches * projections))
    return tuple(out)
