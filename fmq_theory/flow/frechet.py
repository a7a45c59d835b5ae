"""Gaussian moment fits and the Fréchet distance between them (FID), in torch.

Every function accepts numpy arrays or torch tensors and computes in float64 on the device of
its input (torch tensors stay on their GPU), so the same code serves CPU tests, GPU sweeps
and the bounds.  The torch-free twin used by the theory is
:func:`fmq_theory.theory.fid_chain.frechet_distance`; ``tests/test_frechet_twins.py`` checks
that the two agree.

Gaussian fit
    ``mu = mean_i x_i``, ``Sigma = sum_i (x_i - mu)(x_i - mu)^T / (n - 1)`` (unbiased, as
    ``numpy.cov`` and the reference FID code).

Fréchet distance (Dowson & Landau 1982; FID: Heusel et al. 2017)
    ``FD^2 = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1^{1/2} S2 S1^{1/2})^{1/2}``.
    The matrix square root is taken of the symmetric PSD matrix ``S1^{1/2} S2 S1^{1/2}`` by
    eigendecomposition (negative round-off eigenvalues clipped to zero), which is stable where
    ``scipy.linalg.sqrtm(S1 @ S2)`` of the non-symmetric product can return complex noise.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["FrechetToReference", "fid_from_features", "frechet_distance", "gaussian_fit", "to_float64"]


def to_float64(x, *, name: str) -> torch.Tensor:
    """``x`` as a float64 torch tensor on its own device; reject non-numeric, NaN or inf.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        Real (integer or floating) values.
    name : str
        Named in the error messages.

    Returns
    -------
    torch.Tensor
        Detached, float64.

    Examples
    --------
    >>> to_float64(np.arange(3), name="x")
    tensor([0., 1., 2.], dtype=torch.float64)
    """
    if isinstance(x, np.ndarray):
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise TypeError(f"{name} must have a real numeric dtype, got {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, torch.Tensor):
        if x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{name} must have a real numeric dtype, got {x.dtype}")
        t = x.detach()
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")
    t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _features(x, *, name: str) -> torch.Tensor:
    t = to_float64(x, name=name)
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {tuple(t.shape)}")
    if t.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples for a covariance, got {t.shape[0]}")
    return t


def _fit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu = x.mean(dim=0)
    xc = x - mu
    return mu, (xc.T @ xc) / (x.shape[0] - 1)


def gaussian_fit(features) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean and unbiased covariance of a feature set (the Gaussian moment match).

    Parameters
    ----------
    features : array_like, shape (n, d)
        One feature vector per row; ``n >= 2``.

    Returns
    -------
    mu : torch.Tensor, shape (d,), float64
        :math:`\bar x = \frac1n\sum_i x_i`.
    sigma : torch.Tensor, shape (d, d), float64
        :math:`\frac{1}{n-1}\sum_i (x_i-\bar x)(x_i-\bar x)^\top` (as ``numpy.cov``, the
        convention of the reference FID code).  Both on the device of ``features``.

    Examples
    --------
    >>> mu, sigma = gaussian_fit(np.array([[0.0, 1.0], [2.0, 1.0]]))
    >>> mu, sigma
    (tensor([1., 1.], dtype=torch.float64), tensor([[2., 0.],
            [0., 0.]], dtype=torch.float64))
    """
    return _fit(_features(features, name="features"))


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix (negative round-off clipped to 0)."""
    s = 0.5 * (s + s.T)
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp(min=0.0).sqrt()) @ v.T


def _frechet_rooted(r1, mu1, s1, mu2, s2) -> float:
    """:func:`_frechet` with ``r1`` the symmetric root of ``s1`` given."""
    m = r1 @ s2 @ r1
    m = 0.5 * (m + m.T)
    trace_sqrt = torch.linalg.eigvalsh(m).clamp(min=0.0).sqrt().sum()
    diff = mu1 - mu2
    value = diff @ diff + torch.trace(s1) + torch.trace(s2) - 2.0 * trace_sqrt
    # The exact value is >= 0; round-off can leave a tiny negative number.
    return max(float(value), 0.0)


def _frechet(mu1, s1, mu2, s2) -> float:
    return _frechet_rooted(_psd_sqrt(s1), mu1, s1, mu2, s2)


class FrechetToReference:
    """Squared Fréchet distance of many Gaussians to one fixed reference, its root taken once.

    ``FrechetToReference(mean, cov)(mu, sigma)`` equals ``frechet_distance(mean, cov, mu,
    sigma)`` (the same formula with the reference as the first Gaussian) while costing one
    symmetric eigenvalue problem per call instead of two: for bootstrap replicates against
    the real data's moments.  Inputs are float64 tensors on one device; they are not checked
    (use :func:`frechet_distance` for untrusted input).

    Examples
    --------
    >>> to_ref = FrechetToReference(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    >>> to_ref(torch.ones(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    2.0
    """

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor):
        self.mean, self.cov, self.root = mean, cov, _psd_sqrt(cov)

    def __call__(self, mu: torch.Tensor, sigma: torch.Tensor) -> float:
        return _frechet_rooted(self.root, self.mean, self.cov, mu, sigma)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    r"""Squared Fréchet (2-Wasserstein) distance between two Gaussians.

    .. math::
        d^2 = \lVert\mu_1-\mu_2\rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
              - 2\operatorname{tr}\bigl(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}\bigr)^{1/2}

    Parameters
    ----------
    mu1, mu2 : array_like, shape (d,)
        Means.
    sigma1, sigma2 : array_like, shape (d, d)
        Symmetric positive semi-definite covariances.

    Returns
    -------
    float
        The squared distance (this is what "FID" denotes), clipped at 0 against round-off.

    Notes
    -----
    Both square roots are taken by ``eigh`` of symmetric matrices, so the result is real even
    for singular covariances (``n < d`` features). Computed in float64 on the device of
    ``sigma1``.

    References
    ----------
    D. C. Dowson, B. V. Landau, "The Frechet distance between multivariate normal
    distributions", J. Multivariate Anal. 12 (1982) 450-455.

    Examples
    --------
    >>> frechet_distance(np.zeros(2), np.diag([4.0, 1.0]), np.ones(2), np.diag([1.0, 1.0]))
    3.0
    """
    s1 = to_float64(sigma1, name="sigma1")
    device = s1.device
    m1 = to_float64(mu1, name="mu1").to(device)
    m2 = to_float64(mu2, name="mu2").to(device)
    s2 = to_float64(sigma2, name="sigma2").to(device)
    if m1.ndim != 1:
        raise ValueError(f"mu1 must be 1-D, got shape {tuple(m1.shape)}")
    d = m1.shape[0]
    for name, t, shape in (("mu2", m2, (d,)), ("sigma1", s1, (d, d)), ("sigma2", s2, (d, d))):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    _check_covariance(s1, name="sigma1")
    _check_covariance(s2, name="sigma2")
    distance = _frechet(m1, s1, m2, s2)
    if not np.isfinite(distance):
        raise ValueError("mu1, sigma1, mu2, sigma2: the Frechet distance overflows float64 (entries too large)")
    return distance


#: Relative tolerance of the covariance checks of :func:`frechet_distance`: asymmetry and
#: negative eigenvalues up to this fraction of the largest ``|eigenvalue|`` are round-off
#: (a float64 covariance of ``n`` samples rounds at about ``n * 1e-16``).
_COVARIANCE_RTOL = 1e-9


def _check_covariance(s: torch.Tensor, *, name: str) -> None:
    """``ValueError`` naming ``name`` unless ``s`` is symmetric positive semi-definite up to
    :data:`_COVARIANCE_RTOL` (the formula silently returns a wrong number otherwise)."""
    if s.numel() == 0:
        return
    scale = float(s.abs().max())
    asymmetry = float((s - s.T).abs().max())
    if asymmetry > _COVARIANCE_RTOL * scale:
        raise ValueError(f"{name} is not symmetric (max |S - S^T| = {asymmetry:.3g})")
    lowest = float(torch.linalg.eigvalsh(0.5 * (s + s.T)).min())
    if lowest < -_COVARIANCE_RTOL * scale:
        raise ValueError(f"{name} is not positive semi-definite (smallest eigenvalue {lowest:.6g}); "
                         "a covariance matrix has none below 0")


def fid_from_features(feats_a, feats_b) -> float:
    """FID between two feature sets: :func:`frechet_distance` of their :func:`gaussian_fit`.

    Parameters
    ----------
    feats_a : array_like, shape (n_a, d)
    feats_b : array_like, shape (n_b, d)
        Features of the two sample sets in the same feature network (``n >= 2`` each);
        computed on ``feats_a``'s device.

    Returns
    -------
    float
        ``FD^2`` of the moment matches. FID is biased upward at finite sample counts (its
        expectation falls roughly like ``1/n``), so only values at equal ``n`` and the same
        feature network are comparable.

    Examples
    --------
    >>> x = np.array([[0.0], [2.0]])
    >>> round(fid_from_features(x, x + 1.0), 12)  # the means differ by 1, the covariances agree
    1.0
    """
    a = _features(feats_a, name="feats_a")
    b = _features(feats_b, name="feats_b").to(a.device)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a and feats_b must have the same feature dimension, got {a.shape[1]} and {b.shape[1]}")
    return _frechet(*_fit(a), *_fit(b))
