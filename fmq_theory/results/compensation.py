r"""The plan with error-compensated codes against the plan as committed: the CPU probes and the GPU rows.

Reads the runs of ``scripts/probe_plan_gptq.py`` (``results/probes/plan_gptq_<model>_b<budget>_n<samples>.json``):
a committed plan fitted again and written twice into the same levels at the same bytes, its codes
by round-to-nearest (``rtn``) and by error-compensating rounding (``compensated``,
:func:`fmq_theory.plan.compensation.compensated`).  Each arm carries its measured
:math:`\Delta FID` with the paired 95% interval and its summed output error
:math:`\sum_\ell \operatorname{tr}(D_\ell H_\ell D_\ell^\top)`.

It also pairs the GPU rows of the plan offered both roundings (``results/plan_<model>_compensated.csv``,
``plan_quantization(roundings=("nearest", "compensated"))``, measured by ``scripts/gpu_plan_eval.py
--plan-roundings``) with the committed plan's rows at the same budgets (:func:`two_way_cells`).

Examples
--------
>>> run = {"model": "m", "budget": "3", "bits_per_weight": 3.0, "samples": 10, "feature_net": "net",
...        "arms": {a: {"dfid": d, "dfid_low": d - 1, "dfid_high": d + 1, "output_weighted_error": e}
...                 for a, d, e in (("rtn", 4.0, 8.0), ("compensated", 1.0, 2.0))}}
>>> p = compensation_probe(run)
>>> (p.budget, p.compensated.dfid / p.rtn.dfid, p.error_ratio, p.verdict)
(3.0, 0.25, 0.25, 'lower')
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fmq_theory.results.plan_report import Change, ModelResults, fid_panels, panel_legend

__all__ = ["CompensationProbe", "ProbeArm", "TwoWayCell", "compensation_probe", "interval_order", "plot_compensation",
           "plot_two_way", "read_compensation_probes", "two_way_cells"]

#: The words ``scripts/gpu_plan_eval.py`` ends a plan row's setting with when its codes are compensated.
COMPENSATED_SETTING = ", compensated codes"


def interval_order(interval: tuple, other: tuple) -> str:
    """``"lower"`` or ``"higher"`` where ``interval`` (``(low, high)``) lies wholly below or above ``other``, else
    ``"unresolved"`` (also where an end is ``None``: no interval).

    >>> interval_order((0.1, 0.5), (0.7, 0.9)), interval_order((1.0, 2.0), (0.7, 1.2)), interval_order((0.1, None), (1, 2))
    ('lower', 'unresolved', 'unresolved')
    """
    if None in (*interval, *other):
        return "unresolved"
    if interval[1] < other[0]:
        return "lower"
    return "higher" if interval[0] > other[1] else "unresolved"


@dataclass(frozen=True)
class ProbeArm:
    """One way of writing the codes: measured change and its interval, the output error, and the shift of the
    samples' law on the plan's own noise that the plan chooses by (``None`` in runs made before it was recorded)."""

    dfid: float
    low: float
    high: float
    output_error: float
    shift: float | None = None


@dataclass(frozen=True)
class CompensationProbe:
    """One plan written both ways (:mod:`fmq_theory.results.compensation`)."""

    model: str
    budget: float
    bits_per_weight: float
    samples: int
    feature_net: str
    rtn: ProbeArm
    compensated: ProbeArm

    @property
    def error_ratio(self) -> float:
        """Output error of the compensated codes over round-to-nearest's."""
        return self.compensated.output_error / self.rtn.output_error

    @property
    def verdict(self) -> str:
        """``"lower"`` or ``"higher"`` where the compensated interval lies wholly below or above round-to-nearest's,
        else ``"unresolved"``."""
        return interval_order((self.compensated.low, self.compensated.high), (self.rtn.low, self.rtn.high))

    @property
    def shift_picks(self) -> str | None:
        """The arm of least shift, the one ``plan_quantization(roundings=("nearest", "compensated"))`` would keep
        (``"rtn"`` or ``"compensated"``); ``None`` without shifts."""
        if self.rtn.shift is None or self.compensated.shift is None:
            return None
        return "compensated" if self.compensated.shift < self.rtn.shift else "rtn"


def compensation_probe(run: dict) -> CompensationProbe:
    """The :class:`CompensationProbe` of one probe file's contents."""
    def arm(a: dict) -> ProbeArm:
        return ProbeArm(dfid=float(a["dfid"]), low=float(a["dfid_low"]), high=float(a["dfid_high"]),
                        output_error=float(a["output_weighted_error"]),
                        shift=None if a.get("shift") is None else float(a["shift"]))

    return CompensationProbe(model=run["model"], budget=float(run["budget"]), bits_per_weight=float(run["bits_per_weight"]),
                             samples=int(run["samples"]), feature_net=run["feature_net"], rtn=arm(run["arms"]["rtn"]),
                             compensated=arm(run["arms"]["compensated"]))


def read_compensation_probes(folder) -> list[CompensationProbe]:
    """Every ``plan_gptq_*.json`` of ``folder``, by model then budget."""
    runs = [compensation_probe(json.loads(p.read_text())) for p in sorted(Path(folder).glob("plan_gptq_*.json"))]
    return sorted(runs, key=lambda p: (p.model, p.budget))


def plot_compensation(probes, *, labels: dict | None = None) -> Figure:
    """Each probe's :math:`\\Delta FID` with its interval, round-to-nearest beside compensated, on a
    symmetric-log axis (linear within 1, so that an interval reaching below zero is drawn)."""
    if not probes:
        raise ValueError("probes: nothing to plot")
    labels = labels or {}
    fig = Figure(figsize=(6.4, 0.55 * len(probes) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(probes))
    for offset, name, color, pick in ((0.15, "round to nearest (as committed)", "tab:red", lambda p: p.rtn),
                                      (-0.15, "error-compensated", "tab:blue", lambda p: p.compensated)):
        arms = [pick(p) for p in probes]
        d = np.array([a.dfid for a in arms])
        ax.errorbar(d, y + offset, xerr=[d - [a.low for a in arms], [a.high for a in arms] - d], fmt="o",
                    color=color, capsize=3, label=name)
    ax.set_yticks(y, [f"{labels.get(p.model, p.model)}, {p.bits_per_weight:.2f} bits/w" for p in probes])
    ax.set_xscale("symlog", linthresh=1.0)
    lows = [min(p.rtn.low, p.compensated.low) for p in probes]
    highs = [max(p.rtn.high, p.compensated.high) for p in probes]
    ax.set_xlim(min(-0.5, 1.5 * min(lows)), 1.5 * max(highs))
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_xlabel(r"$\Delta$FID against full precision (95% paired interval)")
    ax.set_ylim(len(probes) - 0.5, -0.5)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    return fig


@dataclass(frozen=True)
class TwoWayCell:
    """The plan offered both roundings against the plan as committed, at one budget of one model.

    Attributes
    ----------
    model : str
        The committed model's name (``plan_<model>.csv``).
    budget, bits_per_weight : float
        The budget and the two-way plan's honest bits per weight.
    setting, committed_setting : str
        The two rows' settings (the plan's choice of family and floor, and of rounding).
    two_way, committed : Change
        Their measured changes of FID against full precision, in the same features, each with its
        paired 95% interval.
    """

    model: str
    budget: float
    bits_per_weight: float
    setting: str
    committed_setting: str
    two_way: Change
    committed: Change

    @property
    def compensated(self) -> bool:
        """Whether the two-way plan kept the compensated codes."""
        return self.setting.endswith(COMPENSATED_SETTING)

    @property
    def verdict(self) -> str:
        """``"lower"`` or ``"higher"`` where the two-way plan's interval lies wholly below or above the committed
        plan's, else ``"unresolved"`` (also without intervals).  Each interval is paired with the run's own
        full-precision samples; the two runs sample the same noise, so their full-precision FIDs agree."""
        return interval_order((self.two_way.low, self.two_way.high), (self.committed.low, self.committed.high))


def two_way_cells(two_way: ModelResults, committed: ModelResults) -> tuple:
    """The :class:`TwoWayCell` of every budget where both ``two_way`` (the rows of ``plan_<model>_compensated.csv``)
    and ``committed`` (``plan_<model>.csv``) hold a plan row, by budget.

    Raises
    ------
    ValueError
        The two are read in different features, or in different protocols (samples, solver, steps, seed or
        checkpoint), so that their changes are not comparable.
    """
    if two_way.features != committed.features:
        raise ValueError(f"two_way is read in {two_way.features} features, committed in {committed.features}")
    differ = [k for k in two_way.protocol if two_way.protocol[k] != committed.protocol.get(k)]
    if differ:
        raise ValueError(f"two_way and committed differ in their protocol's {', '.join(differ)}")
    plans = {c.budget: c for c in committed.cells if c.method == "plan"}
    return tuple(TwoWayCell(model=committed.model, budget=c.budget, bits_per_weight=c.bits_per_weight,
                            setting=c.setting, committed_setting=plans[c.budget].setting, two_way=c.change,
                            committed=plans[c.budget].change)
                 for c in two_way.cells if c.method == "plan" and c.budget in plans)


def plot_two_way(panels) -> Figure:
    """One panel per entry of ``panels`` (``(title, cells)``, cells of :func:`two_way_cells`): each budget's
    :math:`\\Delta FID` with its 95% paired interval against honest bits per weight, the committed plan in red
    and the two-way plan in blue (a filled marker where it kept the compensated codes), on a symmetric-log
    axis, linear within 0.1, so that an interval reaching below zero is drawn."""
    panels = [(title, cells) for title, cells in panels if cells]
    if not panels:
        raise ValueError("panels: nothing to plot")
    fig, axes = fid_panels(len(panels), panel_height=2.9, legend_height=0.5)
    handles = {}
    for ax, (title, cells) in zip(axes, panels):
        b = np.array([c.bits_per_weight for c in cells])
        for name, color, face, pick, shift in (
                ("plan as committed (nearest codes)", "tab:red", "tab:red", lambda c: c.committed, -0.02),
                ("plan offered both roundings", "tab:blue", "white", lambda c: c.two_way, 0.02)):
            ch = [pick(c) for c in cells]
            d = np.array([x.value for x in ch])
            err = [d - [x.value if x.low is None else x.low for x in ch],
                   [x.value if x.high is None else x.high for x in ch] - d]
            h = ax.errorbar(b + shift, d, yerr=err, fmt="o-", color=color, mfc=face, capsize=3, ms=5, lw=1.0)
            handles.setdefault(name, h)
        kept = [c for c in cells if c.compensated]
        if kept:
            (h,) = ax.plot([c.bits_per_weight + 0.02 for c in kept], [c.two_way.value for c in kept], "o",
                           color="tab:blue", ms=5, zorder=5)
            handles.setdefault("the compensated codes kept", h)
        ax.set_xlim(b.min() - 0.3, b.max() + 0.3)  # a single budget still shows the axis in bits
        ax.set_yscale("symlog", linthresh=0.1)
        ends = [e for c in cells for x in (c.committed, c.two_way) for e in (x.value, x.low, x.high) if e is not None]
        ax.set_ylim(min(-0.05, 1.5 * min(ends)), 2.0 * max(ends))
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("honest bits per weight", fontsize=9)
        ax.set_ylabel(rf"$\Delta$FID ({cells[0].two_way.features})", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, which="both", alpha=0.25)
    panel_legend(fig, handles, ["plan as committed (nearest codes)", "plan offered both roundings",
                                "the compensated codes kept"], ncol=3)
    return fig
