"""rho(b): ratios, intervals and the crossover bit."""

import numpy as np
import pytest

from fmq_theory.theory.distortion import distortion
from fmq_theory.theory.laws import make_law
from fmq_theory.theory.rho import PAPER_RANGE, Crossover, RhoRow, crossover, rho_table


def test_law_level_rho_is_the_ratio_of_exact_distortions():
    law = make_law("laplace")
    rows = rho_table(law, bits=[2, 3], n=None, method="equal_mass", against="lloyd_max")
    for row in rows:
        em = distortion(law, method="equal_mass", bits=row.bits).distortion
        lm = distortion(law, method="lloyd_max", bits=row.bits).distortion
        assert row.rho == pytest.approx(em / lm, rel=1e-15)
        assert row.rho > 1 and row.interval is None and row.how == "exact / exact"


def test_finite_n_rho_carries_the_monte_carlo_interval():
    law = make_law("gaussian")
    (row,) = rho_table(law, bits=[3], n=2304, replicates=40, seed=5)
    assert row.how == "monte-carlo / finite-n exact"
    assert row.replicates == 40 and row.seed == 5
    ref = distortion(law, method="uniform_minmax", bits=3, n=2304).distortion
    assert row.distortion_reference == ref
    em = distortion(law, method="equal_mass", bits=3, n=2304, replicates=40, seed=5)
    lo, hi = row.interval
    assert lo == pytest.approx(em.interval[0] / ref, rel=1e-12)
    assert hi == pytest.approx(em.interval[1] / ref, rel=1e-12)


def _rows(values, start=2):
    return [RhoRow(law="x", params={}, method="a", against="b", bits=start + i, n=None, rho=v,
                   distortion_method=v, distortion_reference=1.0, how="exact / exact", interval=None,
                   replicates=None, seed=None) for i, v in enumerate(values)]


def test_crossover_interpolates_in_log_rho():
    cross = crossover(_rows([0.25, 0.5, 2.0]))
    # log rho goes from log 0.5 to log 2 between b = 3 and 4: it is 0 half-way
    assert cross == Crossover(first_bit=4, bits=3.5)
    assert crossover(_rows([0.1, 0.2])) == Crossover(first_bit=None, bits=None)
    assert crossover(_rows([1.5, 3.0])) == Crossover(first_bit=2, bits=2.0)


def test_paper_range_flag():
    rows = _rows([0.2, 0.3, 0.45])
    assert [r.in_paper_range for r in rows] == [False, True, False]
    assert PAPER_RANGE == (0.25, 0.4)


def test_gaussian_rho_rises_through_one_at_n_2304():
    """Exact reference, Monte Carlo numerator: rho < 1 at b = 2 and > 1 at b = 5."""
    rows = rho_table(make_law("gaussian"), bits=[2, 5], n=2304, replicates=50, seed=0)
    assert rows[0].interval[1] < 1 < rows[1].interval[0]
    assert np.isfinite([r.rho for r in rows]).all()
