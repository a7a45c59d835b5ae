r"""What bounds a missed goal: the plan's miss against every measured row of its model.

Goals 1 and 2 of :func:`fmq_theory.results.plan_report.judge_plan_goals` ask for a quality
at a number of bits per weight.  A miss says nothing yet about the plan: the goal may be out
of reach of every method measured at those bits.  For each missed item, :func:`goal_bounds`
reads the model's measured rows, the plan's and every peer's, and reports

* the best row that spends **no more** honest bits per weight than the plan (the plan itself
  when no peer does better): if it misses too, no measured method meets the goal at the
  plan's bits;
* the row of **fewest** honest bits per weight that meets the goal, if any: the measured
  frontier's answer to how many bits the goal takes on that model.

Both are measurements of the rows present, not a proof that no method could do better.

The quantity judged: goal 1, :math:`\Delta\mathrm{FID} = \mathrm{FID}_q - \mathrm{FID}_{fp}`
against :math:`0.1\,\mathrm{FID}_{fp}` at 3 bits; goal 2, :math:`\mathrm{FID}_q` against
:math:`2\,\mathrm{FID}_{fp}` at 2-2.5 bits; both in the model's features
(:attr:`~fmq_theory.results.plan_report.ModelResults.features`).

Examples
--------
>>> from fmq_theory.results.plan_report import Change, ModelResults, PlanCell
>>> def cell(method, bpw, fid):
...     return PlanCell(model="m", budget=3.0, method=method, setting="s", bits_per_weight=bpw, fid=fid,
...                     change=Change(features="classifier", value=fid - 10.0, low=None, high=None))
>>> m = ModelResults(model="m", dataset="d", architecture="unet", features="classifier", net="clf",
...                  fid_fp=10.0, protocol={}, cells=(cell("plan", 3.0, 12.0), cell("hqq", 3.5, 10.5)))
>>> b, = goal_bounds([m])
>>> (b.best.method, b.first.method, b.first.bits_per_weight)  # hqq meets dFID <= 1 with 3.5 bits
('plan', 'hqq', 3.5)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

from matplotlib.figure import Figure

from fmq_theory.results.plan_report import (
    GOAL_BUDGET, GOAL_DFID_FRACTION, GOAL_FID_RATIO, GOAL_LOW_BUDGETS, ModelResults, PlanCell, fid_panels,
    panel_legend, style_fid_axis,
)
from fmq_theory.results.tables import escape_markdown, markdown_table

__all__ = ["GoalBound", "goal_bounds", "goal_bounds_table", "plot_goal_bounds"]


@dataclass(frozen=True)
class GoalBound:
    """One missed item of goal 1 or 2, against its model's measured rows.

    Attributes
    ----------
    goal : int
        1 or 2.
    model : str
    budget : float
    quantity : str
        ``"dFID"`` (goal 1) or ``"FID"`` (goal 2), in the model's features.
    limit : float
        The goal's largest value of ``quantity``.
    plan : PlanCell
    best : PlanCell
        The row of least ``quantity`` among those of at most the plan's honest bits per
        weight (the plan itself when none is lower).
    first : PlanCell or None
        The row of fewest honest bits per weight whose ``quantity`` is at most ``limit`` (the
        lower ``quantity`` among equal bits); ``None`` when no measured row meets the goal.
    """

    goal: int
    model: str
    budget: float
    quantity: str
    limit: float
    plan: PlanCell
    best: PlanCell
    first: PlanCell | None

    def value(self, cell: PlanCell) -> float:
        """``cell``'s value of :attr:`quantity`."""
        return _value(self.quantity, cell)

    @property
    def within_reach(self) -> bool:
        """Whether a measured row of at most the plan's bits meets the goal: then the miss is the plan's."""
        return self.value(self.best) <= self.limit


def _value(quantity: str, cell: PlanCell) -> float:
    return cell.change.value if quantity == "dFID" else cell.fid


def _bound(goal: int, m: ModelResults, plan: PlanCell, quantity: str, limit: float) -> GoalBound:
    value = functools.partial(_value, quantity)
    cheaper = [c for c in m.cells if c.bits_per_weight <= plan.bits_per_weight]
    meeting = [c for c in m.cells if value(c) <= limit]
    return GoalBound(goal=goal, model=m.model, budget=plan.budget, quantity=quantity, limit=limit, plan=plan,
                     best=min(cheaper, key=value),
                     first=min(meeting, key=lambda c: (c.bits_per_weight, value(c))) if meeting else None)


def goal_bounds(models: Sequence[ModelResults], *, budget: float = GOAL_BUDGET,
                dfid_fraction: float = GOAL_DFID_FRACTION, low_budgets: tuple = GOAL_LOW_BUDGETS,
                fid_ratio: float = GOAL_FID_RATIO) -> tuple:
    """Every item of goals 1 and 2 that the plan misses, with what its model's rows say of it.

    The thresholds are :func:`~fmq_theory.results.plan_report.judge_plan_goals`'s, with its
    defaults.

    Returns
    -------
    tuple of GoalBound
        Goal 1's items in the order of ``models``, then goal 2's by model and budget.

    Raises
    ------
    ValueError
        If ``models`` is empty.
    """
    if not models:
        raise ValueError("models is empty: nothing to judge")
    lo, hi = low_budgets
    plans = [(m, c) for m in models for c in m.cells if c.method == "plan"]
    return tuple([_bound(1, m, c, "dFID", dfid_fraction * m.fid_fp) for m, c in plans
                  if c.budget == budget and c.change.value > dfid_fraction * m.fid_fp]
                 + [_bound(2, m, c, "FID", fid_ratio * m.fid_fp) for m, c in plans
                    if lo <= c.budget <= hi and c.fid > fid_ratio * m.fid_fp])


def goal_bounds_table(bounds: Sequence[GoalBound]) -> str:
    """Markdown table: per missed item, the goal's limit, the plan's value, the best row of at
    most the plan's bits ("the plan" when it is the plan) and the row of fewest bits that meets
    the goal, each as ``value (bits/weight)``."""
    def shown(b, c):
        return f"{escape_markdown(c.label)}: {b.value(c):.3g} ({c.bits_per_weight:.3f})"
    rows = [[b.goal, escape_markdown(b.model), f"{b.budget:g}", f"{b.quantity} ≤ {b.limit:.3g}",
             f"{b.value(b.plan):.3g}", "the plan" if b.best is b.plan else shown(b, b.best),
             "none measured" if b.first is None else shown(b, b.first)] for b in bounds]
    return markdown_table(header=["goal", "model", "budget", "goal's limit", "plan", "best at ≤ the plan's bits",
                                  "fewest bits that meet it"], rows=rows)


def plot_goal_bounds(models: Sequence[ModelResults], bounds: Sequence[GoalBound]) -> Figure:
    """One panel per model with a missed item: every measured row's FID against its honest bits
    per weight (the plan's rows as black stars, the peers' as grey dots), each missed goal's
    limit as a line in FID (goal 1: :math:`\\mathrm{FID}_{fp}` plus the dFID limit; goal 2:
    the FID limit) and the missed plan rows ringed in red.  A goal is reached where a point
    falls below its line; log FID axis."""
    shown = [m for m in models if any(b.model == m.model for b in bounds)]
    if not shown:
        raise ValueError("bounds names none of models: nothing to draw")
    fig, axes = fid_panels(len(shown), panel_height=2.9, legend_height=1.0)
    handles = {}
    for ax, m in zip(axes, shown):
        peers = [(c.bits_per_weight, c.fid) for c in m.cells if c.method != "plan"]
        plans = sorted((c.bits_per_weight, c.fid) for c in m.cells if c.method == "plan")
        if peers:
            handles.setdefault("peers", ax.plot(*zip(*peers), "o", color="0.6", ms=3.5, zorder=3)[0])
        handles.setdefault("plan", ax.plot(*zip(*plans), "*-", color="k", ms=9, lw=1.2, zorder=5)[0])
        mine = [b for b in bounds if b.model == m.model]
        for goal, color in ((1, "tab:green"), (2, "tab:orange")):
            limit = next((b.limit + (m.fid_fp if b.quantity == "dFID" else 0.0) for b in mine if b.goal == goal),
                         None)
            if limit is not None:
                handles.setdefault(f"goal {goal}'s limit", ax.axhline(limit, color=color, ls="--", lw=1.3))
        missed = [(b.plan.bits_per_weight, b.plan.fid) for b in mine]
        handles.setdefault("missed plan row", ax.plot(*zip(*missed), "o", mfc="none", mec="tab:red", ms=13,
                                                      mew=1.5, zorder=6)[0])
        style_fid_axis(ax, title=f"{m.model}: {m.features} FID", ylabel="FID")
    panel_legend(fig, handles, ["plan", "peers", "missed plan row", "goal 1's limit", "goal 2's limit"], ncol=5)
    return fig
