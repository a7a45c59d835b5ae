r"""Sampled prediction of the FID change from a few paired samples (a control-variate estimate).

The linearised predictions of :mod:`fmq_theory.bounds.prediction` push the weight error
through the tangent of the sampler, which misses by 5-30x on some cells.  This module predicts
the change *by sampling* instead, and cheaply: the full-precision model's feature moments
:math:`(\mu, \Sigma)` come from its ``N`` samples (computed once per model), and only the
*change* of the moments is estimated, from ``M << N`` pairs of full-precision and quantized
samples started from the same noise (independent of the noise the FID is measured on):

.. math::

    \hat\mu_q = \mu + \overline{\phi(y) - \phi(x)}, \qquad
    \hat\Sigma_q = \bigl[\Sigma + \widehat{\mathrm{Cov}}\,\phi(y) - \widehat{\mathrm{Cov}}\,\phi(x)\bigr]_+,

.. math::

    \widehat{\Delta \mathrm{FID}} = d^2_F(\hat\mu_q, \hat\Sigma_q;\ \mu_r, \Sigma_r)
                                   - d^2_F(\mu, \Sigma;\ \mu_r, \Sigma_r),

where :math:`x_j, y_j` are the full-precision and quantized samples of noise :math:`z_j`,
:math:`\phi` the feature network, :math:`(\mu_r, \Sigma_r)` the real reference moments,
:math:`d_F^2` the squared Fréchet distance and :math:`[\cdot]_+` the projection onto PSD
matrices (negative eigenvalues set to 0).  Because :math:`\phi(x_j)` and :math:`\phi(y_j)`
are strongly correlated, the paired differences have a far smaller variance than the
quantized moments themselves (the control-variate principle; Glasserman, *Monte Carlo
Methods in Financial Engineering*, 2003, §4.1), so ``M`` of a few hundred suffices where a
direct FID needs thousands.  The interval is the basic (reflected percentile) bootstrap over
the ``M`` pairs (Davison & Hinkley, *Bootstrap Methods*, 1997, §5.2), the same construction as
:func:`fmq_theory.bounds.certify_fid`.  It is a prediction with a Monte Carlo error bar, not a
bound.

**Bias.**  The estimate is not unbiased: the noise of :math:`\widehat{\mathrm{Cov}}\,\phi(y) -
\widehat{\mathrm{Cov}}\,\phi(x)` enters the Fréchet distance through the concave
:math:`\operatorname{tr}(\cdot)^{1/2}` and the projection :math:`[\cdot]_+`, both of which push
it up, and that noise grows with the change itself and with the feature dimension against
``M`` (InceptionV3's 2,048 features against 1,000 pairs).  The result carries the bootstrap
estimate of that bias (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, §10.2),

.. math::

    \widehat{b} = \frac{1}{B} \sum_{k=1}^{B} \widehat{\Delta \mathrm{FID}}{}^{*}_{k}
                  - \widehat{\Delta \mathrm{FID}},

over the same ``B = n_boot`` replicates as the interval, and the corrected
:attr:`SampledDFID.debiased` :math:`= \widehat{\Delta \mathrm{FID}} - \widehat b`.  The
correction removes the :math:`1/M` term of a bias smooth in :math:`1/M`; it is partial: on the
committed DiT with fewer pairs than features it removed part of the excess, not all of it
(``scripts/sampled_bias_dit_cpu.py``; the plan page, "Predicted against measured").

**Split-half extrapolation.**  A second correction needs no resampling: the pairs are split at
random into two disjoint halves of :math:`h = \lfloor M/2 \rfloor`, each half gives a
prediction :math:`\hat v_{h,1}, \hat v_{h,2}` with mean :math:`\bar v_h`, and

.. math::

    \hat v_{\mathrm{ex}} = \frac{M\,\widehat{\Delta \mathrm{FID}} - h\,\bar v_h}{M - h}
    \quad (= 2\,\widehat{\Delta \mathrm{FID}} - \bar v_h \text{ for even } M)

(:attr:`SampledDFID.extrapolated`) is the two-point extrapolation in :math:`1/M` (Richardson;
Chong & Forsyth, "Effectively Unbiased FID and Inception Score and where to find them", CVPR
2020, extrapolate the FID linearly in :math:`1/N`).  Where the Fréchet distance is quadratic in
the estimated moments it is exactly unbiased: it equals the first-order term plus the cross
term of the two independent halves, in which neither half's noise is squared.  It costs two
evaluations of the distance.

**Paired difference.**  Both corrections above estimate the bias of the control variate; in
high dimension with few pairs (:math:`M < d`) neither removes it: the rank-:math:`2M` noise of
:math:`\widehat{\mathrm{Cov}}\,\phi(y) - \widehat{\mathrm{Cov}}\,\phi(x)` added to the
full-rank :math:`\Sigma` is not cancelled by anything.  The paired difference of the pairs' own
FIDs,

.. math::

    \widehat{\Delta}_{\mathrm{pair}} = d^2_F(\hat\mu_y, \hat\Sigma_y;\ \mu_r, \Sigma_r)
                                   - d^2_F(\hat\mu_x, \hat\Sigma_x;\ \mu_r, \Sigma_r),

with :math:`(\hat\mu_x, \hat\Sigma_x)` and :math:`(\hat\mu_y, \hat\Sigma_y)` the moments of the
``M`` full-precision and quantized pair features alone (:attr:`SampledDFID.paired`), makes the
two terms share their noise instead: each FID of ``M`` samples is biased upwards by about
:math:`c/M`, with :math:`c` a function of the law (Chong & Forsyth 2020), so the difference is
biased by :math:`(c_q - c_{fp})/M`, which is small where the two laws are near, that is where
the change is small and the control variate's excess is largest against it.  Its variance is
small for the same reason as the control variate's: the terms are of the same noise.  Where the
quantized law's spread differs much, :math:`c_q - c_{fp}` is not small; its split-half
extrapolation in :math:`1/M` (:attr:`SampledDFID.paired_extrapolated`) removes that term.  On
synthetic features neither estimator errs less than the other in every case (tests); on the
DiT's InceptionV3 features (2,048 against 1,000 pairs) the paired difference came far nearer
the measured change (``scripts/inception_bias_dit_cpu.py``; the plan page).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> real = rng.normal(size=(4000, 3))
>>> fp = rng.normal(size=(4000, 3))
>>> x = rng.normal(size=(400, 3))
>>> y = x + np.array([0.5, 0.0, 0.0])  # the quantized model shifts every sample's feature
>>> mu, cov = real.mean(0), np.cov(real, rowvar=False)
>>> pred = sampled_dfid(fp, x, y, reference_mean=mu, reference_cov=cov, n_boot=50)
>>> round(pred.value, 1)  # the mean moves by 0.5: the FID grows by about 0.5**2
0.3
>>> pred.low <= pred.value <= pred.high
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fmq_theory.flow.frechet import FrechetToReference, gaussian_fit, to_float64

__all__ = ["SampledDFID", "sampled_dfid"]


@dataclass(frozen=True)
class SampledDFID:
    """A sampled prediction of FID_q - FID_fp (see the module docstring).

    Attributes
    ----------
    value : float
        The predicted change.
    low, high : float
        Basic bootstrap interval over the pairs at ``level``.
    level : float
    n_pairs : int
        Pairs ``M`` of full-precision and quantized samples.
    n_fp : int
        Full-precision samples ``N`` behind :math:`(\\mu, \\Sigma)`.
    n_boot : int
        Bootstrap replicates.
    bias : float
        The bootstrap estimate of the estimate's bias: the replicates' mean less :attr:`value`.
    extrapolated : float
        The split-half extrapolation in :math:`1/M` (module docstring): for even ``M``, twice
        :attr:`value` less the mean prediction of two disjoint random halves of the pairs.
    paired : float
        The paired difference of the pairs' own FIDs, :math:`d_F^2(\\hat\\mu_y, \\hat\\Sigma_y) -
        d_F^2(\\hat\\mu_x, \\hat\\Sigma_x)` against the reference (module docstring, "Paired
        difference"); it does not use the ``N`` full-precision samples.
    paired_low, paired_high : float
        Its basic bootstrap interval at ``level``, from the same replicates as ``low, high``.
    paired_extrapolated : float
        Its split-half extrapolation in :math:`1/M`, from the same two halves as
        :attr:`extrapolated`.
    """

    value: float
    low: float
    high: float
    level: float
    n_pairs: int
    n_fp: int
    n_boot: int
    bias: float
    extrapolated: float
    paired: float
    paired_low: float
    paired_high: float
    paired_extrapolated: float

    @property
    def debiased(self) -> float:
        """:attr:`value` less its bootstrap bias estimate :attr:`bias`."""
        return self.value - self.bias


def _psd(s: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(0.5 * (s + s.T))
    return (v * w.clamp(min=0.0)) @ v.T


def _predicted_moments(mu, cov, a, b):
    ma, sa = gaussian_fit(a)
    mb, sb = gaussian_fit(b)
    return mu + (mb - ma), _psd(cov + (sb - sa))


def sampled_dfid(features_fp, pairs_fp, pairs_q, *, reference_mean, reference_cov, n_boot: int = 100,
                 level: float = 0.95, seed: int = 0) -> SampledDFID:
    """Predict FID_q - FID_fp from ``M`` paired samples and the full-precision moments.

    Parameters
    ----------
    features_fp : array_like, shape (N, d)
        Features of the full-precision model's samples (the FID's own, computed once).
    pairs_fp, pairs_q : array_like, shape (M, d)
        Features of full-precision and quantized samples, row ``j`` of both from the same noise.
    reference_mean : array_like, shape (d,)
    reference_cov : array_like, shape (d, d)
        Moments of the real reference features.
    n_boot : int
        Bootstrap replicates over the pairs (``>= 2``; each costs one ``d x d`` eigenvalue
        problem and one projection).
    level : float
        Level of the interval, in (0, 1).
    seed : int
        Seed of the resampling indices.

    Returns
    -------
    SampledDFID

    Raises
    ------
    ValueError
        Shapes that do not match, fewer than 2 pairs or samples, non-finite features, or
        ``n_boot``/``level`` out of range (naming the argument).
    """
    fp = to_float64(features_fp, name="features_fp")
    a = to_float64(pairs_fp, name="pairs_fp").to(fp.device)
    b = to_float64(pairs_q, name="pairs_q").to(fp.device)
    if fp.ndim != 2 or fp.shape[0] < 2:
        raise ValueError(f"features_fp must be an (N >= 2, d) array, got shape {tuple(fp.shape)}")
    d = fp.shape[1]
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] < 2 or a.shape[1] != d:
        raise ValueError(f"pairs_fp and pairs_q must be paired (M >= 2, {d}) arrays, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot={n_boot!r} must be an int >= 2")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} must lie in (0, 1)")
    mu_r = to_float64(reference_mean, name="reference_mean").to(fp.device)
    cov_r = to_float64(reference_cov, name="reference_cov").to(fp.device)
    if tuple(mu_r.shape) != (d,) or tuple(cov_r.shape) != (d, d):
        raise ValueError(f"reference_mean and reference_cov must have shapes ({d},) and ({d}, {d}), got "
                         f"{tuple(mu_r.shape)} and {tuple(cov_r.shape)}")
    to_ref = FrechetToReference(mu_r, cov_r)
    mu, cov = gaussian_fit(fp)
    fid_fp = to_ref(mu, cov)

    def both(i):
        """The control-variate prediction and the paired difference of the pairs ``i``."""
        x, y = (a, b) if i is None else (a[i], b[i])
        return to_ref(*_predicted_moments(mu, cov, x, y)) - fid_fp, to_ref(*gaussian_fit(y)) - to_ref(*gaussian_fit(x))

    value, paired = both(None)
    m = a.shape[0]
    gen = torch.Generator().manual_seed(seed)
    reps = np.asarray([both(torch.randint(m, (m,), generator=gen).to(fp.device)) for _ in range(n_boot)])
    alpha = (1.0 - level) / 2.0
    q_lo, q_med, q_hi = np.quantile(reps, [alpha, 0.5, 1.0 - alpha], axis=0)
    low, high = value - float(q_hi[0] - q_med[0]), value + float(q_med[0] - q_lo[0])
    paired_low, paired_high = paired - float(q_hi[1] - q_med[1]), paired + float(q_med[1] - q_lo[1])
    bias = float(reps[:, 0].mean()) - value
    # the split after the bootstrap, from the same generator: the replicates (and so the interval and
    # bias) are those of the seed as before; a half of one pair has no covariance, so M < 4
    # extrapolates nothing and keeps the plain values
    h = m // 2
    perm = torch.randperm(m, generator=gen).to(fp.device)
    halves = np.asarray([both(i) for i in (perm[:h], perm[h:2 * h])]) if h >= 2 else np.asarray([[value, paired]] * 2)
    extrapolated, paired_extrapolated = (m * np.array([value, paired]) - h * halves.mean(axis=0)) / (m - h)
    found = (value, low, high, bias, extrapolated, paired, paired_low, paired_high, paired_extrapolated)
    if not all(math.isfinite(v) for v in found):
        raise ValueError("the prediction is not finite: check the features for overflow")
    return SampledDFID(value=value, low=low, high=high, level=level, n_pairs=m, n_fp=int(fp.shape[0]),
                       n_boot=n_boot, bias=bias, extrapolated=float(extrapolated), paired=paired,
                       paired_low=paired_low, paired_high=paired_high,
                       paired_extrapolated=float(paired_extrapolated))
