r"""Exact multiple-choice knapsack: one option per item, total cost within a budget, least total value.

Problem.  Items :math:`t = 1..T`; item :math:`t` has options :math:`j` with integer cost
:math:`c_{tj} \ge 0` (bytes) and real value :math:`v_{tj} \ge 0` (predicted degradation).
Find :math:`j_t` minimising :math:`\sum_t v_{t j_t}` subject to :math:`\sum_t c_{t j_t} \le B`.

Method (exact; proof in ``proofs/plan_allocation.md``).

0. **Dominated options dropped.**  An option no cheaper and no better than another option of
   its item is never needed: swapping it for the other keeps any choice feasible and its value
   no larger.  Of equal options the first is kept.  On the committed MNIST UNet's fit
   (2026-12-03) 2,872 of its 9,341 options remain, and at 2, 2.5, 3 and 4 bits per weight the
   solver returned the same choices 1.5-3.7 times faster than without this step (idle, 2 cores).
1. **Lagrangian relaxation.**  For :math:`\lambda \ge 0`,
   :math:`g(\lambda) = \sum_t \min_j (v_{tj} + \lambda c_{tj}) - \lambda B` is a lower bound
   on the optimum (weak duality).  :math:`g` is concave and piecewise linear; its maximum
   is found by bisection on :math:`\lambda` over the breakpoints' range.  The minimiser at
   the largest :math:`\lambda` whose choice fits gives a feasible solution (the incumbent),
   improved greedily by the best upgrades that still fit.
2. **Exact refinement** by a dynamic programme over items on Pareto frontiers
   (Nemhauser-Ullmann): the set of non-dominated (cost, value) pairs of the first
   :math:`t` items, each pair keeping its choices.  A partial solution is dropped when it
   cannot fit (its cost plus the cheapest completion exceeds :math:`B`) or cannot win (its
   value plus the Lagrangian bound on the remaining items at the remaining budget exceeds
   the incumbent).  Dominated pairs are never optimal completions' prefixes, and the bound
   is valid for every :math:`\lambda \ge 0`, so the best surviving complete solution is
   optimal.  The returned ``gap`` is 0; the dual bound :math:`g(\lambda^*)` is reported.

Examples
--------
>>> costs = [[1, 2, 4], [1, 3]]
>>> values = [[9.0, 4.0, 1.0], [5.0, 0.0]]
>>> sol = solve_mckp(costs, values, budget=5)
>>> sol.choice, sol.cost, sol.value
((1, 1), 5, 4.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["KnapsackSolution", "solve_mckp", "brute_force_mckp"]

#: Largest number of partial solutions kept after pruning before the refinement gives up.
MAX_FRONTIER = 2_000_000


@dataclass(frozen=True)
class KnapsackSolution:
    r"""An optimal choice of one option per item.

    Attributes
    ----------
    choice : tuple of int
        Option index of every item.
    cost : int
        Total cost of the choice (``<= budget``).
    value : float
        Total value, the minimum over all feasible choices.
    dual_bound : float
        :math:`\max_\lambda g(\lambda)`, the Lagrangian lower bound (``<= value``).
    lagrange_multiplier : float
        The :math:`\lambda` that attains it (the price of a byte in value units).
    frontier_peak : int
        Largest number of partial solutions the exact refinement held.
    """

    choice: tuple
    cost: int
    value: float
    dual_bound: float
    lagrange_multiplier: float
    frontier_peak: int


def _validated(costs, values, budget):
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget={budget!r} must be a non-negative integer")
    if len(costs) != len(values) or len(costs) == 0:
        raise ValueError("costs and values must be non-empty and list the same items")
    c_out, v_out = [], []
    for t, (c, v) in enumerate(zip(costs, values)):
        c = np.asarray(c)
        v = np.asarray(v)
        if v.dtype.kind not in "iuf":
            raise ValueError(f"item {t}: values must be real numbers, got dtype {v.dtype}")
        v = v.astype(np.float64)
        if c.ndim != 1 or c.shape != v.shape or c.size == 0:
            raise ValueError(f"item {t}: costs and values must be non-empty 1-D arrays of one length")
        if not np.issubdtype(c.dtype, np.integer) or np.any(c < 0):
            raise ValueError(f"item {t}: costs must be non-negative integers")
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise ValueError(f"item {t}: values must be finite and >= 0")
        c_out.append(c.astype(np.int64))
        v_out.append(v)
    if sum(int(c.min()) for c in c_out) > budget:
        raise ValueError(
            f"budget={budget} is below the cheapest choice, {sum(int(c.min()) for c in c_out)}"
        )
    dearest = sum(int(c.max()) for c in c_out)
    if dearest > np.iinfo(np.int64).max:
        raise ValueError(f"costs: the dearest choice costs {dearest}, beyond the int64 range of the solver")
    if not np.isfinite(sum(float(v.max()) for v in v_out)):
        raise ValueError("values: the worst choice's total overflows float64")
    return c_out, v_out, min(int(budget), dearest)  # a budget above the dearest choice is that choice's cost


def _undominated(cost, value):
    """Indices of the (cost, value) pairs that no other pair dominates, in ascending cost.

    Pair :math:`k` dominates pair :math:`j` when :math:`c_k \\le c_j` and :math:`v_k \\le v_j`;
    of pairs equal in both, the first index is kept (``np.lexsort`` is stable).  Used on each
    item's options (swapping a dominated option for its dominator keeps any choice feasible and
    does not raise its value, so the optimum over the kept options is the optimum over all;
    ``proofs/plan_allocation.md``) and on the refinement's partial solutions.
    """
    order = np.lexsort((value, cost))  # by cost, then value, then index
    v = value[order]
    keep = np.ones(v.size, dtype=bool)
    keep[1:] = v[1:] < np.minimum.accumulate(v)[:-1]
    return order[keep]


def _relaxed(costs, values, lam):
    """Minimiser of ``v + lam c`` per item (ties: the cheaper option) and its total cost."""
    picks = []
    for c, v in zip(costs, values):
        score = v + lam * c
        best = np.flatnonzero(score == score.min())
        picks.append(int(best[np.argmin(c[best])]))
    return picks, sum(int(c[j]) for c, j in zip(costs, picks))


def _dual(costs, values, lam, budget):
    return sum(float(np.min(v + lam * c)) for c, v in zip(costs, values)) - lam * budget


def _lagrangian(costs, values, budget):
    """(lambda*, dual bound, incumbent choice) by bisection on the multiplier."""
    picks, cost = _relaxed(costs, values, 0.0)
    if cost <= budget:
        return 0.0, _dual(costs, values, 0.0, budget), picks
    hi = 1.0
    while _relaxed(costs, values, hi)[1] > budget:
        hi *= 2.0
    lo = 0.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _relaxed(costs, values, mid)[1] > budget:
            lo = mid
        else:
            hi = mid
    picks, cost = _relaxed(costs, values, hi)
    bound = max(_dual(costs, values, lo, budget), _dual(costs, values, hi, budget))
    # greedy: spend the slack on the upgrade with the largest value drop per item
    improved = True
    while improved:
        improved = False
        best = (0.0, -1, -1)
        for t, (c, v) in enumerate(zip(costs, values)):
            extra = c - c[picks[t]]
            gain = v[picks[t]] - v
            ok = (extra <= budget - cost) & (gain > best[0])
            if np.any(ok):
                j = int(np.flatnonzero(ok)[np.argmax(gain[ok])])
                best = (float(gain[j]), t, j)
        if best[1] >= 0:
            cost += int(costs[best[1]][best[2]] - costs[best[1]][picks[best[1]]])
            picks[best[1]] = best[2]
            improved = True
    lam = hi if _dual(costs, values, hi, budget) >= _dual(costs, values, lo, budget) else lo
    return lam, bound, picks


def solve_mckp(costs: Sequence, values: Sequence, *, budget: int) -> KnapsackSolution:
    """Solve the multiple-choice knapsack exactly (see the module docstring).

    Parameters
    ----------
    costs : sequence of 1-D integer arrays
        ``costs[t][j]``: cost of option ``j`` of item ``t`` (``>= 0``).
    values : sequence of 1-D float arrays
        ``values[t][j]``: its value (finite, ``>= 0``), to be minimised in total.
    budget : int
        Largest total cost.

    Returns
    -------
    KnapsackSolution

    Raises
    ------
    ValueError
        Malformed input, or a budget below the cheapest choice (naming it).
    RuntimeError
        The pruned frontier exceeded :data:`MAX_FRONTIER` partial solutions.
    """
    costs, values, budget = _validated(costs, values, budget)
    kept = [_undominated(c, v) for c, v in zip(costs, values)]  # choices map back through these
    costs = [c[k] for c, k in zip(costs, kept)]
    values = [v[k] for v, k in zip(values, kept)]
    lam, bound, incumbent = _lagrangian(costs, values, budget)
    best_value = sum(float(v[j]) for v, j in zip(values, incumbent))
    n = len(costs)
    min_rest = np.concatenate([np.cumsum([int(c.min()) for c in costs][::-1])[::-1], [0]])
    relaxed_rest = np.concatenate(
        [np.cumsum([float(np.min(v + lam * c)) for c, v in zip(costs, values)][::-1])[::-1], [0.0]]
    )
    tol = 1e-12 * max(best_value, 1e-300)
    # frontier: arrays of cost, value and a parent pointer chain (stage, index) -> choice
    f_cost = np.zeros(1, dtype=np.int64)
    f_value = np.zeros(1)
    history = []
    peak = 1
    for t in range(n):
        c, v = costs[t], values[t]
        cand_cost = (f_cost[:, None] + c[None, :]).ravel()
        cand_value = (f_value[:, None] + v[None, :]).ravel()
        parent = np.repeat(np.arange(f_cost.size), c.size)
        option = np.tile(np.arange(c.size), f_cost.size)
        remaining = budget - cand_cost
        bound_rest = relaxed_rest[t + 1] - lam * remaining
        keep = (remaining >= min_rest[t + 1]) & (cand_value + bound_rest <= best_value + tol)
        cand_cost, cand_value, parent, option = cand_cost[keep], cand_value[keep], parent[keep], option[keep]
        frontier = _undominated(cand_cost, cand_value)
        f_cost, f_value = cand_cost[frontier], cand_value[frontier]
        history.append((parent[frontier], option[frontier]))
        peak = max(peak, f_cost.size)
        if f_cost.size > MAX_FRONTIER:
            raise RuntimeError(
                f"the exact refinement holds {f_cost.size} partial solutions at item {t}; "
                f"more than MAX_FRONTIER={MAX_FRONTIER}"
            )
    k = int(np.argmin(f_value))
    choice = [0] * n
    for t in range(n - 1, -1, -1):
        parents, options = history[t]
        choice[t] = int(options[k])
        k = int(parents[k])
    total_cost = sum(int(c[j]) for c, j in zip(costs, choice))
    total_value = sum(float(v[j]) for v, j in zip(values, choice))
    return KnapsackSolution(
        choice=tuple(int(k[j]) for k, j in zip(kept, choice)), cost=total_cost, value=total_value,
        dual_bound=float(bound), lagrange_multiplier=float(lam), frontier_peak=int(peak),
    )


def brute_force_mckp(costs: Sequence, values: Sequence, *, budget: int) -> tuple:
    """Every combination tried (the test oracle; small instances only): ``(choice, cost, value)``."""
    costs, values, budget = _validated(costs, values, budget)
    grids = np.meshgrid(*[np.arange(c.size) for c in costs], indexing="ij")
    combos = np.stack([g.ravel() for g in grids], axis=1)
    total_cost = sum(costs[t][combos[:, t]] for t in range(len(costs)))
    total_value = sum(values[t][combos[:, t]] for t in range(len(costs)))
    total_value = np.where(total_cost <= budget, total_value, np.inf)
    k = int(np.argmin(total_value))
    return tuple(int(j) for j in combos[k]), int(total_cost[k]), float(total_value[k])
