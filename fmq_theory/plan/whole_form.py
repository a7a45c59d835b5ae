r"""An allocation priced by the whole first-order form, the cross-tensor terms included.

The knapsack of :mod:`fmq_theory.plan.core` prices an option by the diagonal
:math:`\sum_i s_i e_i^2` of the sample-level Fisher :math:`F`.  The first-order displacement of
a plan that gives tensor :math:`t` the error :math:`e_{t v_t}` of its option :math:`v_t` is the
whole form

.. math::

    Q(v) = E_z \Big|J \sum_t e_{t v_t}\Big|^2 = \sum_{t, u} e_{t v_t}^\top F_{tu}\, e_{u v_u},

and an MSE-optimal code's errors are anti-aligned with the weights (the centroid condition,
:mod:`fmq_theory.plan.first_order`), so the cross terms, within a tensor and between tensors,
do not vanish.  The VJP probes :math:`g_p` of :func:`~fmq_theory.plan.sensitivity.probe_gradients`
estimate :math:`Q` without bias for every combination at once: with
:math:`d_{p t v} = g_{p, t} \cdot e_{t v}`,

.. math::

    \hat Q(v) = \frac{1}{M} \sum_p \Big(\sum_t d_{p t v_t}\Big)^2 ,

:math:`M` = projections × noise draws × entries per sample (so :math:`\hat Q` is per sample and
per entry, like :func:`~fmq_theory.plan.first_order.first_order_displacement`).
:func:`sketch_candidates` computes every :math:`d_{ptv}`, one matrix product per tensor and
probe; :func:`solve_whole_form` minimises :math:`\hat Q` within the byte budget.

:math:`\hat Q` is a quadratic in the choices, not a sum over tensors, so the knapsack's
exactness does not carry over.  The solver is a Lagrangian coordinate descent: for a
multiplier :math:`\lambda` it sweeps the tensors, giving each the option that minimises
:math:`\hat Q + \lambda \cdot \text{bytes}` with every other choice fixed (exact per step, so
the objective never rises and the sweep ends), bisects :math:`\lambda` to the budget, keeps the
best choice that fits, spends the bytes left over on the single changes that lower
:math:`\hat Q` most, and then tries changes of two tensors at once (an upgrade paid for by a
downgrade) among the most promising options.  It starts from a given feasible choice (the plan's knapsack solution) and
never returns a worse one on the probes it was given.

A choice fitted to the probes follows their noise (a winner's curse): with as many tensors as
probes the errors of distinct tensors can be made to cancel along the probe directions alone.
:meth:`CandidateSketch.split` gives two independent halves of the probes, one to choose with
and one to score the choice on, and the plan's variants are ranked by sampled displacement
anyway (:mod:`fmq_theory.plan.selection`).  Only the model and Gaussian noise are used.

Measured (``scripts/plan_whole_form_cpu.py`` -> ``results/plan_whole_form_dit_cpu.json``): on the
FashionMNIST DiT at HQQ g128 b2's 2.337 bits per weight, re-allocating each of the plan's four
knapsack variants from its own choice (48 probes to choose, 48 held out) lowered the sampled
displacement of three of the eight re-allocations and raised it for two, outside both
intervals; the best, 0.218 [0.201, 0.236] per entry, is within the interval of the best
knapsack variant, 0.236 [0.211, 0.261], and far from HQQ's 0.132 [0.117, 0.146].  The plan
therefore does not use this allocation; it is the tool that measured why not.

Examples
--------
Two tensors whose errors cancel along the only probe direction: the whole form finds the pair
that cancels, which prices of single tensors cannot see.

>>> sketch = CandidateSketch(dots=(np.array([[1.0, 2.0]]), np.array([[-2.0, 0.5]])), batches=np.array([0]),
...                          norm=1.0)
>>> sol = solve_whole_form([np.array([1, 1]), np.array([1, 1])], sketch, budget=2, start=(0, 1))
>>> sol.choice, sol.value
((1, 0), 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from fmq_theory.flow.solvers import check_probe_settings
from fmq_theory.flow.velocity import XT, Adapter, placement
from fmq_theory.plan.sensitivity import probe_gradients

__all__ = ["CandidateSketch", "WholeFormSolution", "sketch_candidates", "solve_whole_form"]

#: Bisection steps on the Lagrange multiplier.
BISECTION_STEPS = 40
#: Largest number of coordinate sweeps per multiplier.
MAX_SWEEPS = 100
#: Options considered for changes of two tensors at once: half the most improving single changes, half the
#: downgrades that free the most bytes per unit of objective.
PAIR_POOL = 1024


@dataclass(frozen=True, eq=False)
class CandidateSketch:
    r"""Every option's error projected on every probe: :math:`d_{ptv} = g_{p,t} \cdot e_{tv}`.

    Attributes
    ----------
    dots : tuple of numpy.ndarray
        One float64 array ``(n_probes, n_options)`` per tensor, in the fitted order (all zero
        for a tensor the samples do not depend on, such as a float buffer).
    batches : numpy.ndarray
        Shape ``(n_probes,)``: the noise batch of each probe (the probes of one batch share
        its noise draws).
    norm : float
        :math:`M`: projections times noise draws times entries per sample.
    """

    dots: tuple
    batches: np.ndarray
    norm: float

    @property
    def n_probes(self) -> int:
        return int(self.batches.size)

    def value(self, choice: Sequence[int]) -> float:
        """:math:`\\hat Q` of one option per tensor, per sample and entry."""
        s = sum(d[:, j] for d, j in zip(self.dots, choice))
        return float(s @ s / self.norm)

    def split(self) -> tuple["CandidateSketch", "CandidateSketch"]:
        """Two independent sketches: the probes of even and of odd noise batches.

        Raises
        ------
        ValueError
            Fewer than 2 batches.
        """
        ids = np.unique(self.batches)
        if ids.size < 2:
            raise ValueError(f"split needs at least 2 noise batches, the sketch has {ids.size}")
        parts = []
        for parity in (0, 1):
            keep = np.isin(self.batches, ids[parity::2])
            share = keep.sum() / self.batches.size  # equal projections per batch: the half's share of M
            parts.append(CandidateSketch(dots=tuple(d[keep] for d in self.dots), batches=self.batches[keep],
                                         norm=self.norm * float(share)))
        return parts[0], parts[1]


@dataclass(frozen=True)
class WholeFormSolution:
    """The choice of :func:`solve_whole_form`.

    Attributes
    ----------
    choice : tuple of int
        Option index of every tensor.
    cost : int
        Its bytes (``<= budget``).
    value : float
        :math:`\\hat Q` of ``choice`` on the sketch it was chosen with.
    start_value : float
        :math:`\\hat Q` of the starting choice (``>= value``).
    lagrange_multiplier : float
        The multiplier of the best choice found by the bisection (0 when the start was kept).
    """

    choice: tuple
    cost: int
    value: float
    start_value: float
    lagrange_multiplier: float


def _signed_errors(fitted, t: int, state, *, device) -> torch.Tensor:
    """``(n_options, n)`` float32: the error of every option of tensor ``t`` on the values the model gets back."""
    weight = state[fitted.names[t]]
    w = weight.detach().to(device=device, dtype=torch.float64).reshape(-1)
    return torch.stack([(fitted.option(t, j, state=state).restored(weight.dtype).to(device=device, dtype=torch.float64)
                         .reshape(-1) - w).float() for j in range(len(fitted.fitted[t]))])


def sketch_candidates(
    model: torch.nn.Module,
    fitted,
    noise: torch.Tensor,
    *,
    adapter: Adapter = XT(),
    solver: str = "midpoint",
    steps: int = 10,
    projections: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = False,
) -> CandidateSketch:
    """Project every fitted option's error on the VJP probes of ``model`` (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The full-precision model ``fitted`` was fitted to.
    fitted : FittedCandidates
        Of :func:`fmq_theory.plan.fit_candidates`.
    noise : torch.Tensor, shape ``(n, *event)``
        Gaussian starting noise.
    adapter, solver, steps, projections, batch_size, seed, progress
        As :func:`~fmq_theory.plan.sensitivity.probe_gradients`.  Use a ``seed`` other than the
        sensitivity's for probes independent of the fitted codebooks.

    Returns
    -------
    CandidateSketch

    Notes
    -----
    Memory: the errors of every option of a tensor are held at once, float32, on the model's
    device: ``4 * n_options * n`` bytes for the largest tensor, and the probes' gradients one
    at a time.
    """
    check_probe_settings(solver=solver, steps=steps, projections=projections, batch_size=batch_size)
    device, _ = placement(model, like=noise)
    state = model.state_dict()
    errors = {name: _signed_errors(fitted, t, state, device=device) for t, name in enumerate(fitted.names)}
    found: dict[str, list] = {name: [] for name in fitted.names}
    batches, rows_total = [], 0
    last = -1
    for b, rows, grads in probe_gradients(model, noise, adapter=adapter, solver=solver, steps=steps,
                                          projections=projections, batch_size=batch_size, seed=seed,
                                          progress=progress):
        if b != last:
            rows_total += rows.stop - rows.start
            last = b
        batches.append(b)
        for name, e in errors.items():
            g = grads.get(name)
            found[name].append(np.zeros(e.shape[0]) if g is None else (e @ g.reshape(-1).float()).double().cpu().numpy())
    entries = int(np.prod(noise.shape[1:]))
    return CandidateSketch(dots=tuple(np.stack(found[name]) for name in fitted.names),
                           batches=np.asarray(batches, dtype=np.int64),
                           norm=float(projections * rows_total * entries))


def _descend(dots, sq, costs, choice, lam):
    """Coordinate descent on ``sum(s**2) + lam * cost`` from ``choice`` (changed in place); returns ``s``."""
    s = sum(d[:, j] for d, j in zip(dots, choice))
    for _ in range(MAX_SWEEPS):
        changed = False
        for t, (d, q, c) in enumerate(zip(dots, sq, costs)):
            rest = s - d[:, choice[t]]
            score = 2.0 * (rest @ d) + q + lam * c
            j = int(np.argmin(score))
            if score[j] < score[choice[t]] - 1e-12 * abs(score[choice[t]]):
                choice[t] = j
                s = rest + d[:, j]
                changed = True
        if not changed:
            break
    return s


def _fill(dots, sq, costs, choice, budget):
    """Spend the bytes left on the single changes that lower the objective most (in place)."""
    s = sum(d[:, j] for d, j in zip(dots, choice))
    cost = sum(int(c[j]) for c, j in zip(costs, choice))
    while True:
        best = (-1e-12 * float(s @ s), -1, -1)  # a change must lower the objective by more than round-off
        for t, (d, q, c) in enumerate(zip(dots, sq, costs)):
            rest = s - d[:, choice[t]]
            delta = 2.0 * (rest @ d) + q - float(s @ s - rest @ rest)
            delta[choice[t]] = 0.0
            ok = (c - c[choice[t]] <= budget - cost) & (delta < best[0])
            if np.any(ok):
                j = int(np.flatnonzero(ok)[np.argmin(delta[ok])])
                best = (float(delta[j]), t, j)
        if best[1] < 0:
            return
        t, j = best[1], best[2]
        cost += int(costs[t][j] - costs[t][choice[t]])
        s = s - dots[t][:, choice[t]] + dots[t][:, j]
        choice[t] = j


def _pairs(dots, sq, costs, choice, budget, pool):
    """Changes of two tensors at once (an upgrade paid for by a downgrade) that lower the objective, best first,
    among ``pool`` options (in place); each accepted pair is followed by :func:`_fill`."""
    owner = np.concatenate([np.full(c.size, t) for t, c in enumerate(costs)])
    option = np.concatenate([np.arange(c.size) for c in costs])
    for _ in range(10 * len(costs) + 10):
        s = sum(d[:, j] for d, j in zip(dots, choice))
        slack = budget - sum(int(c[j]) for c, j in zip(costs, choice))
        delta_vec = np.concatenate([d - d[:, [choice[t]]] for t, d in enumerate(dots)], axis=1)  # (P, options)
        gain = 2.0 * (s @ delta_vec) + np.einsum("pv,pv->v", delta_vec, delta_vec)
        extra = np.concatenate([c - c[choice[t]] for t, c in enumerate(costs)])
        moving = option != np.array([choice[t] for t in owner])
        ups = np.flatnonzero(moving)[np.argsort(gain[moving])][: pool // 2]
        down = np.flatnonzero(moving & (extra < 0))
        down = down[np.argsort(gain[down] / -extra[down])][: pool // 2]
        u = np.union1d(ups, down)
        if u.size < 2:
            return
        pair = gain[u][:, None] + gain[u][None, :] + 2.0 * (delta_vec[:, u].T @ delta_vec[:, u])
        ok = (owner[u][:, None] != owner[u][None, :]) & (extra[u][:, None] + extra[u][None, :] <= slack)
        pair = np.where(ok, pair, np.inf)
        i, j = np.unravel_index(int(np.argmin(pair)), pair.shape)
        if not pair[i, j] < -1e-12 * float(s @ s):
            return
        for k in (u[i], u[j]):
            choice[owner[k]] = int(option[k])
        _fill(dots, sq, costs, choice, budget)


def solve_whole_form(costs: Sequence, sketch: CandidateSketch, *, budget: int, start: Sequence[int]) -> WholeFormSolution:
    """Least :math:`\\hat Q` within ``budget`` bytes by Lagrangian coordinate descent (module docstring).

    Parameters
    ----------
    costs : sequence of 1-D integer arrays
        Bytes of every option of every tensor, in the sketch's order.
    sketch : CandidateSketch
    budget : int
        Largest total bytes.
    start : sequence of int
        A choice within ``budget`` (the plan's knapsack solution); the result is never worse on
        ``sketch``.

    Returns
    -------
    WholeFormSolution

    Raises
    ------
    ValueError
        ``costs`` and ``sketch`` of different tensors or options, or ``start`` not a choice
        within ``budget``.
    """
    costs = [np.asarray(c, dtype=np.int64) for c in costs]
    if len(costs) != len(sketch.dots) or any(c.shape != (d.shape[1],) for c, d in zip(costs, sketch.dots)):
        raise ValueError("costs and sketch must list the same tensors with the same options")
    start = [int(j) for j in start]
    if len(start) != len(costs) or any(not 0 <= j < c.size for j, c in zip(start, costs)):
        raise ValueError(f"start must give one option index per tensor ({len(costs)} tensors)")
    if sum(int(c[j]) for c, j in zip(costs, start)) > budget:
        raise ValueError(f"start costs more than budget={budget}")
    dots = list(sketch.dots)
    sq = [np.einsum("pv,pv->v", d, d) for d in dots]

    def total(choice):
        return sum(int(c[j]) for c, j in zip(costs, choice))

    start_value = sketch.value(start)
    best, best_value, best_lam = list(start), start_value, 0.0
    scale = max(start_value * sketch.norm, 1e-300) / max(float(total(start)), 1.0)  # objective per byte, to bracket
    lo, hi = 0.0, scale
    for _ in range(60):  # a multiplier at which the descent fits
        choice = list(start)
        _descend(dots, sq, costs, choice, hi)
        if total(choice) <= budget:
            break
        hi *= 4.0
    for step in range(BISECTION_STEPS + 1):
        lam = 0.0 if step == 0 else 0.5 * (lo + hi)
        choice = list(start)
        _descend(dots, sq, costs, choice, lam)
        fits = total(choice) <= budget
        if fits:
            _fill(dots, sq, costs, choice, budget)
            value = sketch.value(choice)
            if value < best_value:
                best, best_value, best_lam = list(choice), value, lam
            if step == 0:
                break
            hi = lam
        elif step > 0:
            lo = lam
    _fill(dots, sq, costs, best, budget)
    _pairs(dots, sq, costs, best, budget, PAIR_POOL)
    return WholeFormSolution(choice=tuple(best), cost=total(best), value=sketch.value(best),
                             start_value=start_value, lagrange_multiplier=float(best_lam))
