r"""Fitting the weight laws of :mod:`fmq_theory.theory.laws` to real weights.

:func:`fit_laws` fits every family by maximum likelihood, scores it with the
Kolmogorov-Smirnov and Anderson-Darling statistics and ranks the families by BIC (AIC is
reported too); :func:`hill_tail_index` estimates the tail index of ``|x - median|`` with
Hill's estimator, the evidence for or against a heavy (power-law) tail.

References
----------
.. [1] B. M. Hill, "A simple general approach to inference about the tail of a
   distribution", *Ann. Statist.* 3 (1975) 1163-1174.
.. [2] T. W. Anderson, D. A. Darling, "A test of goodness of fit", *JASA* 49 (1954) 765-769.
.. [3] G. Schwarz, "Estimating the dimension of a model", *Ann. Statist.* 6 (1978) 461-464.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats

from fmq_theory.theory.laws import (FAMILIES, ContinuousLaw, Gaussian, GenGaussian, Laplace, StudentT,
                                   check_location_scale)
from fmq_theory.vocab import LAWS

@dataclass(frozen=True)
class HillEstimate:
    """Hill estimate of the tail index of ``|x - median|``.

    Attributes
    ----------
    tail_index : float
        ``alpha_hat = 1 / mean(log(y_(i) / y_(k+1)))`` over the ``k`` largest deviations
        (a Student-t(nu) law has tail index nu; Gaussian/Laplace laws give large values that
        grow with ``k``).
    stderr : float
        Asymptotic standard error ``alpha_hat / sqrt(k)``.
    k : int
        Number of upper order statistics used.
    threshold : float
        ``y_(k+1)``, the deviation above which the tail is fitted.
    n : int
        Sample size.
    """

    tail_index: float
    stderr: float
    k: int
    threshold: float
    n: int


def hill_tail_index(x, *, k: int | None = None) -> HillEstimate:
    """Hill estimator of the tail index of the absolute deviations from the median (Hill 1975).

    Parameters
    ----------
    x : array_like
        The sample (any shape; flattened).
    k : int, optional
        Number of top order statistics; default ``floor(sqrt(n))``.
    """
    x = _as_sample(x, "x")
    y = np.sort(np.abs(x - np.median(x)))[::-1]
    n = y.size
    if k is None:
        k = int(np.sqrt(n))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < n:
        raise ValueError(f"k={k!r} must be an integer with 1 <= k < n = {n}")
    threshold = y[k]
    if threshold <= 0:
        raise ValueError(f"k={k!r} reaches zero deviations; use a smaller k")
    xi = float(np.mean(np.log(y[:k] / threshold)))
    alpha = 1.0 / xi
    return HillEstimate(tail_index=alpha, stderr=alpha / np.sqrt(k), k=int(k), threshold=float(threshold), n=n)


@dataclass(frozen=True)
class LawFit:
    """Maximum-likelihood fit of one family to a sample.

    Attributes
    ----------
    family : str
        One of :data:`fmq_theory.vocab.LAWS`.
    law : ContinuousLaw
        The fitted law (``loc`` and ``scale`` free, plus the shape).
    loglik : float
        Maximized log-likelihood.
    n_params : int
        Number of fitted parameters.
    aic, bic : float
        ``2 k - 2 loglik`` and ``k log n - 2 loglik``.
    ks_statistic : float
        Kolmogorov-Smirnov distance between the sample and the fitted cdf.
    ad_statistic : float
        Anderson-Darling ``A^2`` of the sample against the fitted cdf (weights the tails).
    """

    family: str
    law: ContinuousLaw
    loglik: float
    n_params: int
    aic: float
    bic: float
    ks_statistic: float
    ad_statistic: float


@dataclass(frozen=True)
class FitReport:
    """Fits of every family to one sample, with model selection and the tail index.

    Attributes
    ----------
    n : int
        Sample size.
    fits : tuple of LawFit
        One fit per family, sorted by BIC (best first).
    selected : str
        Family with the smallest BIC.
    hill : HillEstimate
        Tail index of ``|x - median|``.
    """

    n: int
    fits: tuple
    selected: str
    hill: HillEstimate = field(repr=False)

    def fit(self, family: str) -> LawFit:
        """The fit of ``family``."""
        for f in self.fits:
            if f.family == family:
                return f
        raise ValueError(f"family={family!r} was not fitted; fitted: {[f.family for f in self.fits]}")


def _as_sample(x, name):
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size < 3:
        raise ValueError(f"{name} has {arr.size} values; at least 3 are needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def _mle(family, x):
    """Return the fitted law for ``family`` by maximum likelihood."""
    med = float(np.median(x))
    if family == "gaussian":
        return Gaussian(loc=float(np.mean(x)), scale=float(np.std(x)))
    if family == "laplace":
        return Laplace(loc=med, scale=float(np.mean(np.abs(x - med))))
    mad = float(np.median(np.abs(x - med))) or float(np.std(x)) or 1.0
    if family == "student-t":
        def nll(p):
            nu, loc, s = np.exp(p[0]), p[1], np.exp(p[2])
            z2 = ((x - loc) / s) ** 2
            const = special.gammaln(0.5 * (nu + 1)) - special.gammaln(0.5 * nu) - 0.5 * np.log(nu * np.pi) - np.log(s)
            return -(x.size * const - 0.5 * (nu + 1) * np.sum(np.log1p(z2 / nu))) / x.size

        start = np.array([np.log(5.0), med, np.log(mad / 0.7)])
        res = optimize.minimize(nll, start, method="Nelder-Mead",
                                options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 4000})
        nu = float(np.exp(res.x[0]))
        return StudentT(nu=nu, loc=float(res.x[1]), scale=float(np.exp(res.x[2])))

    def nll(p):
        beta, loc, s = np.exp(p[0]), p[1], np.exp(p[2])
        const = np.log(0.5 * beta) - special.gammaln(1.0 / beta) - np.log(s)
        return -(x.size * const - np.sum(np.abs((x - loc) / s) ** beta)) / x.size

    start = np.array([np.log(2.0), med, np.log(np.std(x) * np.sqrt(2.0))])
    res = optimize.minimize(nll, start, method="Nelder-Mead",
                            options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 4000})
    return GenGaussian(beta=float(np.exp(res.x[0])), loc=float(res.x[1]), scale=float(np.exp(res.x[2])))


def _anderson_darling(law, xs):
    n = xs.size
    log_cdf = np.log(np.maximum(law.cdf(xs), 1e-300))
    log_sf = np.log(np.maximum(law.sf(xs), 1e-300))
    i = np.arange(1, n + 1)
    return float(-n - np.sum((2 * i - 1) * (log_cdf + log_sf[::-1])) / n)


def fit_laws(x, *, families=LAWS) -> FitReport:
    """Fit every family to the sample ``x`` by maximum likelihood and select by BIC.

    Parameters
    ----------
    x : array_like
        Weights of a tensor (any shape, flattened; a CPU torch tensor works via ``__array__``).
    families : sequence of str
        Families to fit, among :data:`fmq_theory.vocab.LAWS`.

    Returns
    -------
    FitReport
        Frozen; ``fits`` sorted by BIC.  KS/AD statistics are computed against the fitted
        law, so their classical p-values (for a fully specified law) would be optimistic and
        are not reported.
    """
    xs = np.sort(_as_sample(x, "x"))
    peak = float(np.max(np.abs(xs)))  # the moments of xs / peak cannot overflow
    std = peak * float(np.std(xs / peak)) if peak else 0.0
    check_location_scale(std, peak * float(np.mean(xs / peak)) if peak else 0.0, std_name="x",
                         loc_name="the mean of x")
    if len(families) == 0:
        raise ValueError(f"families={families!r} is empty; name at least one of {', '.join(LAWS)}")
    for fam in families:
        if fam not in FAMILIES:
            raise ValueError(f"families contains {fam!r}, not one of {', '.join(LAWS)}")
    n = xs.size
    fits = []
    for fam in families:
        law = _mle(fam, xs)
        loglik = float(np.sum(law.logpdf(xs)))
        k = 2 if fam in ("gaussian", "laplace") else 3
        ks = float(stats.kstest(xs, law.cdf).statistic)
        fits.append(LawFit(family=fam, law=law, loglik=loglik, n_params=k, aic=2 * k - 2 * loglik,
                           bic=k * np.log(n) - 2 * loglik, ks_statistic=ks,
                           ad_statistic=_anderson_darling(law, xs)))
    fits.sort(key=lambda f: f.bic)
    return FitReport(n=n, fits=tuple(fits), selected=fits[0].family, hill=hill_tail_index(xs))


__all__ = ["HillEstimate", "hill_tail_index", "LawFit", "FitReport", "fit_laws"]
