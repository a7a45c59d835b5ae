r"""The sampled prediction's bias against the number of pairs, and its two corrections.

Reads a run of ``scripts/sampled_bias_dit_cpu.py`` (``results/sampled_bias_dit_cpu.json``,
classifier features) or ``scripts/inception_bias_dit_cpu.py``
(``results/inception_bias_dit_cpu.json``, InceptionV3's): for each quantized setting, the
measured dFID and, for each number of pairs :math:`M`, the predictions of
:func:`fmq_theory.bounds.sampled_dfid` from disjoint sets of :math:`M` pairs, plain (``value``)
and corrected by the bootstrap bias estimate (``debiased``).  The excess of a prediction is its
ratio to the measured change; :math:`M` is given against the feature dimension :math:`d`, since
the covariance change is estimated in :math:`d` dimensions from :math:`M` pairs.

Where the run also holds :math:`M/2`, the point carries the two-point extrapolation in
:math:`1/M` of the plain means,

.. math::

    \hat v_\infty = 2\,\bar v_M - \bar v_{M/2},

which removes a bias of the form :math:`c/M` exactly (Richardson extrapolation; Chong &
Forsyth, "Effectively Unbiased FID and Inception Score and where to find them", CVPR 2020,
extrapolate the FID itself linearly in :math:`1/N` the same way).  For a functional that is
quadratic in the estimated moments it is exactly unbiased: it equals the first-order term
plus the cross term of two independent halves, in which the noise of neither half is squared.

Where the run's predictions also hold the paired difference of the pairs' own FIDs
(``paired``, :attr:`fmq_theory.bounds.SampledDFID.paired`), the point carries its mean too.

Examples
--------
>>> run = {"feature_dim": 4, "rows": [{"method": "rule:uniform_minmax", "setting": "b4", "dfid": 2.0,
...        "by_size": {"2": {"value": [5.0, 3.0], "debiased": [3.0, 2.0]}}}]}
>>> (p,) = bias_points(run)
>>> (p.pairs_per_dim, p.plain_ratio, p.debiased_ratio, p.extrapolated)
(0.5, 2.0, 1.25, None)
>>> run["rows"][0]["by_size"]["1"] = {"value": [6.0], "debiased": [5.0]}
>>> bias_points(run)[1].extrapolated  # 2 x 4.0 - 6.0
2.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

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
    extrapolated : float or None
        :math:`2\\,\\bar v_M - \\bar v_{M/2}` of the plain means, ``None`` where the run has no
        :math:`M/2`.
    paired, paired_sd : float or None
        The mean over the sets of the paired difference and its standard deviation, ``None``
        where the run's predictions have none.
    paired_extrapolated : float or None
        The same extrapolation of the paired means, ``None`` without :math:`M/2` or a paired
        difference.
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
    extrapolated: float | None = None
    paired: float | None = None
    paired_sd: float | None = None
    paired_extrapolated: float | None = None

    @property
    def plain_ratio(self) -> float:
        """Mean plain prediction over the measured change."""
        return self.plain / self.measured

    @property
    def debiased_ratio(self) -> float:
        """Mean debiased prediction over the measured change."""
        return self.debiased / self.measured

    @property
    def extrapolated_ratio(self) -> float | None:
        """The extrapolation over the measured change (``None`` without one)."""
        return None if self.extrapolated is None else self.extrapolated / self.measured

    @property
    def paired_ratio(self) -> float | None:
        """The paired difference over the measured change (``None`` without one)."""
        return None if self.paired is None else self.paired / self.measured

    @property
    def paired_extrapolated_ratio(self) -> float | None:
        """The paired extrapolation over the measured change (``None`` without one)."""
        return None if self.paired_extrapolated is None else self.paired_extrapolated / self.measured


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
        means, paired_means = {}, {}
        for size, preds in sorted(row["by_size"].items(), key=lambda kv: int(kv[0])):
            m = int(size)
            plain, debiased = np.asarray(preds["value"], float), np.asarray(preds["debiased"], float)
            if plain.size == 0 or plain.size != debiased.size:
                raise ValueError(f"run row {label!r}, size {size}: {plain.size} plain and {debiased.size} debiased "
                                 "predictions")
            means[m] = float(plain.mean())
            paired = np.asarray(preds["paired"], float) if "paired" in preds else None
            if paired is not None and paired.size != plain.size:
                raise ValueError(f"run row {label!r}, size {size}: {plain.size} plain and {paired.size} paired "
                                 "predictions")
            if paired is not None:
                paired_means[m] = float(paired.mean())
            out.append(BiasPoint(label=label, pairs=m, pairs_per_dim=m / d, sets=int(plain.size),
                                 measured=float(row["dfid"]), plain=means[m], debiased=float(debiased.mean()),
                                 plain_sd=float(plain.std()), debiased_sd=float(debiased.std()),
                                 extrapolated=_two_point(means, m),
                                 paired=None if paired is None else paired_means[m],
                                 paired_sd=None if paired is None else float(paired.std()),
                                 paired_extrapolated=_two_point(paired_means, m)))
    return tuple(out)


def _two_point(means: Mapping[int, float], m: int) -> float | None:
    """:math:`2\\,\\bar v_M - \\bar v_{M/2}` of ``means`` by size, ``None`` without both sizes."""
    if m not in means or m % 2 or m // 2 not in means:
        return None
    return 2.0 * means[m] - means[m // 2]


def plot_sampled_bias(points: Sequence[BiasPoint]) -> Figure:
    """Mean prediction over the measured change against :math:`M/d` (log 2 axis), one colour per
    setting: plain (circles, solid), debiased (squares, dashed) and, where the run has it, the
    paired difference (diamonds, dash-dot), bars one standard deviation of a single set's
    prediction, and the extrapolation from :math:`M/2` and :math:`M` (triangles, dotted) where
    there is one; the measured change is the line at 1.  The legend names the colours and the
    markers apart."""
    if not points:
        raise ValueError("points is empty: nothing to draw")
    fig = Figure(figsize=(6.5, 4.4), layout="constrained")
    ax = fig.subplots()
    styles = {"plain": ("o", "-"), "debiased": ("s", "--"), "paired": ("D", "-."), "extrapolated": ("^", ":")}
    drawn = set()
    handles = []
    for i, label in enumerate(dict.fromkeys(p.label for p in points)):
        mine = [p for p in points if p.label == label]
        handles.append(Line2D([], [], color=f"C{i}", lw=6, label=f"{label} (measured dFID {mine[0].measured:.3g})"))
        for kind in ("plain", "debiased", "paired"):
            have = [p for p in mine if getattr(p, kind) is not None]
            if have:
                drawn.add(kind)
                ax.errorbar([p.pairs_per_dim for p in have], [getattr(p, kind) / p.measured for p in have],
                            yerr=[getattr(p, f"{kind}_sd") / p.measured for p in have], fmt=styles[kind][0],
                            ls=styles[kind][1], color=f"C{i}", capsize=3)
        extra = [p for p in mine if p.extrapolated is not None]
        if extra:
            drawn.add("extrapolated")
            ax.plot([p.pairs_per_dim for p in extra], [p.extrapolated_ratio for p in extra],
                    marker=styles["extrapolated"][0], ls=styles["extrapolated"][1], color=f"C{i}")
    words = {"plain": "plain", "debiased": "debiased", "paired": "paired difference",
             "extrapolated": "plain, extrapolated from M/2 and M"}
    handles += [Line2D([], [], color="0.3", marker=styles[k][0], ls=styles[k][1], label=words[k])
                for k in styles if k in drawn]
    ax.axhline(1.0, color="k", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("pairs per feature dimension, M/d", fontsize=9)
    ax.set_ylabel("predicted / measured dFID", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="both", alpha=0.25)
    fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncols=2)  # below: the points stay clear
    return fig
