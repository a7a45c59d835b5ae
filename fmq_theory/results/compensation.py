r"""The plan with error-compensated codes against the plan as committed, from the CPU probes.

Reads the runs of ``scripts/probe_plan_gptq.py`` (``results/probes/plan_gptq_<model>_b<budget>_n<samples>.json``):
a committed plan fitted again and written twice into the same levels at the same bytes, its codes
by round-to-nearest (``rtn``) and by error-compensating rounding (``compensated``,
:func:`fmq_theory.plan.compensation.compensated`).  Each arm carries its measured
:math:`\Delta FID` with the paired 95% interval and its summed output error
:math:`\sum_\ell \operatorname{tr}(D_\ell H_\ell D_\ell^\top)`.

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

__all__ = ["CompensationProbe", "ProbeArm", "compensation_probe", "plot_compensation", "read_compensation_probes"]


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
        if self.compensated.high < self.rtn.low:
            return "lower"
        return "higher" if self.compensated.low > self.rtn.high else "unresolved"

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
