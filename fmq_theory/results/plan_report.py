r"""The plan against its peers at equal honest bits: cells, the issue's goals, table and figures.

The page "What works at 2-3 bits" (``notebooks/plan.md``) is drawn from two tables under
``results/``:

* ``plan_<model>.csv`` (:data:`~fmq_theory.results.schema.PLAN`): one row per budget and
  method (``plan``, a peer family of :data:`fmq_theory.harness.peers.FAMILIES`, or ``none``,
  the full-precision model), read into a :class:`ModelResults` by :func:`model_results`;
* ``plan_choices_<model>_<budget>.csv`` (:data:`~fmq_theory.results.schema.PLAN_CHOICES`):
  the plan's option for every tensor, in network (state-dict) order.

**Feature net.** A model's FIDs are read in InceptionV3's features when every row of the
model has an Inception FID, else in the project classifier's (:data:`INCEPTION`,
:data:`CLASSIFIER`), or in the one asked for (:func:`model_results`'s ``features``).  The prediction is compared with the measured change in its own features,
by the first of :data:`PREDICTIONS` whose value, with the measured interval in its features,
every predicted row carries: the paired difference of the sampled pairs' own FIDs in
Inception's features (``predicted_dfid_inception_paired``), the plain sampled estimate there
(``predicted_dfid_inception``), then the same two in the classifier's.  Rows measured before
the paired difference was added carry the plain estimate only.

**Resolved.** A change :math:`\Delta\mathrm{FID} = \mathrm{FID}_q - \mathrm{FID}_{fp}` is
resolved when its 95% paired-bootstrap interval (:func:`fmq_theory.bounds.certify_fid`)
excludes 0, as in :mod:`fmq_theory.results.targets`; a row without an interval is not resolved.

**Goals** (:func:`judge_plan_goals`), each judged on every model present:

1. at a budget of 3.0 bits per weight, the plan's :math:`\Delta\mathrm{FID} \le 0.1\,\mathrm{FID}_{fp}`;
2. at budgets 2.0 to 2.5, the plan's :math:`\mathrm{FID} \le 2\,\mathrm{FID}_{fp}`;
3. at every budget, the plan's FID is below every peer's, resolved: the plan's
   :math:`\Delta\mathrm{FID}` interval lies entirely below the peer's.  Both intervals are
   paired with the same full-precision samples, not with each other, so disjoint intervals
   are a conservative test of the difference;
4. on every resolved cell with a prediction, :math:`1/2 \le \text{predicted} / \text{measured} \le 2`.

Figures are :class:`matplotlib.figure.Figure` objects (no pyplot state), at most 7.5 inches
wide with 8- to 9-point legends, like :mod:`fmq_theory.results.plots`.

Examples
--------
>>> pareto_front([(2.0, 9.0), (2.5, 10.0), (3.0, 4.0), (4.0, 4.0)])
((2.0, 9.0), (3.0, 4.0))
>>> Change(features="classifier", value=0.4, low=-0.1, high=0.9).resolved
False
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from fmq_theory.results.schema import PLAN, PLAN_CHOICES
from fmq_theory.results.tables import escape_markdown, format_cell, markdown_table, typeset_numbers

__all__ = ["CLASSIFIER", "CLASSIFIER_PAIRED", "GOAL_BAND", "GOAL_BUDGET", "GOAL_DFID_FRACTION", "GOAL_FID_RATIO",
           "GOAL_LOW_BUDGETS", "INCEPTION", "INCEPTION_PAIRED", "MATCHED_BITS", "PREDICTIONS", "Change", "ChoiceSummary",
           "Features", "Goal", "ModelResults", "PlanCell",
           "Verdict", "fid_panels", "goal_statement", "headline_table", "judge_plan_goals", "model_results", "panel_legend", "pareto_front",
           "plan_table", "plot_plan_bitmap", "plot_plan_pareto", "plot_predicted_vs_measured", "plot_whole_form_run", "read_plan_choices",
           "read_plan_results", "style_fid_axis", "summarize_choices"]


@dataclass(frozen=True)
class Features:
    """The columns of :data:`~fmq_theory.results.schema.PLAN` that hold one feature net's numbers,
    and which of its predictions (``estimate``: ``"plain"`` or ``"paired"``) the ``predicted*``
    columns hold."""

    name: str
    net: str
    fid: str
    fid_fp: str
    dfid: str
    low: str
    high: str
    predicted: str
    predicted_low: str
    predicted_high: str
    estimate: str = "plain"


#: InceptionV3 features (the issue's protocol).
INCEPTION = Features(name="Inception", net="inception_net", fid="fid_inception", fid_fp="fid_inception_fp",
                     dfid="dfid_inception", low="dfid_inception_low", high="dfid_inception_high",
                     predicted="predicted_dfid_inception", predicted_low="predicted_dfid_inception_low",
                     predicted_high="predicted_dfid_inception_high")
#: The project classifier's features.
CLASSIFIER = Features(name="classifier", net="feature_net", fid="fid", fid_fp="fid_fp", dfid="dfid",
                      low="dfid_low", high="dfid_high", predicted="predicted_dfid",
                      predicted_low="predicted_dfid_low", predicted_high="predicted_dfid_high")
#: The same features with the paired difference of the sampled pairs' own FIDs as the prediction
#: (:attr:`fmq_theory.bounds.sampled.SampledDFID.paired`): the rows of a run since it was added.
INCEPTION_PAIRED = replace(INCEPTION, predicted="predicted_dfid_inception_paired",
                           predicted_low="predicted_dfid_inception_paired_low",
                           predicted_high="predicted_dfid_inception_paired_high", estimate="paired")
CLASSIFIER_PAIRED = replace(CLASSIFIER, predicted="predicted_dfid_paired", predicted_low="predicted_dfid_paired_low",
                            predicted_high="predicted_dfid_paired_high", estimate="paired")
#: The predictions a model's rows are judged by, in order of preference: the first whose value
#: (and the measured interval in its features) every predicted row carries.  The paired
#: difference comes first: it tracks the measured change where the plain estimate runs high
#: (``results/plan_dit_inception_bias_gpu.csv``).
PREDICTIONS = (INCEPTION_PAIRED, INCEPTION, CLASSIFIER_PAIRED, CLASSIFIER)


@dataclass(frozen=True)
class Change:
    """A measured FID change with its 95% paired-bootstrap interval.

    Attributes
    ----------
    features : str
        ``"Inception"`` or ``"classifier"``.
    value : float
        :math:`\\mathrm{FID}_q - \\mathrm{FID}_{fp}`.
    low, high : float or None
        The interval's ends (``None``: not computed).
    """

    features: str
    value: float
    low: float | None
    high: float | None

    @property
    def resolved(self) -> bool:
        """The interval exists and excludes 0."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def admits(self, predicted: float, *, band: float) -> bool:
        """Whether some value :math:`m` of the interval has :math:`1/b \\le p / m \\le b`.

        With the prediction :math:`p` and ``band`` :math:`b > 1`: the interval meets
        :math:`[p / b, p\\,b]` (both positive) or :math:`[p\\,b, p / b]` (both negative).
        A miss of the factor that the interval admits is a miss within the measurement's
        noise; one it does not admit is resolved by the measurement.  ``False`` without an
        interval, or for a prediction of 0 (its ratio to any measurement is 0).

        Examples
        --------
        >>> Change("classifier", 0.341, 0.0583, 0.759).admits(0.0876, band=2.0)  # 2 x 0.0876 >= 0.0583
        True
        >>> Change("classifier", 0.341, 0.2, 0.759).admits(0.0876, band=2.0)
        False
        """
        if self.low is None or self.high is None or predicted == 0:
            return False
        ends = sorted((predicted / band, predicted * band))
        return self.low <= ends[1] and ends[0] <= self.high


@dataclass(frozen=True)
class PlanCell:
    """One method at one budget on one model.

    Attributes
    ----------
    model : str
    budget : float
        The budget the row serves (a peer's setting is the one nearest it).
    method : str
        ``"plan"`` or a peer family.
    setting : str
    bits_per_weight : float
        Honest bits per weight of the stored model.
    fid : float
        FID in the model's features (:attr:`ModelResults.features`).
    change : Change
        Its change against full precision, same features.
    predicted : float or None
        Predicted change, in the features of :attr:`measured` (``None``: no prediction).
    predicted_low, predicted_high : float or None
        The prediction's interval.
    measured : Change or None
        The measured change in the prediction's features (``None`` without a prediction).
    """

    model: str
    budget: float
    method: str
    setting: str
    bits_per_weight: float
    fid: float
    change: Change
    predicted: float | None = None
    predicted_low: float | None = None
    predicted_high: float | None = None
    measured: Change | None = None

    @property
    def label(self) -> str:
        """``"<method>/<setting>"``."""
        return f"{self.method}/{self.setting}"


@dataclass(frozen=True)
class ModelResults:
    """The plan and its peers on one model, in one protocol.

    Attributes
    ----------
    model, dataset, architecture : str
    features : str
        ``"Inception"`` or ``"classifier"``: the features of every FID of :attr:`cells`.
    net : str
        That feature net's name, as the rows give it.
    fid_fp : float
        Full-precision FID in those features.
    protocol : dict
        ``samples, solver, steps, nfe, seed, fid_real_test_samples, checkpoint_sha256`` of the
        full-precision row.
    cells : tuple of PlanCell
        Every measured quantized row, sorted by budget, then honest bits per weight.
    unmeasured : tuple of str
        ``"<budget> <method>/<setting>"`` of rows without an FID in those features.
    dropped_protocols : tuple of int
        Sample counts of other protocols in the file, left out (the largest is kept).
    prediction : str
        Which prediction the cells carry: ``"<features>, <estimate>"`` of the first of
        :data:`PREDICTIONS` that every predicted row holds, e.g. ``"Inception, paired"``
        (``""`` when no row is predicted).
    """

    model: str
    dataset: str
    architecture: str
    features: str
    net: str
    fid_fp: float
    protocol: Mapping
    cells: tuple
    unmeasured: tuple = ()
    dropped_protocols: tuple = ()
    prediction: str = ""

    def at(self, budget: float) -> tuple:
        """The cells serving ``budget``."""
        return tuple(c for c in self.cells if c.budget == budget)

    @property
    def budgets(self) -> tuple:
        """Budgets with a cell, increasing."""
        return tuple(sorted({c.budget for c in self.cells}))


_PROTOCOL = ("samples", "solver", "steps", "nfe", "seed", "fid_real_test_samples", "checkpoint_sha256")


def _change(row: Mapping, f: Features, fid_fp: float) -> Change:
    value = row.get(f.dfid)
    if value is None:
        value = row[f.fid] - fid_fp
    return Change(features=f.name, value=float(value), low=row.get(f.low), high=row.get(f.high))


def model_results(rows: Sequence[Mapping], *, features: Features | None = None) -> ModelResults:
    """The rows of one ``plan_<model>.csv`` as a :class:`ModelResults`.

    Parameters
    ----------
    rows : sequence of mapping
        Typed rows of :data:`~fmq_theory.results.schema.PLAN` (extra columns such as
        ``predicted_dfid_inception`` are read when present).  When the file holds several
        protocols (sample counts), the one with most samples is kept.
    features : Features, optional
        The feature net the FIDs are read in: :data:`INCEPTION` or :data:`CLASSIFIER`.  ``None``
        (default): Inception's when every row has an Inception FID, else the classifier's, and
        the prediction the first of :data:`PREDICTIONS` that every predicted row carries; when
        given, the prediction is chosen among those of the same net.

    Raises
    ------
    ValueError
        ``rows`` is empty, names several models, has no full-precision row (``method`` ``none``)
        in its protocol, or two rows for one budget and method; ``features`` is not one of the
        two, or is :data:`INCEPTION` while a row has no Inception FID.
    """
    if features is not None and features not in (INCEPTION, CLASSIFIER):
        raise ValueError(f"features={features!r} must be INCEPTION, CLASSIFIER or None")
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("rows is empty: no plan results to read")
    models = sorted({r["model"] for r in rows})
    if len(models) != 1:
        raise ValueError(f"rows holds the models {models}; pass the rows of one model")
    samples = sorted({r.get("samples") or 0 for r in rows})
    keep = samples[-1]
    rows = [r for r in rows if (r.get("samples") or 0) == keep]
    fp = [r for r in rows if r["method"] == "none"]
    if len(fp) != 1:
        raise ValueError(f"rows of model {models[0]!r} ({keep} samples) hold {len(fp)} full-precision rows, not 1")
    fp = fp[0]
    quantized = [r for r in rows if r["method"] != "none"]
    seen = set()
    for r in quantized:
        if (r["budget"], r["method"]) in seen:
            raise ValueError(f"rows of model {models[0]!r}: two rows for budget {r['budget']} method {r['method']!r}")
        seen.add((r["budget"], r["method"]))
    every_inception = all(r.get("fid_inception") is not None for r in rows)
    if features is INCEPTION and not every_inception:
        raise ValueError(f"features=INCEPTION: rows of model {models[0]!r} without an Inception FID")
    f = features or (INCEPTION if every_inception else CLASSIFIER)
    predicted = [r for r in quantized if r.get("predicted_dfid") is not None
                 or r.get("predicted_dfid_inception") is not None]
    judged_by = PREDICTIONS if features is None else tuple(c for c in PREDICTIONS if c.name == features.name)
    p = next((cand for cand in judged_by if predicted and all(
        r.get(c) is not None for r in predicted for c in (cand.predicted, cand.low, cand.high))), judged_by[-1])
    fid_fp = float(fp[f.fid])
    cells, unmeasured = [], []
    for r in quantized:
        if r.get(f.fid) is None:
            unmeasured.append(f"{r['budget']:g} {r['method']}/{r['setting']}")
            continue
        own_fp = r.get(f.fid_fp) if r.get(f.fid_fp) is not None else fid_fp
        pred = r.get(p.predicted)
        cells.append(PlanCell(
            model=models[0], budget=float(r["budget"]), method=r["method"], setting=r["setting"] or "",
            bits_per_weight=float(r["bits_per_weight"]), fid=float(r[f.fid]), change=_change(r, f, own_fp),
            predicted=None if pred is None else float(pred), predicted_low=r.get(p.predicted_low) if pred is not None
            else None, predicted_high=r.get(p.predicted_high) if pred is not None else None,
            measured=None if pred is None or r.get(p.fid) is None else _change(
                r, p, r.get(p.fid_fp) if r.get(p.fid_fp) is not None else fp[p.fid])))
    cells.sort(key=lambda c: (c.budget, c.bits_per_weight, c.method))
    return ModelResults(model=models[0], dataset=fp.get("dataset") or "", architecture=fp.get("architecture") or "",
                        features=f.name, net=fp.get(f.net) or "", fid_fp=fid_fp,
                        protocol={k: fp.get(k) for k in _PROTOCOL}, cells=tuple(cells),
                        unmeasured=tuple(unmeasured), dropped_protocols=tuple(s for s in samples if s != keep),
                        prediction=f"{p.name}, {p.estimate}" if any(c.predicted is not None for c in cells) else "")


_PLAN_FILE = re.compile(r"plan_(?!choices_)(?P<model>.+)\.csv")
_CHOICES_FILE = re.compile(r"plan_choices_(?P<model>.+)_(?P<budget>[0-9.]+)\.csv")


def read_plan_results(results_dir, *, models: Sequence[str] | None = None) -> dict:
    """``model -> ModelResults`` of every ``plan_<model>.csv`` in ``results_dir``.

    ``models`` (optional) keeps those models, in that order, skipping absent files.

    Raises
    ------
    FileNotFoundError
        ``results_dir`` holds none of the wanted files.
    """
    results_dir = Path(results_dir)
    found = {m.group("model"): path for path in sorted(results_dir.glob("plan_*.csv"))
             if (m := _PLAN_FILE.fullmatch(path.name))}
    order = list(found) if models is None else [m for m in models if m in found]
    if not order:
        raise FileNotFoundError(f"results_dir={str(results_dir)!r} holds no plan_<model>.csv"
                                + ("" if models is None else f" for the models {list(models)}"))
    return {m: model_results(PLAN.read(found[m])) for m in order}


def read_plan_choices(results_dir, *, model: str) -> dict:
    """``budget -> rows`` of every ``plan_choices_<model>_<budget>.csv`` in ``results_dir``
    (typed rows of :data:`~fmq_theory.results.schema.PLAN_CHOICES`, in network order); ``{}``
    when there are none."""
    out = {}
    for path in sorted(Path(results_dir).glob(f"plan_choices_{model}_*.csv")):
        m = _CHOICES_FILE.fullmatch(path.name)
        if m and m.group("model") == model:
            out[float(m.group("budget"))] = PLAN_CHOICES.read(path)
    return dict(sorted(out.items()))


def pareto_front(points: Sequence[tuple]) -> tuple:
    """The points ``(bits, fid)`` no other point beats in both (fewer or equal bits and lower
    FID), sorted by bits: the best FID reachable at each number of bits."""
    front, best = [], math.inf
    for bits, fid in sorted(points, key=lambda p: (p[0], p[1])):
        if fid < best:
            front.append((bits, fid))
            best = fid
    return tuple(front)


@dataclass(frozen=True)
class ChoiceSummary:
    """Where one plan spends its bits (from its per-tensor choices).

    Attributes
    ----------
    tensors : int
    n_weights : int
    bits_per_weight : float
        Honest bits per weight of the whole plan: :math:`\\sum_t b_t n_t / \\sum_t n_t`.
    kept_tensors : int
        Tensors stored at 16 or 32 bits (no codes).
    kept_weight_share, kept_bit_share : float
        Their share of the weights and of the stored bits.
    method_weight_share : dict of str to float
        Share of the weights under each method, largest first.
    """

    tensors: int
    n_weights: int
    bits_per_weight: float
    kept_tensors: int
    kept_weight_share: float
    kept_bit_share: float
    method_weight_share: Mapping


def summarize_choices(rows: Sequence[Mapping]) -> ChoiceSummary:
    """:class:`ChoiceSummary` of one plan's rows of :data:`~fmq_theory.results.schema.PLAN_CHOICES`.

    Examples
    --------
    >>> s = summarize_choices([
    ...     {"method": "lloyd_max", "bits": 2, "n_weights": 1000, "bits_per_weight": 2.2},
    ...     {"method": "float16", "bits": 16, "n_weights": 20, "bits_per_weight": 16.0}])
    >>> s.kept_tensors, round(s.kept_weight_share, 4), round(s.kept_bit_share, 4), round(s.bits_per_weight, 4)
    (1, 0.0196, 0.127, 2.4706)
    """
    if not rows:
        raise ValueError("rows is empty: no plan choices to summarize")
    n = np.array([r["n_weights"] for r in rows], dtype=float)
    bits = n * np.array([r["bits_per_weight"] for r in rows], dtype=float)
    kept = np.array([r["bits"] >= 16 for r in rows])
    share: dict = {}
    for r, w in zip(rows, n):
        share[r["method"]] = share.get(r["method"], 0.0) + w / n.sum()
    return ChoiceSummary(tensors=len(rows), n_weights=int(n.sum()), bits_per_weight=float(bits.sum() / n.sum()),
                         kept_tensors=int(kept.sum()), kept_weight_share=float(n[kept].sum() / n.sum()),
                         kept_bit_share=float(bits[kept].sum() / bits.sum()),
                         method_weight_share=dict(sorted(share.items(), key=lambda kv: -kv[1])))


# ----------------------------------------------------------------------------------------------
# goals

@dataclass(frozen=True)
class Verdict:
    """One judged item of a goal.

    Attributes
    ----------
    label : str
    status : str
        ``"met"``/``"missed"``; goal 3: ``"resolved win"``, ``"win, not resolved"``,
        ``"loss, not resolved"``, ``"resolved loss"`` (only a resolved win meets it);
        goal 4: ``"met"``, ``"missed, within the noise"`` (the measured interval holds a value
        within the factor of the prediction, :meth:`Change.admits`) or ``"missed, resolved"``.
    ok : bool
        Whether the item meets the goal.
    value : float or None
        The judged ratio: goal 1 :math:`\\Delta\\mathrm{FID} / \\mathrm{FID}_{fp}`, goal 2
        :math:`\\mathrm{FID} / \\mathrm{FID}_{fp}`, goal 3 the plan's FID over the peer's,
        goal 4 predicted over measured (``None`` where there is no cell to judge).
    text : str
        The numbers behind it, in words.
    peer_extra_bits : float or None
        Goal 3: the peer's honest bits per weight minus the plan's (> 0: the peer, at its
        nominal setting nearest the budget, stores more bits than the plan); ``None`` for the
        other goals.
    """

    label: str
    status: str
    ok: bool
    value: float | None
    text: str
    peer_extra_bits: float | None = None


@dataclass(frozen=True)
class Goal:
    """One goal of the issue and how the results meet it.

    Attributes
    ----------
    name : str
    statement : str
    verdicts : tuple of Verdict
    """

    name: str
    statement: str
    verdicts: tuple

    @property
    def met(self) -> bool:
        """Judged on at least one item, and every item meets it."""
        return bool(self.verdicts) and all(v.ok for v in self.verdicts)

    @property
    def failed(self) -> tuple:
        """The verdicts that miss it."""
        return tuple(v for v in self.verdicts if not v.ok)


def _interval(value: float, low: float | None, high: float | None, *, typeset: bool = False) -> str:
    """``"value [low, high]"`` to 3 significant digits (``typeset``: e-notation as math)."""
    def number(x):
        return format_cell(x, ".3g") if typeset else f"{x:.3g}"
    if low is None or high is None:
        return number(value)
    return f"{number(value)} [{number(low)}, {number(high)}]"


def _change_text(change: Change, *, typeset: bool = False) -> str:
    text = _interval(change.value, change.low, change.high, typeset=typeset)
    return text + " (no interval)" if change.low is None or change.high is None else text


def _versus(plan: PlanCell, peer: PlanCell) -> str:
    """``"resolved win"`` (lower FID, the plan's dFID interval entirely below the peer's),
    ``"win, not resolved"``, ``"loss, not resolved"`` (a FID not lower, the intervals meeting) or
    ``"resolved loss"`` (the plan's interval entirely above the peer's)."""
    def below(a: PlanCell, b: PlanCell) -> bool:
        return a.change.high is not None and b.change.low is not None and a.change.high < b.change.low
    if plan.fid < peer.fid:
        return "resolved win" if below(plan, peer) else "win, not resolved"
    return "resolved loss" if below(peer, plan) else "loss, not resolved"


def _plan(model: ModelResults, budget: float) -> PlanCell | None:
    return next((c for c in model.at(budget) if c.method == "plan"), None)


#: The issue's thresholds, the defaults of :func:`judge_plan_goals`: goal 1's budget and largest
#: dFID / FP FID, goal 2's budgets and largest FID / FP FID, goal 4's band.
GOAL_BUDGET, GOAL_DFID_FRACTION, GOAL_LOW_BUDGETS, GOAL_FID_RATIO, GOAL_BAND = 3.0, 0.1, (2.0, 2.5), 2.0, 2.0

#: The resolution of a budget matched to a peer's size: ``scripts/gpu_plan_eval.py``'s ``matched_budgets`` rounds
#: the peer's honest bits per weight down to it, so a peer that stores less than this more than the plan
#: (:attr:`Verdict.peer_extra_bits`) is compared at the plan's own size.
MATCHED_BITS = 1e-4


def judge_plan_goals(models: Sequence[ModelResults], *, budget: float = GOAL_BUDGET,
                     dfid_fraction: float = GOAL_DFID_FRACTION, low_budgets: tuple = GOAL_LOW_BUDGETS,
                     fid_ratio: float = GOAL_FID_RATIO, band: float = GOAL_BAND) -> tuple:
    """The issue's four goals (see the module notes) judged on ``models``.

    Parameters
    ----------
    models : sequence of ModelResults
    budget : float
        Goal 1's budget (bits per weight).
    dfid_fraction : float
        Goal 1: largest :math:`\\Delta\\mathrm{FID} / \\mathrm{FID}_{fp}` (> 0).
    low_budgets : (float, float)
        Goal 2's range of budgets, inclusive.
    fid_ratio : float
        Goal 2: largest :math:`\\mathrm{FID} / \\mathrm{FID}_{fp}` (> 1).
    band : float
        Goal 4: largest factor between prediction and measurement, either way (> 1).

    Returns
    -------
    tuple of Goal
        Goals 1 to 4.  A goal with nothing to judge (e.g. no plan row at ``budget``) is not met.
    """
    if not models:
        raise ValueError("models is empty: nothing to judge")
    if not dfid_fraction > 0:
        raise ValueError(f"dfid_fraction={dfid_fraction!r} must be > 0")
    if not fid_ratio > 1:
        raise ValueError(f"fid_ratio={fid_ratio!r} must be > 1")
    if not band > 1:
        raise ValueError(f"band={band!r} must be > 1")
    lo, hi = low_budgets
    if not lo <= hi:
        raise ValueError(f"low_budgets={low_budgets!r} must be (low, high) with low <= high")
    g1, g2, g3, g4 = [], [], [], []
    for m in models:
        plan = _plan(m, budget)
        limit = dfid_fraction * m.fid_fp
        if plan is None:
            g1.append(Verdict(m.model, "missed", False, None, f"{m.model}: no plan row at {budget:g} bits"))
        else:
            ok = plan.change.value <= limit
            g1.append(Verdict(m.model, "met" if ok else "missed", ok, plan.change.value / m.fid_fp,
                              f"{m.model}: dFID {_change_text(plan.change)} {'<=' if ok else '>'} {limit:.3g} "
                              f"({dfid_fraction:.0%} of FP FID {m.fid_fp:.3g}, {m.features})"))
        for b in m.budgets:
            plan = _plan(m, b)
            if plan is None:
                continue
            if lo <= b <= hi:
                ok = plan.fid <= fid_ratio * m.fid_fp
                g2.append(Verdict(f"{m.model} {b:g}", "met" if ok else "missed", ok, plan.fid / m.fid_fp,
                                  f"{m.model} at {b:g} bits: FID {plan.fid:.3g} = {plan.fid / m.fid_fp:.2f} x FP "
                                  f"({m.fid_fp:.3g}, {m.features})"))
            for peer in m.at(b):
                if peer.method == "plan":
                    continue
                status = _versus(plan, peer)
                g3.append(Verdict(f"{m.model} {b:g} {peer.label}", status, status == "resolved win",
                                  plan.fid / peer.fid,
                                  f"{m.model} at {b:g} bits: plan FID {plan.fid:.3g} ({plan.bits_per_weight:.3f} bpw) "
                                  f"vs {peer.label} {peer.fid:.3g} ({peer.bits_per_weight:.3f} bpw): {status}",
                                  peer_extra_bits=peer.bits_per_weight - plan.bits_per_weight))
        for c in m.cells:
            if c.predicted is None or c.measured is None or not c.measured.resolved:
                continue
            ratio = c.predicted / c.measured.value
            ok = 1 / band <= ratio <= band
            status = "met" if ok else ("missed, within the noise" if c.measured.admits(c.predicted, band=band)
                                       else "missed, resolved")
            g4.append(Verdict(f"{m.model} {c.budget:g} {c.label}", status, ok, ratio,
                              f"{m.model} {c.label} at {c.budget:g} bits: predicted {c.predicted:.3g}, measured "
                              f"{_change_text(c.measured)} ({m.prediction}): ratio {ratio:.2f}"))
    return (
        Goal("dFID at 3 bits", f"at {budget:g} bits per weight, dFID <= {dfid_fraction:.0%} of the "
             "full-precision FID on every model", tuple(g1)),
        Goal("FID at 2-2.5 bits", f"at {lo:g}-{hi:g} bits per weight, FID <= {fid_ratio:g} x the full-precision "
             "FID on every model", tuple(g2)),
        Goal("beats every peer", "at every budget, the plan's FID is below every peer's, resolved by the "
             "paired-bootstrap intervals", tuple(g3)),
        Goal("prediction within 2x", f"predicted dFID within {band:g}x of the measured on every resolved cell",
             tuple(g4)),
    )


def goal_statement(goals: Sequence[Goal]) -> str:
    """The goals as a Markdown list: met or not, how many items pass, and every item that misses."""
    lines = []
    for i, g in enumerate(goals, 1):
        n, bad = len(g.verdicts), g.failed
        verdict = "**met**" if g.met else "**not judged** (no cell)" if not n else "**not met**"
        text = f"{i}. {typeset_numbers(escape_markdown(g.statement))}: {verdict}, {n - len(bad)} of {n} pass"
        if bad:
            shown = "; ".join(typeset_numbers(escape_markdown(v.text)) for v in bad[:8])
            more = f"; and {len(bad) - 8} more" if len(bad) > 8 else ""
            text += f". Missed: {shown}{more}"
        lines.append(text + ".")
    return "\n".join(lines)


def headline_table(models: Sequence[ModelResults]) -> str:
    """Markdown table: for every model and budget with a plan row, the plan against the peer
    with the lowest FID at that budget (FID, honest bits per weight, the comparison of goal 3).
    The peer and its numbers share a column, so that the table wraps within a page's width."""
    rows = []
    for m in models:
        for b in m.budgets:
            plan = _plan(m, b)
            peers = [c for c in m.at(b) if c.method != "plan"]
            if plan is None:
                continue
            best = min(peers, key=lambda c: c.fid) if peers else None
            rows.append([escape_markdown(m.model), f"{b:g}", f"{format_cell(plan.fid, '.3g')} ({plan.bits_per_weight:.3f})",
                         "—" if best is None else
                         f"{escape_markdown(best.label)}: {format_cell(best.fid, '.3g')} ({best.bits_per_weight:.3f})",
                         "no peer" if best is None else _versus(plan, best)])
    return markdown_table(header=["model", "budget", "plan: FID (bits/weight)", "best peer: FID (bits/weight)",
                                  "plan against it"], rows=rows)


def plan_table(model: ModelResults) -> str:
    """Markdown table of one model: budget, method, honest bits per weight, FID, dFID with its
    interval and the predicted dFID with its interval; the plan's rows in bold."""
    rows = []
    for c in model.cells:
        name = escape_markdown(c.label)
        pred = "—"
        if c.predicted is not None:
            pred = _interval(c.predicted, c.predicted_low, c.predicted_high, typeset=True)
            if c.measured is not None and c.measured.features != model.features:
                pred += f" ({c.measured.features})"
        rows.append([f"{c.budget:g}", f"**{name}**" if c.method == "plan" else name, c.bits_per_weight, c.fid,
                     _change_text(c.change, typeset=True), pred])
    return markdown_table(header=["budget", "method/setting", "bits/weight", f"FID ({model.features})",
                                  "ΔFID [95% interval]", "predicted ΔFID"],
                          rows=rows, formats=["", "", ".3f", ".3g", "", ""])


# ----------------------------------------------------------------------------------------------
# figures

def _peer_styles(models: Sequence[ModelResults]) -> dict:
    """One line style per peer family, the same in every panel: ten colours, then the same
    colours dashed with square markers."""
    families = sorted({c.method for m in models for c in m.cells if c.method != "plan"})
    return {f: {"color": f"C{i % 10}", "marker": "os^"[i // 10 % 3], "ls": ("-", "--", ":")[i // 10 % 3]}
            for i, f in enumerate(families)}


def plot_plan_pareto(models: Sequence[ModelResults]) -> Figure:
    """FID against honest bits per weight, one panel per model: every peer family (a line through
    its settings), the peers' Pareto front (grey steps), the plan (black stars) and the
    full-precision FID (dotted line).  Log FID axis."""
    if not models:
        raise ValueError("models is empty: nothing to draw")
    styles = _peer_styles(models)
    fig, axes = fid_panels(len(models), panel_height=3.2, legend_height=1.6)
    handles = {}
    for ax, m in zip(axes, models):
        peers = {}
        for c in m.cells:
            if c.method != "plan":
                peers.setdefault(c.method, set()).add((c.bits_per_weight, c.fid))
        for family, pts in sorted(peers.items()):
            b, f = zip(*sorted(pts))
            (h,) = ax.plot(b, f, ms=3.5, lw=0.9, alpha=0.85, **styles[family])
            handles.setdefault(family, h)
        front = pareto_front([p for pts in peers.values() for p in pts])
        if front:
            b, f = zip(*front)
            (h,) = ax.step(b, f, where="post", color="0.55", lw=2.2, alpha=0.5, zorder=1)
            handles.setdefault("Pareto front of the peers", h)
        plan = sorted((c.bits_per_weight, c.fid) for c in m.cells if c.method == "plan")
        if plan:
            b, f = zip(*plan)
            (h,) = ax.plot(b, f, "*-", color="k", ms=11, lw=2.0, zorder=6)
            handles.setdefault("plan", h)
        h = ax.axhline(m.fid_fp, color="k", ls=":", lw=1.2)
        handles.setdefault("full precision", h)
        style_fid_axis(ax, title=f"{m.model}: {m.features} FID, {m.protocol.get('samples')} samples",
                       ylabel=f"FID ({m.features})")
    panel_legend(fig, handles, ["plan", "full precision", "Pareto front of the peers"] + sorted(styles), ncol=3)
    return fig


def fid_panels(n: int, *, panel_height: float, legend_height: float) -> tuple:
    """A figure 7.5 inches wide of ``n`` panels, two a row (one when ``n == 1``), with room for
    a legend under them; a last unused panel is hidden.  Returns the figure and the ``n`` axes
    in order."""
    ncol = 2 if n > 1 else 1
    nrow = math.ceil(n / ncol)
    fig = Figure(figsize=(7.5, panel_height * nrow + legend_height), layout="constrained")
    axes = list(fig.subplots(nrow, ncol, squeeze=False).flat)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def style_fid_axis(ax, *, title: str, ylabel: str) -> None:
    """A panel of FID against honest bits per weight: log FID axis with plain-number ticks at
    1, 2 and 5 per decade, 9-point title and labels, a light grid."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("honest bits per weight", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="both", alpha=0.25)


def panel_legend(fig: Figure, handles: Mapping, order: Sequence[str], *, ncol: int) -> None:
    """One legend under the panels: the entries of ``order`` that have a handle, in that order."""
    fig.legend([handles[k] for k in order if k in handles], [k for k in order if k in handles],
               loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)


#: Colour of each method of :class:`fmq_theory.plan.TensorChoice` in the bit map.
METHOD_COLORS = {"lloyd_max": "tab:blue", "weighted_lloyd": "tab:cyan", "uniform_mse": "tab:orange",
                 "normal_float": "tab:green", "float16": "tab:red", "float32": "tab:purple"}


def _block(name: str) -> str:
    return name.split(".")[0]


def _block_labels(names: Sequence[str], *, gap: float) -> tuple:
    """``(starts, centres, labels)`` of the top-level blocks of ``names`` (consecutive tensors
    sharing the first name component); neighbouring blocks whose centres lie closer than ``gap``
    tensors share one label, ``"a+b"``, so that tick labels never overlap.

    Examples
    --------
    >>> _block_labels(["t.w", "t.b", "in.w", "down.0.w", "down.1.w", "down.2.w", "down.3.w", "out.w"], gap=2)
    ([0, 2, 3, 7], [1.5, 5.0, 7.5], ['t+in', 'down', 'out'])
    """
    starts = [i for i, name in enumerate(names) if i == 0 or _block(name) != _block(names[i - 1])]
    spans = [[_block(names[a]), a, b] for a, b in zip(starts, starts[1:] + [len(names)])]
    merged = [spans[0]]
    for label, a, b in spans[1:]:
        last = merged[-1]
        if (a + b) / 2 - (last[1] + last[2]) / 2 < gap and (b - a < gap or last[2] - last[1] < gap):
            merged[-1] = [f"{last[0]}+{label}", last[1], b]
        else:
            merged.append([label, a, b])
    return starts, [(a + b) / 2 for _, a, b in merged], [label for label, _, _ in merged]


def plot_plan_bitmap(choices: Mapping[float, Sequence[Mapping]], *, title: str) -> Figure:
    """The plan's choice for every tensor, drawn on the network.

    One panel per budget: tensors in network order on x, the honest bits per weight of each
    tensor as a bar (log-2 axis) coloured by method, the budget as a dashed line.  A last panel
    shows each tensor's number of weights, so that the small tensors kept at 16 bits stand out.
    Ticks name the top-level blocks of the network.

    Parameters
    ----------
    choices : mapping of float to sequence of mapping
        ``budget -> rows`` of :data:`~fmq_theory.results.schema.PLAN_CHOICES`
        (:func:`read_plan_choices`), every budget with the same tensors in the same order.
    title : str
    """
    if not choices:
        raise ValueError("choices is empty: no plan to draw")
    budgets = sorted(choices)
    names = [r["name"] for r in choices[budgets[0]]]
    for b in budgets:
        if [r["name"] for r in choices[b]] != names:
            raise ValueError(f"choices[{b}] lists other tensors than choices[{budgets[0]}]")
    x = np.arange(len(names))
    fig = Figure(figsize=(7.5, 2.1 * len(budgets) + 2.4), layout="constrained")
    axes = fig.subplots(len(budgets) + 1, 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [3] * len(budgets) + [2]})[:, 0]
    seen = {}
    for ax, b in zip(axes, budgets):
        rows = choices[b]
        bpw = np.array([r["bits_per_weight"] for r in rows], dtype=float)
        methods = [r["method"] for r in rows]
        for method in dict.fromkeys(methods):
            sel = np.array([mm == method for mm in methods])
            seen[method] = ax.bar(x[sel], bpw[sel], width=1.0, color=METHOD_COLORS.get(method, "0.3"), lw=0)
        ax.axhline(b, color="k", ls="--", lw=0.9)
        ax.set_yscale("log", base=2)
        ax.set_yticks([1, 2, 4, 8, 16, 32], labels=["1", "2", "4", "8", "16", "32"])
        ax.set_ylabel("bits/weight", fontsize=9)
        ax.set_title(f"budget {b:g} bits per weight (dashed); honest {summarize_choices(rows).bits_per_weight:.3f}",
                     fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
    n = np.array([r["n_weights"] for r in choices[budgets[0]]], dtype=float)
    axes[-1].bar(x, n, width=1.0, color="0.5", lw=0)
    axes[-1].set_yscale("log")
    axes[-1].set_ylabel("weights", fontsize=9)
    starts, centres, labels = _block_labels(names, gap=max(3.0, len(names) / 25))
    for ax in axes:
        for i in starts[1:]:
            ax.axvline(i - 0.5, color="0.8", lw=0.6, zorder=0)
    axes[-1].set_xticks([c - 0.5 for c in centres], labels=labels, rotation=45, ha="right", fontsize=7)
    axes[-1].set_xlim(-0.5, len(names) - 0.5)
    axes[-1].set_xlabel(f"{len(names)} tensors in network order", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncol=len(seen), fontsize=8, frameon=False)
    return fig


def _bars(value: float, low: float | None, high: float | None, *, floor: float) -> list | None:
    """Error-bar lengths ``[[below], [above]]`` of ``[low, high]`` around ``value`` on a log axis
    starting at ``floor`` (an end on the wrong side of ``value`` gives a bar of length 0)."""
    if low is None or high is None:
        return None
    return [[max(value - max(low, floor), 0.0)], [max(high - value, 0.0)]]


def plot_predicted_vs_measured(models: Sequence[ModelResults], *, band: float = 2.0) -> Figure:
    """Predicted against measured dFID on log axes, with the ``band``-fold band around equality.

    One point per cell with a prediction and both numbers positive: horizontal bars the measured
    95% paired-bootstrap interval, vertical bars the prediction's interval (ends at or below 0
    drawn to the axis edge).  Filled markers: resolved cells; open: inside the noise.  Colour:
    model; marker: budget; the plan's cells larger, with a black edge.  The cells that cannot be drawn on log axes are counted in the title.
    """
    if not band > 1:
        raise ValueError(f"band={band!r} must be > 1")
    cells = [c for m in models for c in m.cells if c.predicted is not None and c.measured is not None]
    drawn = [c for c in cells if c.predicted > 0 and c.measured.value > 0]
    fig = Figure(figsize=(6.5, 5.6), layout="constrained")
    ax = fig.subplots()
    values = [v for c in drawn for v in (c.predicted, c.measured.value)]
    lo_v, hi_v = (min(values) / 4, max(values) * 4) if values else (1e-2, 1e2)
    grid = np.geomspace(lo_v, hi_v, 50)
    ax.fill_between(grid, grid / band, grid * band, color="tab:green", alpha=0.15, lw=0,
                    label=f"within {band:g}x")
    ax.plot(grid, grid, color="tab:green", lw=1, label="predicted = measured")
    model_names = list(dict.fromkeys(m.model for m in models))
    budgets = sorted({c.budget for c in drawn})
    markers = {b: "osD^vP*Xh<>p"[i % 12] for i, b in enumerate(budgets)}  # a shape repeats past 12 budgets
    for c in drawn:
        color = f"C{model_names.index(c.model) % 10}"
        meas = c.measured
        xerr = _bars(meas.value, meas.low, meas.high, floor=lo_v)
        yerr = _bars(c.predicted, c.predicted_low, c.predicted_high, floor=lo_v)
        plan = c.method == "plan"
        ax.errorbar([meas.value], [c.predicted], xerr=xerr, yerr=yerr, fmt=markers.get(c.budget, "o"),
                    color=color, mfc=color if meas.resolved else "none", mec="k" if plan else color,
                    ms=8 if plan else 5, elinewidth=0.8, capsize=2, zorder=5 if plan else 3)
    for i, name in enumerate(model_names):
        ax.plot([], [], "-", lw=4, color=f"C{i % 10}", label=name)
    for b in budgets:
        ax.plot([], [], markers[b], color="0.3", mfc="none", label=f"budget {b:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo_v, hi_v)
    ax.set_ylim(lo_v, hi_v)
    ax.set_aspect("equal")
    features = sorted({c.measured.features for c in drawn})
    ax.set_xlabel(f"measured dFID ({', '.join(features) or 'no cell'}; filled: resolved)", fontsize=9)
    ax.set_ylabel("predicted dFID", fontsize=9)
    ax.set_title(f"{len(drawn)} of {len(cells)} cells with a prediction drawn "
                 f"({len(cells) - len(drawn)} with a change <= 0 not on log axes)", fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    return fig


def plot_whole_form_run(rows: Sequence[Mapping]) -> Figure:
    """Sampled displacement of each plan of a whole-form run (``results/plan_whole_form_<model>_cpu.json``).

    ``rows[0]`` is the peer, drawn as a dashed line; the others are points with their 95%
    intervals, coloured by how they were allocated: the knapsack (``"knapsack..."``), the whole
    form within the family (``"whole form, ... options ..."``) or over every option
    (``"... every option ..."``).
    """
    if len(rows) < 2:
        raise ValueError(f"rows must hold the peer and at least one plan, got {len(rows)}")
    peer, planned = rows[0], rows[1:]
    kinds = {"knapsack (additive prices)": "tab:blue", "whole form, the family's options": "tab:orange",
             "whole form, every option": "tab:red"}

    def kind(label: str) -> str:
        if label.startswith("knapsack"):
            return "knapsack (additive prices)"
        return "whole form, every option" if "every option" in label else "whole form, the family's options"

    fig = Figure(figsize=(8, 4.6), layout="constrained")
    ax = fig.subplots()
    for i, r in enumerate(planned):
        ax.errorbar([i], [r["sampled_msd"]], yerr=[[r["sampled_msd"] - r["sampled_low"]],
                                                   [r["sampled_high"] - r["sampled_msd"]]],
                    fmt="o", color=kinds[kind(r["variant"])], capsize=3)
    ax.axhline(peer["sampled_msd"], color="black", lw=1, ls="--",
               label=f"{peer['variant']} ({peer['bits_per_weight']:.3f} bits/weight)")
    for name, colour in kinds.items():
        ax.plot([], [], "o", color=colour, label=name)
    ax.set_xticks(range(len(planned)), [r["variant"] for r in planned], rotation=90, fontsize=7)
    ax.set_ylabel("sampled displacement per entry")
    ax.legend(fontsize=7, loc="upper left")
    return fig
