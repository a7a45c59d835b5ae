r"""The plan made monotone in its budget by its own sampled prediction.

The plan (:func:`fmq_theory.plan.plan_quantization`) minimises a data-free predicted
displacement at each budget separately, and that displacement can rank two plans the other way
round from FID: on the FashionMNIST UNet the plan at 2.5 bits per weight has the lower
displacement and the higher FID than the plan at 2.3582.  A plan at fewer bits than a budget is
also a plan within that budget, so a user who has planned at several budgets can choose among
them.  :func:`plan_envelope` makes that choice by the sampled prediction of each plan
(:func:`fmq_theory.bounds.sampled_dfid`, the ``predicted`` of
:class:`~fmq_theory.results.plan_report.PlanCell`): at budget :math:`B` it takes

.. math::

    \hat p(B) = \operatorname*{arg\,min}_{p \,:\, \mathrm{bpw}(p) \le \mathrm{bpw}(p_B)}
    \widehat{\Delta \mathrm{FID}}(p),

over the model's plan rows :math:`p` of at most the honest bits per weight of the plan
:math:`p_B` made for :math:`B` (ties kept by :math:`p_B`).  The prediction costs sampling a
few hundred to a thousand noise draws per plan, not a full FID, but it is not data-free: it
reads the FID's feature net and its real-image reference statistics.  The pairs it samples are
other noise draws than the FID's samples (``scripts/gpu_plan_eval.py``: seed 2 against seed
0), so the measured FID of the chosen row is a held-out test of the choice.

Examples
--------
>>> from fmq_theory.results.plan_report import Change, ModelResults, PlanCell
>>> def plan(budget, fid, predicted):
...     return PlanCell(model="m", budget=budget, method="plan", setting="s", bits_per_weight=budget, fid=fid,
...                     change=Change(features="classifier", value=fid - 1.0, low=None, high=None),
...                     predicted=predicted)
>>> m = ModelResults(model="m", dataset="d", architecture="unet", features="classifier", net="clf", fid_fp=1.0,
...                  protocol={}, cells=(plan(2.0, 9.0, 8.0), plan(2.5, 15.0, 13.0), plan(3.0, 4.0, 3.0)))
>>> [(c.budget, c.pick.budget) for c in plan_envelope(m)]  # at 2.5 the plan made for 2 is predicted better
[(2.0, 2.0), (2.5, 2.0), (3.0, 3.0)]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

from matplotlib.figure import Figure

from fmq_theory.results.plan_report import ModelResults, PlanCell, fid_panels, panel_legend, style_fid_axis
from fmq_theory.results.tables import escape_markdown, markdown_table

__all__ = ["EnvelopeCell", "budget_inversions", "plan_envelope", "plan_envelope_table", "plot_plan_envelope",
           "with_envelope"]


@dataclass(frozen=True)
class EnvelopeCell:
    """The envelope's choice at one budget of one model.

    Attributes
    ----------
    model : str
    budget : float
    plan : PlanCell
        The plan made for ``budget``.
    pick : PlanCell
        The plan row of least predicted dFID among those of at most ``plan``'s honest bits per
        weight (``plan`` itself on a tie).
    candidates : int
        How many plan rows with a prediction were compared.
    """

    model: str
    budget: float
    plan: PlanCell
    pick: PlanCell
    candidates: int

    @property
    def changed(self) -> bool:
        """Whether the envelope takes another budget's plan."""
        return self.pick is not self.plan

    @property
    def fid_change(self) -> float:
        """The pick's FID less the plan's (negative: the envelope is better)."""
        return self.pick.fid - self.plan.fid

    @property
    def resolved(self) -> bool:
        """Whether the two rows' dFID intervals are disjoint (each is paired with the full-precision
        samples, not with the other row, so this is a conservative test); ``False`` when either
        interval is missing or nothing changed."""
        a, b = self.pick.change, self.plan.change
        if not self.changed or None in (a.low, a.high, b.low, b.high):
            return False
        return a.high < b.low or b.high < a.low


def plan_envelope(model: ModelResults) -> tuple:
    """The envelope of ``model``'s plan rows: at each budget whose plan has a prediction, the
    plan row of least predicted dFID among those of at most that plan's honest bits per weight.

    Plan rows without a prediction are neither chosen nor judged.

    Returns
    -------
    tuple of EnvelopeCell
        By increasing budget; empty when no plan row has a prediction.

    Examples
    --------
    See the module's example.
    """
    plans = [c for c in model.cells if c.method == "plan" and c.predicted is not None]
    out = []
    for plan in sorted(plans, key=lambda c: c.budget):
        within = [c for c in plans if c.bits_per_weight <= plan.bits_per_weight]
        pick = min(within, key=lambda c: (c.predicted, c is not plan, c.bits_per_weight))
        out.append(EnvelopeCell(model=model.model, budget=plan.budget, plan=plan, pick=pick,
                                candidates=len(within)))
    return tuple(out)


def with_envelope(model: ModelResults) -> ModelResults:
    """``model`` with each plan row that has a prediction replaced by the envelope's pick at its
    budget (the pick's measurements under the budget it now serves), so that
    :func:`~fmq_theory.results.plan_report.judge_plan_goals` judges the envelope against the peers.

    Examples
    --------
    >>> from fmq_theory.results.plan_report import Change, ModelResults, PlanCell
    >>> def plan(budget, fid, predicted):
    ...     return PlanCell(model="m", budget=budget, method="plan", setting=f"budget {budget:g}",
    ...                     bits_per_weight=budget, fid=fid, predicted=predicted,
    ...                     change=Change(features="classifier", value=fid - 1.0, low=None, high=None))
    >>> m = ModelResults(model="m", dataset="d", architecture="unet", features="classifier", net="clf", fid_fp=1.0,
    ...                  protocol={}, cells=(plan(2.0, 9.0, 8.0), plan(2.5, 15.0, 13.0)))
    >>> [(c.budget, c.setting, c.fid) for c in with_envelope(m).cells]
    [(2.0, 'budget 2', 9.0), (2.5, 'budget 2', 9.0)]
    """
    picks = {c.budget: c.pick for c in plan_envelope(model)}
    cells = tuple(dataclasses.replace(picks[c.budget], budget=c.budget) if c.method == "plan" and c.budget in picks
                  else c for c in model.cells)
    return dataclasses.replace(model, cells=cells)


def budget_inversions(fids: Sequence[float]) -> int:
    """How many pairs ``i < j`` of a sequence ordered by budget have ``fids[j] > fids[i]``: a
    larger budget giving a worse FID.

    Examples
    --------
    >>> budget_inversions([70.0, 9.1, 14.8, 11.4, 4.2])
    2
    """
    return sum(b > a for i, a in enumerate(fids) for b in fids[i + 1:])


def plan_envelope_table(cells: Sequence[EnvelopeCell]) -> str:
    """Markdown table of the budgets where the envelope takes another plan: the plan's and the
    pick's honest bits per weight, predicted dFID and FID (one column each, ``·``-separated), the
    FID change and whether it is resolved."""
    def row(p):
        return f"{p.bits_per_weight:.4f} · {p.predicted:.3g} · {p.fid:.3g}"
    rows = [[escape_markdown(c.model), f"{c.budget:g}", row(c.plan), row(c.pick), f"{c.fid_change:+.3g}",
             "yes" if c.resolved else "no"] for c in cells if c.changed]
    return markdown_table(header=["model", "budget", "plan: bits/weight · predicted dFID · FID", "pick: the same",
                                  "FID change", "resolved"], rows=rows)


def plot_plan_envelope(envelopes: Sequence[Sequence[EnvelopeCell]], *, fid_fp: Sequence[float]) -> Figure:
    """One panel per model: the FID of the plan made for each budget (black stars) and of the
    envelope's pick (red line), against the budget; the picks taken from another budget ringed,
    the full-precision FID dotted.  Log FID axis.

    Parameters
    ----------
    envelopes : sequence of sequence of EnvelopeCell
        :func:`plan_envelope` of each model drawn, none empty.
    fid_fp : sequence of float
        Each model's full-precision FID, in the same order.
    """
    if not envelopes or any(not e for e in envelopes):
        raise ValueError("envelopes must hold at least one model, each with at least one cell")
    if len(fid_fp) != len(envelopes):
        raise ValueError(f"fid_fp has {len(fid_fp)} values for {len(envelopes)} models")
    fig, axes = fid_panels(len(envelopes), panel_height=2.9, legend_height=0.7)
    handles = {}
    for ax, cells, fp in zip(axes, envelopes, fid_fp):
        budgets = [c.budget for c in cells]
        handles.setdefault("plan made for the budget", ax.plot(budgets, [c.plan.fid for c in cells], "*-", color="k",
                                                               ms=9, lw=1.2, zorder=4)[0])
        handles.setdefault("envelope (least predicted dFID within the budget)",
                           ax.plot(budgets, [c.pick.fid for c in cells], "-", color="tab:red", lw=2.0, alpha=0.8,
                                   zorder=5)[0])
        taken = [(c.budget, c.pick.fid) for c in cells if c.changed]
        if taken:
            handles.setdefault("another budget's plan taken",
                               ax.plot(*zip(*taken), "o", mfc="none", mec="tab:red", ms=12, mew=1.5, zorder=6)[0])
        handles.setdefault("full precision", ax.axhline(fp, color="k", ls=":", lw=1.2))
        style_fid_axis(ax, title=f"{cells[0].model}: {cells[0].plan.change.features} FID", ylabel="FID")
        ax.set_xlabel("budget (bits per weight)", fontsize=9)
    panel_legend(fig, handles, ["plan made for the budget", "envelope (least predicted dFID within the budget)",
                                "another budget's plan taken", "full precision"], ncol=2)
    return fig
