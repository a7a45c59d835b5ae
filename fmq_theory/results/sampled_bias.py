r"""The sampled prediction's bias against the number of pairs, and its bootstrap correction.

Reads a run of ``scripts/sampled_bias_dit_cpu.py`` (``results/sampled_bias_dit_cpu.json``): for
each quantized setting, the measured dFID and, for each number of pairs :math:`M`, the
predictions of :func:`fmq_theory.bounds.sampled_dfid` from disjoint sets of :math:`M` pairs,
plain (``value``) and corrected by the bootstrap bias estimate (``debiased``).  The excess of a
prediction is its ratio to the measured change; :math:`M` is given against the feature
dimension :math:`d`, since the covariance change is estimated in :math:`d` dimensions from
:math:`M` pairs.

Examples
--------
>>> run = {"feature_dim": 4, "rows": [{"method": "rule:uniform_minmax", "setting": "b4", "dfid": 2.0,
...        "by_size": {"2": {"value": [5.0, 3.0], "debiased": [3.0, 2.0]}}}]}
>>> (p,) = bias_points(run)
>>> (p.pairs_per_dim, p.plain_ratio, p.debiased_ratio)
(0.5, 2.0, 1.25)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["BiasPoint", "bias_points", "plot_sampled_bias"]


@dataclass(frozen=True)
class BiasPoint:
    """One setting at one number of pairs.

    Attributes
    ----------
    label : str
        ``"<method>/<setting>"``.
    pairs : int
        Pairs per prediction, :math:`M`.
    pairs_per_dim : float
        :math:`M / d`.
    sets : int
        Disjoint pair sets, one prediction each.
    measured : float
        The measured dFID.
    plain, debiased : float
        The mean over the sets of the plain and of the debiased prediction.
    plain_sd, debiased_sd : float
        Their standard deviations over the sets (0 for one set).
    """

    label: str
    pairs: int
    pairs_per_dim: float
    sets: int
    measured: float
    plain: float
    debiased: float
    plain_sd: float
    debiased_sd: float

    @property
    def plain_ratio(self) -> float:
        """Mean plain prediction over the measured change."""
        return self.plain / self.measured

    @property
    def debiased_ratio(self) -> float:
        """Mean debiased prediction over the measured change."""
        return self.debiased / self.measured


def bias_points(run: Mapping) -> tuple:
    """Every setting and number of pairs of ``run``, by setting, then increasing :math:`M`.

    Raises
    ------
    ValueError
        A setting whose measured dFID is not positive (no ratio), or a size with no prediction.
    """
    d = int(run["feature_dim"])
    out = []
    for row in run["rows"]:
        label = f"{row['method']}/{row['setting']}"
        if not row["dfid"] > 0:
            raise ValueError(f"run row {label!r}: measured dfid={row['dfid']!r} must be > 0 for a ratio")
        for size, preds in sorted(row["by_size"].items(), key=lambda kv: int(kv[0])):
            plain, debiased = np.asarray(preds["value"], float), np.asarray(preds["debiased"], float)
            if plain.size == 0 or plain.size != debiased.size:
                raise ValueError(f"run row {label!r}, size {size}: {plain.size} plain and {debiased.size} debiased "
                                 "predictions")
            out.append(BiasPoint(label=label, pairs=int(size), pairs_per_dim=int(size) / d, sets=int(plain.size),
                                 measured=float(row["dfid"]), plain=float(plain.mean()),
                                 debiased=float(debiased.mean()), plain_sd=float(plain.std()),
                                 debiased_sd=float(debiased.std())))
    return tuple(out)


def plot_sampled_bias(points: Sequence[BiasPoint]) -> Figure:
    """Mean prediction over the measured change against :math:`M/d` (log 2 axis), one colour per
    setting: plain (circles, solid) and debiased (squares, dashed), bars one standard deviation
    of a single set's prediction; the measured change is the line at 1."""
    if not points:
        raise ValueError("points is empty: nothing to draw")
    fig = Figure(figsize=(6.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for i, label in enumerate(dict.fromkeys(p.label for p in points)):
        mine = [p for p in points if p.label == label]
        x = [p.pairs_per_dim for p in mine]
        for kind, marker, ls in (("plain", "o", "-"), ("debiased", "s", "--")):
            ax.errorbar(x, [getattr(p, kind) / p.measured for p in mine],
                        yerr=[getattr(p, f"{kind}_sd") / p.measured for p in mine], fmt=marker, ls=ls,
                        color=f"C{i}", capsize=3, label=f"{label} (measured dFID {mine[0].measured:.3g}), {kind}")
    ax.axhline(1.0, color="k", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("pairs per feature dimension, M/d", fontsize=9)
    ax.set_ylabel("predicted / measured dFID", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7)
    return fig
