"""Reading a bound-check table: which cells are resolved, and which meet the targets.

A cell of ``fmq bound-check`` (one dataset, method and bit width) is *resolved* when the
paired-bootstrap interval ``[dfid_low, dfid_high]`` of the measured FID change excludes 0,
and *inside the sampling noise* otherwise.  On the resolved cells the targets of the bound
comparison are

* a bound ``B`` (``certified_dfid``, ``certified_dfid_fits``): ``B / dFID <= 10``, judged on
  cells with a positive change (for a resolved negative change every non-negative bound holds
  and no ratio measures its tightness; those cells are listed apart);
* a prediction ``P`` (``predicted_dfid``, ``predicted_dfid_actual``, and the dither test
  ``dither_dfid`` that validates the noise model): ``1/3 <= P / dFID <= 3``, judged on every
  resolved cell, so a prediction of the wrong sign misses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from fmq_theory.results.schema import BOUND_CHECK

__all__ = ["BOUND_COLUMNS", "PREDICTION_COLUMNS", "TargetResult", "BoundCheckSummary", "summarize_bound_check"]

#: Bound columns, judged by ``bound / measured <= certified_max`` on resolved positive cells.
BOUND_COLUMNS = ("certified_dfid", "certified_dfid_fits")
#: Prediction columns, judged by ``low <= prediction / measured <= high`` on all resolved cells.
PREDICTION_COLUMNS = ("predicted_dfid", "predicted_dfid_actual", "dither_dfid")


@dataclass(frozen=True)
class TargetResult:
    """One column against its target.

    Attributes
    ----------
    column : str
        The csv column judged.
    target : str
        The target in words.
    judged : tuple of str
        Labels of the cells it is judged on.
    ratios : tuple of float
        ``column / measured_dfid`` on those cells, in the same order.
    met : tuple of str
        Labels of the cells that meet the target.
    missed : tuple of str
        Labels of the cells that miss it.
    """

    column: str
    target: str
    judged: tuple
    ratios: tuple
    met: tuple
    missed: tuple


@dataclass(frozen=True)
class BoundCheckSummary:
    """Resolution of the cells and every column against its target.

    Attributes
    ----------
    cells : tuple of str
        Labels ``"<dataset> <method> b=<bits>"`` of all cells, in input order.
    resolved_positive, resolved_negative, inside_noise : tuple of str
        The cells whose change is resolved and positive, resolved and negative, or not resolved.
    targets : Mapping[str, TargetResult]
        By column.
    """

    cells: tuple
    resolved_positive: tuple
    resolved_negative: tuple
    inside_noise: tuple
    targets: Mapping[str, TargetResult]


def _number(value) -> float:
    return math.nan if value is None else float(value)


def summarize_bound_check(rows: Iterable[Mapping], *, certified_max: float = 10.0,
                          predicted_band: tuple = (1.0 / 3.0, 3.0)) -> BoundCheckSummary:
    """Classify bound-check cells and judge every bound and prediction column.

    Parameters
    ----------
    rows : iterable of mapping
        Rows of the :data:`~fmq_theory.results.schema.BOUND_CHECK` table (typed, as
        :meth:`~fmq_theory.results.schema.Table.read` returns them, or csv text), with at least
        ``dataset, method, bits, measured_dfid, dfid_low, dfid_high`` and the judged columns.
    certified_max : float
        Largest acceptable ``bound / measured`` (> 1).
    predicted_band : (float, float)
        Acceptable range ``(low, high)`` of ``prediction / measured``, ``0 < low <= 1 <= high``.

    Returns
    -------
    BoundCheckSummary
    """
    if not certified_max > 1.0:
        raise ValueError(f"certified_max={certified_max!r} must be > 1")
    low, high = predicted_band
    if not 0.0 < low <= 1.0 <= high:
        raise ValueError(f"predicted_band={predicted_band!r} must satisfy 0 < low <= 1 <= high")
    rows = [BOUND_CHECK.typed(r) for r in rows]
    if not rows:
        raise ValueError("rows is empty: no bound-check cells to summarize")
    label = [f"{r['dataset']} {r['method']} b={r['bits']}" for r in rows]
    dfid = [_number(r["measured_dfid"]) for r in rows]
    lo = [_number(r["dfid_low"]) for r in rows]
    hi = [_number(r["dfid_high"]) for r in rows]
    if any(not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)) for a, b, c in zip(dfid, lo, hi)):
        raise ValueError("rows: measured_dfid, dfid_low and dfid_high must be finite in every cell")
    pos = [i for i in range(len(rows)) if lo[i] > 0]
    neg = [i for i in range(len(rows)) if hi[i] < 0]
    inside = [i for i in range(len(rows)) if lo[i] <= 0 <= hi[i]]
    targets = {}
    for column in BOUND_COLUMNS + PREDICTION_COLUMNS:
        if column not in rows[0]:
            continue
        if column in BOUND_COLUMNS:
            judged = pos
            ratios = [_number(rows[i][column]) / dfid[i] for i in judged]
            ok = [r <= certified_max for r in ratios]
            target = f"{column} <= {certified_max:g} x measured (resolved positive cells)"
        else:
            judged = sorted(pos + neg)
            ratios = [_number(rows[i][column]) / dfid[i] for i in judged]
            ok = [low <= r <= high for r in ratios]
            target = f"{low:.3g} <= {column} / measured <= {high:g} (resolved cells)"
        targets[column] = TargetResult(
            column=column, target=target, judged=tuple(label[i] for i in judged), ratios=tuple(ratios),
            met=tuple(label[i] for i, g in zip(judged, ok) if g),
            missed=tuple(label[i] for i, g in zip(judged, ok) if not g))
    return BoundCheckSummary(cells=tuple(label), resolved_positive=tuple(label[i] for i in pos),
                             resolved_negative=tuple(label[i] for i in neg),
                             inside_noise=tuple(label[i] for i in inside), targets=targets)
