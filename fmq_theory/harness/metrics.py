"""Image-quality metrics: FID with a bootstrap interval, PSNR and SSIM.

Every function accepts numpy arrays or torch tensors and computes in float64 on the device of
its input (torch tensors stay on their GPU), so the same code serves CPU tests and GPU sweeps.

FID
    The Fréchet distance of the Gaussian fits of two feature sets,
    :func:`fmq_theory.flow.frechet.fid_from_features`; :func:`bootstrap_fid` adds an interval
    for its sampling variability.

PSNR
    ``10 log10(data_range^2 / MSE)`` per image (``+inf`` for identical images).

SSIM (Wang, Bovik, Sheikh & Simoncelli 2004, IEEE TIP 13(4):600-612)
    ``SSIM = (2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))``
    with ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``, ``K1 = 0.01``, ``K2 = 0.03``, ``L = data_range``;
    local statistics under a normalized window, population (biased) variances, evaluated at
    every position where the window fits inside the image ("valid"), averaged over positions
    and channels. SSIM is scale invariant but *not* shift invariant (the luminance term uses
    the means): compute it on images in ``[0, L]`` (uint8 with ``L = 255``, or ``[0, 1]``
    with ``L = 1``), not on model-space images in ``[-1, 1]``.
    :func:`ssim_gaussian` uses the paper's 11x11 Gaussian window with
    sigma = 1.5; :func:`ssim_box` an 11x11 uniform window (the protocol of the reference code of
    arXiv 2511.11418).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fmq_theory.flow.frechet import fid_from_features, frechet_distance, gaussian_fit, to_float64

__all__ = [
    "FIDInterval",
    "ImagePairScores",
    "bootstrap_fid",
    "psnr",
    "ssim_box",
    "ssim_gaussian",
]

SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


# ---------------------------------------------------------------------------------------------
# input checks


def _check_images(a, b, *, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    ta = to_float64(a, name="a")
    tb = to_float64(b, name="b")
    if ta.ndim != 4:
        raise ValueError(f"a must be 4-D (N, C, H, W), got shape {tuple(ta.shape)}")
    if ta.shape != tb.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(ta.shape)} and {tuple(tb.shape)}")
    if ta.shape[0] == 0:
        raise ValueError("a and b must hold at least one image")
    if min(ta.shape[2], ta.shape[3]) < window:
        raise ValueError(f"images must be at least {window}x{window} pixels, got {tuple(ta.shape[2:])}")
    if ta.device != tb.device:
        raise ValueError(f"a and b must be on the same device, got {ta.device} and {tb.device}")
    return ta, tb


def _check_data_range(data_range: float) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)):
        raise TypeError(f"data_range must be a real number, got {type(data_range).__name__}")
    if not (math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be finite and > 0, got {data_range}")
    return float(data_range)


# ---------------------------------------------------------------------------------------------
# FID with a bootstrap interval


@dataclass(frozen=True)
class FIDInterval:
    """FID with a bootstrap interval for its sampling variability at the given sample counts.

    Attributes
    ----------
    value : float
        FID of the full feature sets.
    low, high : float
        Interval ``value - (q_hi - q_med)``, ``value + (q_med - q_lo)`` where ``q_lo, q_med,
        q_hi`` are the ``(1-confidence)/2``, 0.5 and ``(1+confidence)/2`` quantiles of the
        bootstrap FIDs ("basic" bootstrap interval with the resampling shift removed, see
        :func:`bootstrap_fid`). Always contains ``value``; ``low`` is clipped at 0.
    confidence : float
        Nominal coverage, e.g. 0.95.
    bootstrap_shift : float
        ``median(bootstrap FIDs) - value``: the upward shift that resampling with replacement
        adds (duplicated points shrink the effective sample count). Reported, not hidden.
    n_boot : int
        Number of bootstrap replicates.
    seed : int
        Seed of the resampling generator.
    n_a, n_b : int
        Sample counts of the two sets.
    """

    value: float
    low: float
    high: float
    confidence: float
    bootstrap_shift: float
    n_boot: int
    seed: int
    n_a: int
    n_b: int


def bootstrap_fid(feats_a, feats_b, *, n_boot: int = 50, confidence: float = 0.95, seed: int = 0) -> FIDInterval:
    r"""FID with a bootstrap interval (both sets resampled with replacement).

    Each replicate draws ``n_a`` rows of ``feats_a`` and ``n_b`` rows of ``feats_b`` with
    replacement and recomputes the FID. Resampling with replacement shifts every replicate
    upward (a resample has about ``(1 - 1/e) n`` distinct points), so the plain percentile
    interval would typically miss the estimate itself. The interval returned measures the
    *spread* of the estimator around its own median,
    ``[value - (q_hi - q_med), value + (q_med - q_lo)]`` (the basic bootstrap interval of
    Davison & Hinkley 1997, Sec. 5.2, with the shift removed), and the shift is returned as
    ``bootstrap_shift``. It describes the variability of FID at these sample counts, which is
    what comparisons between rows of equal ``n`` need; it is not an interval for the
    infinite-sample FID.

    Parameters
    ----------
    feats_a : array_like, shape (n_a, d)
    feats_b : array_like, shape (n_b, d)
    n_boot : int, keyword-only
        Replicates (>= 2).
    confidence : float, keyword-only
        Nominal coverage in (0, 1).
    seed : int, keyword-only
        Seed of the ``torch.Generator`` that draws the resampling indices (on CPU, so the
        indices are identical on every device).

    Returns
    -------
    FIDInterval
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    if not (isinstance(confidence, float) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be a float in (0, 1), got {confidence!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    value = fid_from_features(feats_a, feats_b)  # checks both sets
    a = to_float64(feats_a, name="feats_a")
    b = to_float64(feats_b, name="feats_b").to(a.device)
    gen = torch.Generator().manual_seed(seed)
    reps = []
    for _ in range(n_boot):
        ia = torch.randint(a.shape[0], (a.shape[0],), generator=gen).to(a.device)
        ib = torch.randint(b.shape[0], (b.shape[0],), generator=gen).to(a.device)
        reps.append(frechet_distance(*gaussian_fit(a[ia]), *gaussian_fit(b[ib])))
    alpha = (1.0 - confidence) / 2.0
    q_lo, q_med, q_hi = np.quantile(np.asarray(reps), [alpha, 0.5, 1.0 - alpha])
    return FIDInterval(
        value=value,
        low=max(value - float(q_hi - q_med), 0.0),
        high=value + float(q_med - q_lo),
        confidence=confidence,
        bootstrap_shift=float(q_med - value),
        n_boot=n_boot,
        seed=seed,
        n_a=int(a.shape[0]),
        n_b=int(b.shape[0]),
    )


# ---------------------------------------------------------------------------------------------
# PSNR and SSIM


@dataclass(frozen=True)
class ImagePairScores:
    """A per-image score between paired images and its mean.

    Attributes
    ----------
    per_image : numpy.ndarray, shape (N,), float64
        One score per image pair.
    mean : float
        Mean of ``per_image`` (``+inf`` if any PSNR is infinite, i.e. an identical pair).
    metric : str
        What was computed, with its parameters, e.g. ``"ssim-gaussian11-sigma1.5"``.
    data_range : float
        The dynamic range ``L`` used.
    """

    per_image: np.ndarray
    mean: float
    metric: str
    data_range: float


def psnr(a, b, *, data_range: float) -> ImagePairScores:
    r"""Peak signal-to-noise ratio per image pair, ``10 log10(L^2 / MSE)``.

    Parameters
    ----------
    a, b : array_like, shape (N, C, H, W)
        Paired images (numpy or torch, any real dtype; computed in float64).
    data_range : float, keyword-only
        ``L``: 255 for uint8 images, 2 for images in [-1, 1], 1 for [0, 1].

    Returns
    -------
    ImagePairScores
        ``per_image[i] = +inf`` where ``a[i] == b[i]`` exactly.
    """
    data_range = _check_data_range(data_range)
    ta, tb = _check_images(a, b, window=1)
    mse = ((ta - tb) ** 2).flatten(1).mean(dim=1)
    values = 10.0 * torch.log10(data_range**2 / mse)  # mse == 0 gives +inf
    per = values.cpu().numpy()
    return ImagePairScores(per_image=per, mean=float(per.mean()), metric="psnr", data_range=data_range)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    r = (size - 1) / 2.0
    x = torch.arange(size, dtype=torch.float64) - r
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def _box_window(size: int) -> torch.Tensor:
    return torch.full((size, size), 1.0 / size**2, dtype=torch.float64)


_SSIM_CHUNK = 512  # images per conv pass: bounds memory at 5 float64 maps per image


def _ssim(ta: torch.Tensor, tb: torch.Tensor, window: torch.Tensor, data_range: float) -> torch.Tensor:
    """Mean SSIM per image with a normalized 2-D window (valid positions, population stats)."""
    return torch.cat([_ssim_chunk(ta[i : i + _SSIM_CHUNK], tb[i : i + _SSIM_CHUNK], window, data_range) for i in range(0, ta.shape[0], _SSIM_CHUNK)])


def _ssim_chunk(ta: torch.Tensor, tb: torch.Tensor, window: torch.Tensor, data_range: float) -> torch.Tensor:
    n, c, h, w = ta.shape
    kernel = window.to(ta.device)[None, None]
    x = ta.reshape(n * c, 1, h, w)
    y = tb.reshape(n * c, 1, h, w)
    # One conv pass for the five local moments.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1).reshape(n * c * 5, 1, h, w)
    moments = torch.nn.functional.conv2d(stack, kernel).reshape(n * c, 5, h - kernel.shape[-2] + 1, w - kernel.shape[-1] + 1)
    mx, my, mxx, myy, mxy = moments.unbind(dim=1)
    vx = mxx - mx * mx
    vy = myy - my * my
    cxy = mxy - mx * my
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return smap.reshape(n, c, -1).mean(dim=(1, 2))


def ssim_gaussian(a, b, *, data_range: float) -> ImagePairScores:
    """SSIM of Wang et al. (2004): 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03.

    Matches ``skimage.metrics.structural_similarity(a, b, data_range=L, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, channel_axis=0)`` per image (skimage truncates its
    Gaussian at 3.5 sigma, i.e. the same 11x11 support, and averages the map over the positions
    where the full window fits).

    Parameters
    ----------
    a, b : array_like, shape (N, C, H, W)
        Paired images with ``H, W >= 11``.
    data_range : float, keyword-only
        ``L`` of the constants ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``.

    Returns
    -------
    ImagePairScores
        Mean SSIM per image (averaged over positions and channels).
    """
    data_range = _check_data_range(data_range)
    ta, tb = _check_images(a, b, window=SSIM_WINDOW)
    per = _ssim(ta, tb, _gaussian_window(SSIM_WINDOW, SSIM_SIGMA), data_range).cpu().numpy()
    return ImagePairScores(per_image=per, mean=float(per.mean()), metric="ssim-gaussian11-sigma1.5", data_range=data_range)


def ssim_box(a, b, *, data_range: float) -> ImagePairScores:
    """SSIM with an 11x11 uniform (box) window: the protocol of the paper's reference code.

    Same constants and population statistics as :func:`ssim_gaussian`; matches
    ``skimage.metrics.structural_similarity(..., win_size=11, gaussian_weights=False,
    use_sample_covariance=False)``. Reported only in the paper-reproduction mode, labelled so.

    Parameters
    ----------
    a, b : array_like, shape (N, C, H, W)
        Paired images with ``H, W >= 11``.
    data_range : float, keyword-only
        Dynamic range ``L``.

    Returns
    -------
    ImagePairScores
    """
    data_range = _check_data_range(data_range)
    ta, tb = _check_images(a, b, window=SSIM_WINDOW)
    per = _ssim(ta, tb, _box_window(SSIM_WINDOW), data_range).cpu().numpy()
    return ImagePairScores(per_image=per, mean=float(per.mean()), metric="ssim-box11", data_range=data_range)
