r"""rho(b): the distortion of one quantizer relative to another on the same weights.

.. math::

    \rho(b) = \frac{D_{\text{method}}(b)}{D_{\text{reference}}(b)},

by default ``equal_mass`` (the paper's OT quantizer) against ``uniform_minmax`` (the paper's
uniform quantizer), per weight law and per tensor size ``n`` (``None``: the law itself, only
for references defined there).  The paper's claim 3 says ``rho ~ 0.25-0.4 under realistic
weight tail assumptions``; if both distortions were ``C 2^(-2b)``, rho would be the ratio of
the front constants and independent of ``b``.  Computing it per ``b`` shows where that holds.

Intervals: a Monte Carlo (or quadrature) distortion carries an interval; the interval of
rho combines the relative half-widths in quadrature, which is conservative when both come
from the same samples (common random numbers correlate them positively).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmq_theory import __version__
from fmq_theory.theory._checks import check_bit_list
from fmq_theory.theory.distortion import distortions
from fmq_theory.vocab import METHODS

#: The paper's range for rho (claim 3).
PAPER_RANGE = (0.25, 0.4)


@dataclass(frozen=True)
class RhoRow:
    """rho at one bit width.

    Attributes
    ----------
    law : str
    params : dict
        Every law parameter.
    method, against : str
        Numerator and reference quantizers.
    bits : int
    n : int or None
        Weights per tensor; ``None`` for the law itself.
    rho : float
        ``distortion_method / distortion_reference``.
    distortion_method, distortion_reference : float
    how : str
        ``"<how of method> / <how of reference>"``.
    interval : tuple of float or None
        Interval of rho when either distortion has one.
    replicates : int or None
        Monte Carlo replicates, if any part is Monte Carlo.
    seed : int or None
        Monte Carlo seed, if any part is Monte Carlo.
    version : str
    """

    law: str
    params: dict
    method: str
    against: str
    bits: int
    n: int | None
    rho: float
    distortion_method: float
    distortion_reference: float
    how: str
    interval: tuple | None
    replicates: int | None
    seed: int | None
    version: str = __version__

    @property
    def in_paper_range(self) -> bool:
        """Whether rho lies in the paper's 0.25-0.4 (interval ignored)."""
        return PAPER_RANGE[0] <= self.rho <= PAPER_RANGE[1]


def _relative_half_width(d):
    if d.interval is None:
        return 0.0
    return 0.5 * (d.interval[1] - d.interval[0]) / d.distortion


def rho_table(law, *, bits, n: int | None = None, method: str = "equal_mass",
              against: str = "uniform_minmax", replicates: int | None = None, seed: int = 0,
              quad_rtol: float = 1e-6) -> tuple:
    """rho(b) for each entry of ``bits`` (Monte Carlo parts share their samples).

    Parameters
    ----------
    law : ContinuousLaw
    bits : sequence of int
    n : int, optional
        Weights per tensor (``None``: the law itself; then both methods must be defined on
        the law, see :data:`fmq_theory.vocab.LAW_METHODS`).
    method, against : str
        Numerator and reference quantizers.
    replicates, seed, quad_rtol :
        Monte Carlo settings and finite-n quadrature tolerance (see
        :func:`fmq_theory.theory.distortion.distortions`).

    Returns
    -------
    tuple of RhoRow
    """
    bits = check_bit_list(bits)
    if against not in METHODS:
        raise ValueError(f"against={against!r} is not one of {', '.join(METHODS)}")
    kw = dict(bits=bits, n=n, replicates=replicates, seed=seed, quad_rtol=quad_rtol)
    num = distortions(law, method=method, **kw)
    den = distortions(law, method=against, **kw)
    rows = []
    for a, b in zip(num, den):
        if b.distortion == 0:
            raise ValueError(
                f"against={against!r} has distortion 0 at bits={b.bits}, n={n}: every weight is one of "
                "its levels, so rho is undefined; use a larger n")
        rho = a.distortion / b.distortion
        rel = float(np.hypot(_relative_half_width(a), _relative_half_width(b)))
        mc = [d for d in (a, b) if d.how == "monte-carlo"]
        rows.append(RhoRow(law=a.law, params=a.params, method=method, against=against, bits=a.bits, n=n,
                           rho=rho, distortion_method=a.distortion, distortion_reference=b.distortion,
                           how=f"{a.how} / {b.how}",
                           interval=(rho * (1 - rel), rho * (1 + rel)) if rel > 0 else None,
                           replicates=mc[0].replicates if mc else None, seed=mc[0].seed if mc else None))
    return tuple(rows)


@dataclass(frozen=True)
class Crossover:
    """Where rho(b) first reaches 1 over the computed bit widths.

    Attributes
    ----------
    first_bit : int or None
        Smallest computed ``b`` with ``rho(b) >= 1``; ``None`` if rho < 1 throughout.
    bits : float or None
        Crossing point interpolated linearly in ``log rho`` between ``first_bit - 1`` and
        ``first_bit``; equals ``first_bit`` when rho >= 1 already at the first computed ``b``.
    """

    first_bit: int | None
    bits: float | None


def crossover(rows) -> Crossover:
    """The bit width where rho reaches 1 (see :class:`Crossover`).

    Parameters
    ----------
    rows : sequence of RhoRow
        Consecutive bit widths of one law, n and pair of methods.
    """
    rows = sorted(rows, key=lambda r: r.bits)
    for i, row in enumerate(rows):
        if row.rho >= 1.0:
            if i == 0 or rows[i - 1].bits != row.bits - 1:
                return Crossover(first_bit=row.bits, bits=float(row.bits))
            lo, hi = np.log(rows[i - 1].rho), np.log(row.rho)
            return Crossover(first_bit=row.bits, bits=float(row.bits - 1 + (0.0 - lo) / (hi - lo)))
    return Crossover(first_bit=None, bits=None)


__all__ = ["PAPER_RANGE", "RhoRow", "rho_table", "Crossover", "crossover"]
