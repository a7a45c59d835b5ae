"""Regression: cell moments of a generalized Gaussian next to its cusp at 0.

For non-integer beta the density exp(-|z|^beta) is not analytic at 0, so Gauss-Legendre
must never integrate up to 0.  The law-level Lloyd-Max solver for beta = 1/2, b = 2 ends
with a middle threshold of -8.3e-17 (0 by symmetry, off by rounding); that once made the
cell (t, -8.3e-17] count as "not touching 0", and its quadrature lost 1.6e-4 relative of
the distortion (found by benchmarks/rho_reference.py).
"""

import mpmath as mp
import pytest

from fmq_theory.theory.distortion import law_quantizer
from fmq_theory.theory.laws import make_law


def gen_gaussian_pdf(x, *, beta, scale):
    """Generalized Gaussian density in mpmath (independent of fmq_theory.theory.laws)."""
    return beta / (2 * scale * mp.gamma(1 / beta)) * mp.e ** (-((abs(x) / scale) ** beta))


@pytest.mark.parametrize("end", [-8.3e-17, 0.0, 3e-13])
def test_cell_next_to_cusp_matches_mpmath(end):
    law = make_law("gen-gaussian", beta=0.5)
    q = law_quantizer(law, method="lloyd_max", bits=2)
    a, center = float(q.thresholds[0]), float(q.levels[1])  # the cell whose quadrature failed
    got = [float(v) for v in law.cell_moments(a, end, center)]
    with mp.workdps(30):
        beta, scale = mp.mpf(1) / 2, mp.mpf(law.scale)
        pieces = [a, 0, end] if end > 0 else [a, end]
        want = [mp.quad(lambda x, j=j: (x - center) ** j * gen_gaussian_pdf(x, beta=beta, scale=scale), pieces)
                for j in range(3)]
    width = end - a
    for j, (g, w) in enumerate(zip(got, want)):
        # cell_moments' contract: ~1e-13 relative per cell, on the scale m0 * width^j (m1 about
        # the centroid is ~0, so a purely relative test is ill-posed); 1e-11 leaves room for
        # the float64 inputs.  The failure was 1e-3 relative in m0.
        assert abs(g - float(w)) <= 1e-11 * (abs(float(w)) + float(want[0]) * width**j)
