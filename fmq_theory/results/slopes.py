"""Reading a sweep: degradation slopes per method above the sampling-noise floor.

For each method, fit ``log2(FID_q(b) - FID_fp) = a + s b`` by ordinary least squares over the
bit widths whose degradation lies above the sampling-noise floor, with a Student-t confidence
interval for ``s``. A ``2^(-2b)`` law gives ``s = -2``. The noise floor is twice the median of
``|FID_q - FID_fp|`` over the 8-bit cells of all methods (most 8-bit models are near-lossless,
so their typical spread is the noise of a 10k-sample FID with shared noise; the median ignores
a method that is not converged at 8 bits), unless given.

Rows are those of the sweep table (:data:`fmq_theory.results.schema.SWEEP`), typed or as csv
text.  The constants of the naive chain are estimated by :mod:`fmq_theory.bounds.constants`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from fmq_theory.results.schema import SWEEP

__all__ = ["SlopeFit", "fit_slope", "noise_floor"]


@dataclass(frozen=True)
class SlopeFit:
    """OLS fit of ``log2(delta FID)`` against bits.

    Attributes
    ----------
    method : str
    bits : numpy.ndarray, shape (m,)
        Bit widths used in the fit (degradation above the noise floor).
    log2_dfid : numpy.ndarray, shape (m,)
    slope : float
        Fitted ``s`` (NaN when fewer than 2 points).
    intercept : float
    ci_low, ci_high : float
        ``confidence`` interval for ``s`` (Student t, m - 2 dof; NaN when m < 3).
    confidence : float
    """

    method: str
    bits: np.ndarray
    log2_dfid: np.ndarray
    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    confidence: float


def noise_floor(rows: list[dict], *, column: str = "fid") -> float:
    """Twice the median ``|FID_q - FID_fp|`` over the 8-bit rows (see the module docstring)."""
    rows = [SWEEP.typed(r) for r in rows]
    fp = [r[column] for r in rows if r["method"] == "none" and r[column] is not None]
    if len(fp) != 1:
        raise ValueError(f"rows must hold exactly one full-precision row with {column}, got {len(fp)}")
    eight = [abs(r[column] - fp[0]) for r in rows
             if r["method"] != "none" and r["bits"] == 8 and r[column] is not None]
    if not eight:
        raise ValueError(f"rows hold no 8-bit row with {column}")
    return 2.0 * float(np.median(eight))


def fit_slope(rows: list[dict], *, method: str, column: str = "fid", floor: float | None = None,
              confidence: float = 0.95) -> SlopeFit:
    """Fit the degradation slope of ``method`` over ``rows`` of one dataset (see module doc)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    rows = [SWEEP.typed(r) for r in rows]
    fp = next(r[column] for r in rows if r["method"] == "none")
    floor = noise_floor(rows, column=column) if floor is None else float(floor)
    pts = sorted((r["bits"], r[column] - fp) for r in rows
                 if r["method"] == method and r[column] is not None)
    pts = [(b, d) for b, d in pts if d > floor]
    bits = np.array([b for b, _ in pts], dtype=float)
    y = np.log2(np.array([d for _, d in pts], dtype=float))
    nan = float("nan")
    if len(bits) < 2:
        return SlopeFit(method, bits, y, nan, nan, nan, nan, confidence)
    slope, intercept = np.polyfit(bits, y, 1)
    lo = hi = nan
    if len(bits) >= 3:
        resid = y - (intercept + slope * bits)
        s2 = float(resid @ resid) / (len(bits) - 2)
        se = np.sqrt(s2 / float(((bits - bits.mean()) ** 2).sum()))
        t = stats.t.ppf(0.5 + confidence / 2, len(bits) - 2)
        lo, hi = slope - t * se, slope + t * se
    return SlopeFit(method, bits, y, float(slope), float(intercept), float(lo), float(hi),
                    confidence)
