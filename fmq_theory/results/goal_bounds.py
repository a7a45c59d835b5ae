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

from dataclasses import dataclass
from typing import Sequence

from fmq_theory.results.plan_report import (
    GOAL_BUDGET, GOAL_DFID_FRACTION, GOAL_FID_RATIO, GOAL_LOW_BUDGETS, ModelResults, PlanCell,
)
from fmq_theory.results.tables import escape_markdown, markdown_table

__all__ = ["GoalBound", "goal_bounds", "goal_bounds_table"]


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
    def value(c):
        return _value(quantity, c)
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
    out = []
    for goal in (1, 2):
        for m in models:
            for plan in (c for c in m.cells if c.method == "plan"):
                if goal == 1 and plan.budget == budget and plan.change.value > dfid_fraction * m.fid_fp:
                    out.append(_bound(1, m, plan, "dFID", dfid_fraction * m.fid_fp))
                if goal == 2 and lo <= plan.budget <= hi and plan.fid > fid_ratio * m.fid_fp:
                    out.append(_bound(2, m, plan, "FID", fid_ratio * m.fid_fp))
    return tuple(out)


def goal_bounds_table(bounds: Sequence[GoalBound]) -> str:
    """Markdown table: per missed item, the goal's limit, the plan, the best row of at most the
    plan's bits and the row of fewest bits that meets the goal (``value (bits/weight)``)."""
    def shown(b, c):
        return f"{escape_markdown(c.label)}: {b.value(c):.3g} ({c.bits_per_weight:.3f})"
    rows = [[b.goal, escape_markdown(b.model), f"{b.budget:g}", f"{b.quantity} ≤ {b.limit:.3g}",
             f"{b.value(b.plan):.3g} ({b.plan.bits_per_weight:.3f})", shown(b, b.best),
             "none measured" if b.first is None else shown(b, b.first)] for b in bounds]
    return markdown_table(header=["goal", "model", "budget", "goal's limit", "plan (bits/weight)",
                                  "best at ≤ the plan's bits", "fewest bits that meet it"], rows=rows)
