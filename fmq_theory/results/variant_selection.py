r"""Which data-free score picks the plan's variant: every variant of a budget measured.

``scripts/gpu_plan_variants.py`` measures every variant of the plan (code family, bit floor and,
from its second run, grouping; :mod:`fmq_theory.plan.selection`) at each budget of a model: its
data-free scores on the plan's noise and its FID change on the evaluation's.  A *cell* is one
(model, budget); each score picks the variant of least score there, ties to the lower floor as
:func:`~fmq_theory.plan.selection.choose_variant` does, and the cell is judged by the measured
:math:`\Delta\mathrm{FID}` of each pick against the best variant's.

The scores (:data:`SCORES`): the knapsack's additive prediction, the mean squared displacement of
each sample from its full-precision twin (the plan's ranking until the first run), and the shift
of the samples' law (the squared W2 of their diagonal Gaussian fits, the plan's ranking since).
The first run's rows carry it summed over entries (``w2_diag``) rather than per entry
(``shift``); within a cell the two rank alike, so either is read.

Examples
--------
>>> rows = [{"model": "m", "budget": 2.0, "family": "optimal", "floor": 1, "additive": 1.0, "msd": 0.2,
...          "shift": 0.3, "dfid": 9.0},
...         {"model": "m", "budget": 2.0, "family": "minmax", "floor": 1, "additive": 2.0, "msd": 0.4,
...          "shift": 0.1, "dfid": 4.0}]
>>> (cell,) = selection_cells(rows)
>>> cell.picked["shift"]["family"], cell.regret("displacement")
('minmax', 5.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from fmq_theory.results.plan_report import CLASSIFIER, INCEPTION, Features

__all__ = ["SCORES", "GroupingPick", "SelectionCell", "grouping_picks", "in_features", "plot_grouping_picks",
           "plot_layout_run", "plot_score_regrets", "plot_variant_selection", "selection_cells"]

#: Score label -> how it is read from a row (the first run's ``w2_diag`` is ``D`` times ``shift``).
SCORES = {
    "additive": lambda r: r["additive"],
    "displacement": lambda r: r["msd"],
    "shift": lambda r: r["shift"] if "shift" in r else r["w2_diag"],
}
_STYLE = {"additive": ("tab:gray", "v"), "displacement": ("tab:orange", "s"), "shift": ("tab:blue", "o")}
_PEER_FILLS = ("0.85", "#f3d9b1", "#cde0f2")  # the bands of plot_grouping_picks' peers, one per method


@dataclass(frozen=True)
class SelectionCell:
    """One (model, budget) with every variant measured.

    Attributes
    ----------
    model : str
    budget : float
    variants : tuple of Mapping
        The rows, in the order given.
    best : Mapping
        The variant of least measured :math:`\\Delta\\mathrm{FID}`.
    picked : Mapping of str to Mapping
        Per score of :data:`SCORES`, the variant it picks.
    """

    model: str
    budget: float
    variants: tuple
    best: Mapping
    picked: Mapping

    def regret(self, score: str) -> float:
        """Measured :math:`\\Delta\\mathrm{FID}` of ``score``'s pick minus the best variant's (``>= 0``)."""
        return float(self.picked[score]["dfid"]) - float(self.best["dfid"])


def selection_cells(rows: Sequence[Mapping], *, scores: Mapping[str, Callable] = SCORES) -> tuple:
    """The :class:`SelectionCell` of every (model, budget) in ``rows``, in first-seen order.

    Parameters
    ----------
    rows : sequence of Mapping
        Measured variants: ``model``, ``budget``, ``floor``, ``dfid`` and every score.
    scores : Mapping of str to callable
        Score label -> how it is read from a row (default :data:`SCORES`); each picks its
        least-score variant per cell, ties to the lower floor.

    Raises
    ------
    ValueError
        ``rows`` empty, or a row without a score, ``floor`` or ``dfid`` (naming ``rows``), or
        with a non-finite one.
    """
    if not rows:
        raise ValueError("rows: give at least one measured variant")
    groups: dict = {}
    for i, r in enumerate(rows):
        try:
            values = [float(read(r)) for read in scores.values()] + [float(r["dfid"]), float(r["floor"])]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"rows[{i}] lacks a score, floor or dfid: {exc!r}") from exc
        if not np.isfinite(values).all():
            raise ValueError(f"rows[{i}] holds a non-finite score or dfid: {values}")
        groups.setdefault((r["model"], float(r["budget"])), []).append(r)
    cells = []
    for (model, budget), group in groups.items():
        picked = {name: min(group, key=lambda r, read=read: (float(read(r)), int(r["floor"])))
                  for name, read in scores.items()}
        cells.append(SelectionCell(model=model, budget=budget, variants=tuple(group),
                                   best=min(group, key=lambda r: float(r["dfid"])), picked=picked))
    return tuple(cells)


def _cell_axis(ax, cells: Sequence, *, ylabel: str, title: str) -> None:
    """The axis of a plot of one column per (model, budget): symmetric-log y (linear within 1 of 0),
    the cells named below, a horizontal grid and the legend.  Where everything drawn lies within 1
    of 0 the y axis stays linear: symmetric-log is linear there too, and its locator would mark
    only the axis's ends."""
    if max(abs(y) for y in ax.get_ylim()) > 1.0:
        ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xticks(range(len(cells)), [f"{c.model}\n{c.budget:g}" for c in cells], fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8, loc="best")


def plot_variant_selection(cells: Sequence[SelectionCell], *, title: str = "") -> Figure:
    """Every cell's variants (grey dots) by measured :math:`\\Delta\\mathrm{FID}`, the pick of each score marked.

    The y axis is symmetric-log (linear within 1 of 0), so that changes below 0 show; linear where
    every value drawn lies within 1 of 0.
    """
    if not cells:
        raise ValueError("cells: give at least one SelectionCell")
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, cell in enumerate(cells):
        ax.plot([i] * len(cell.variants), [float(r["dfid"]) for r in cell.variants], ".", color="0.75", zorder=1)
        for k, (name, (colour, marker)) in enumerate(_STYLE.items()):
            ax.plot([i + 0.12 * (k - 1)], [float(cell.picked[name]["dfid"])], marker, color=colour,
                    mfc="none", ms=8, label=f"picked by the {name}" if i == 0 else None, zorder=2)
    ax.plot([], [], ".", color="0.75", label="every variant")
    _cell_axis(ax, cells, ylabel="measured $\\Delta$FID", title=title)
    return fig


def plot_score_regrets(summary: Mapping, *, labels: Mapping, title: str = "") -> Figure:
    """Each score's total regret (summed over budgets) per variant set, as horizontal bars.

    Parameters
    ----------
    summary : Mapping
        ``variant set -> score -> {"total_regret": float, ...}``, the ``summary`` of
        ``scripts/plan_variant_features_cpu.py``'s file.
    labels : Mapping
        ``score -> label`` of the scores to draw, in drawing order (the others are left out).
    title : str, keyword-only

    Raises
    ------
    ValueError
        ``summary`` or ``labels`` empty, or a score of ``labels`` missing from a variant set.
    """
    if not summary or not labels:
        raise ValueError("summary and labels: give at least one variant set and one score")
    fig = Figure(figsize=(7.5, 0.32 * len(labels) * len(summary) + 1.2), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(summary)
    for k, (variant_set, scores) in enumerate(summary.items()):
        missing = [s for s in labels if s not in scores]
        if missing:
            raise ValueError(f"summary[{variant_set!r}] lacks the scores {missing}")
        values = [max(float(scores[s]["total_regret"]), 0.0) for s in labels]
        bars = ax.barh(np.arange(len(labels)) + k * height, values, height=height, label=variant_set)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=2)  # a regret of 0 has no bar to see
    ax.set_yticks(np.arange(len(labels)) + 0.4 - height / 2, list(labels.values()), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("summed regret: measured $\\Delta$FID of the pick minus the best variant's")
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="x", alpha=0.25)
    ax.legend(fontsize=8, loc="best")
    return fig


#: The weight sets of ``scripts/plan_flat_dit_cpu.py``'s rows, in drawing order, with their labels.
LAYOUT_KINDS = {"plan": "plan (grouping any)", "plan flat": "plan, grouping flat", "layout": "HQQ's layout, plan's fits",
                "peer": "hqq package"}


def plot_layout_run(rows: Sequence[Mapping]) -> Figure:
    """One panel per budget: each weight set's measured dFID with its 95% interval, its shift in the label.

    Parameters
    ----------
    rows : sequence of Mapping
        Rows with ``budget``, ``method`` (a key of :data:`LAYOUT_KINDS`), ``bits_per_weight``,
        ``dfid``, ``dfid_low``, ``dfid_high`` and ``shift``: the ``layout_rows`` and the
        ``measured`` rows of ``results/plan_flat_dit_cpu.json``.

    Raises
    ------
    ValueError
        No rows, or a row of another method.
    """
    if not rows:
        raise ValueError("rows: give at least one measured row")
    unknown = sorted({r["method"] for r in rows} - set(LAYOUT_KINDS))
    if unknown:
        raise ValueError(f"rows hold methods {unknown}, not of {list(LAYOUT_KINDS)}")
    budgets = sorted({float(r["budget"]) for r in rows})
    fig = Figure(figsize=(3.6 * len(budgets) + 0.6, 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(budgets)))
    for ax, budget in zip(axes, budgets):
        here = sorted((r for r in rows if float(r["budget"]) == budget), key=lambda r: list(LAYOUT_KINDS).index(r["method"]))
        y = np.arange(len(here))
        dfid = np.array([r["dfid"] for r in here])
        err = np.array([[r["dfid"] - r["dfid_low"] for r in here], [r["dfid_high"] - r["dfid"] for r in here]])
        ax.errorbar(dfid, y, xerr=np.clip(err, 0, None), fmt="o", capsize=3)
        ax.set_yticks(y, [f"{LAYOUT_KINDS[r['method']]}\n{r['bits_per_weight']:.3f} bits/w, shift {r['shift']:.2g}"
                          for r in here], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{budget:g} bits per weight", fontsize=9)
        ax.set_xlabel("$\\Delta$FID (classifier), 95% interval", fontsize=8)
        ax.grid(True, axis="x", alpha=0.25)
    return fig


@dataclass(frozen=True)
class GroupingPick:
    """One (model, budget): the variant the shift picks from two sets of groupings, and the best one.

    Attributes
    ----------
    model : str
    budget : float
    default : Mapping
        The shift's pick among the variants of the ``default`` groupings of :func:`grouping_picks`.
    widened : Mapping
        Its pick among the variants of the ``widened`` groupings.
    best : Mapping
        The variant of least measured :math:`\\Delta\\mathrm{FID}` among the widened set.
    """

    model: str
    budget: float
    default: Mapping
    widened: Mapping
    best: Mapping

    @property
    def changed(self) -> bool:
        """Whether widening the groupings changes the pick (another variant, not a tie of equal weights)."""
        a, b = self.default.get("weights_sha256"), self.widened.get("weights_sha256")
        return self.widened is not self.default if a is None or b is None else a != b


def grouping_picks(rows: Sequence[Mapping], *, default: Sequence[str] = ("any",),
                   widened: Sequence[str] = ("any", "flat")) -> tuple:
    """What a plan with the groupings ``widened`` keeps, against one with ``default``, per (model, budget).

    Each set's pick is the variant of least ``shift`` among the rows of its groupings, ties to the
    lower floor (:func:`~fmq_theory.plan.selection.choose_variant`; rows repeated as ``same_as``
    carry the same numbers).

    Parameters
    ----------
    rows : sequence of Mapping
        Measured variants of ``scripts/gpu_plan_variants.py``: ``model``, ``budget``, ``grouping``,
        ``floor``, ``shift`` and ``dfid``.
    default, widened : sequence of str, keyword-only
        The two sets of groupings; ``default`` a subset of ``widened``.

    Returns
    -------
    tuple of GroupingPick
        In first-seen order of the (model, budget) cells that hold variants of both sets.

    Raises
    ------
    ValueError
        ``default`` not within ``widened``, or a row the shift cannot read (see
        :func:`selection_cells`).

    Examples
    --------
    >>> rows = [{"model": "m", "budget": 2.0, "grouping": "any", "floor": 1, "shift": 0.3, "dfid": 9.0},
    ...         {"model": "m", "budget": 2.0, "grouping": "flat", "floor": 1, "shift": 0.1, "dfid": 4.0}]
    >>> (pick,) = grouping_picks(rows)
    >>> pick.default["dfid"], pick.widened["dfid"], pick.changed
    (9.0, 4.0, True)
    """
    if not set(default) <= set(widened):
        raise ValueError(f"default={list(default)} must be within widened={list(widened)}")
    shift = {"shift": SCORES["shift"]}
    narrow = [r for r in rows if r["grouping"] in default]
    if not narrow:  # no cell holds a variant of the default set
        return ()
    small = {(c.model, c.budget): c for c in selection_cells(narrow, scores=shift)}
    large = selection_cells([r for r in rows if r["grouping"] in widened], scores=shift)
    return tuple(GroupingPick(model=c.model, budget=c.budget, default=small[(c.model, c.budget)].picked["shift"],
                              widened=c.picked["shift"], best=c.best)
                 for c in large if (c.model, c.budget) in small)


def in_features(rows: Sequence[Mapping], *, features: Features) -> list:
    """The rows with ``dfid``, ``dfid_low`` and ``dfid_high`` read in another feature net's columns.

    The functions of this module judge a variant by ``dfid`` and its interval, the project
    classifier's; this gives them the same rows judged in ``features`` (e.g. :data:`INCEPTION`, a
    run with ``--inception``). Every other key is kept, ``fid`` and ``fid_fp`` included.

    Parameters
    ----------
    rows : sequence of Mapping
    features : Features, keyword-only
        :data:`~fmq_theory.results.plan_report.INCEPTION` or
        :data:`~fmq_theory.results.plan_report.CLASSIFIER` (the rows unchanged but copied).

    Returns
    -------
    list of dict

    Raises
    ------
    ValueError
        ``features`` is neither, or a row lacks one of its three columns (naming ``rows``).

    Examples
    --------
    >>> row = {"dfid": 1.0, "dfid_low": 0.5, "dfid_high": 1.5,
    ...        "dfid_inception": 3.0, "dfid_inception_low": 2.0, "dfid_inception_high": 4.0}
    >>> in_features([row], features=INCEPTION)[0]["dfid_low"]
    2.0
    """
    if features not in (INCEPTION, CLASSIFIER):
        raise ValueError(f"features={features!r} must be INCEPTION or CLASSIFIER")
    out = []
    for i, r in enumerate(rows):
        try:
            moved = {"dfid": r[features.dfid], "dfid_low": r[features.low], "dfid_high": r[features.high]}
        except KeyError as exc:
            raise ValueError(f"rows[{i}] has no {features.name} column {exc}") from exc
        if any(v is None for v in moved.values()):
            raise ValueError(f"rows[{i}] has no {features.name} measurement: {moved}")
        out.append({**r, **moved})
    return out


def plot_grouping_picks(picks: Sequence[GroupingPick], *, peers: Mapping | None = None,
                        labels: Sequence[str] = ("grouping any", "groupings any, flat"), title: str = "",
                        feature_name: str = "classifier") -> Figure:
    """Per (model, budget): the measured dFID, with its 95% interval, of each set's pick, the best variant, a peer.

    Parameters
    ----------
    picks : sequence of GroupingPick
    peers : Mapping, optional
        ``(model, budget) -> row``, or a sequence of rows, each with ``dfid``, ``dfid_low``,
        ``dfid_high`` and ``method``: peers measured at that budget, each drawn as a band over its
        95% interval, one fill colour and one legend entry per method.
    labels : pair of str, keyword-only
        The legend's names of the default and the widened set.
    title : str, keyword-only
    feature_name : str, keyword-only
        The feature net the ``dfid`` columns are in (see :func:`in_features`), named on the y axis.

    The y axis is symmetric-log (linear within 1 of 0), so that changes near 0 show; linear where
    every value drawn lies within 1 of 0.

    Raises
    ------
    ValueError
        ``picks`` empty.
    """
    if not picks:
        raise ValueError("picks: give at least one GroupingPick")
    peers, fills = peers or {}, {}
    fig = Figure(figsize=(7.5, 4.0), layout="constrained")
    ax = fig.subplots()
    kinds = [("default", labels[0], "tab:gray", "o", -0.15), ("widened", labels[1], "tab:blue", "s", 0.0),
             ("best", "best variant", "tab:green", "^", 0.15)]
    for i, pick in enumerate(picks):
        for attr, label, colour, marker, dx in kinds:
            r = getattr(pick, attr)
            err = [[max(float(r["dfid"]) - float(r["dfid_low"]), 0.0)], [max(float(r["dfid_high"]) - float(r["dfid"]), 0.0)]]
            ax.errorbar([i + dx], [float(r["dfid"])], yerr=err, fmt=marker, color=colour, mfc="none", ms=7, capsize=2,
                        label=label if i == 0 else None)
        cell_peers = peers.get((pick.model, pick.budget), ())
        for peer in [cell_peers] if isinstance(cell_peers, Mapping) else cell_peers:
            first = peer["method"] not in fills
            fill = fills.setdefault(peer["method"], _PEER_FILLS[len(fills) % len(_PEER_FILLS)])
            ax.fill_between([i - 0.3, i + 0.3], float(peer["dfid_low"]), float(peer["dfid_high"]), color=fill,
                            zorder=0, label=f"{peer['method']} (95% interval)" if first else None)
    _cell_axis(ax, picks, ylabel=f"measured $\\Delta$FID ({feature_name})", title=title)
    return fig
