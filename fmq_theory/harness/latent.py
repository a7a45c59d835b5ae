"""Latent-space stability of a flow model: the paper's PCA-20 protocol and ODE inversion.

PCA protocol (reference code of arXiv 2511.11418)
    Run the velocity network once at ``t = 0`` on real test images, record the activations
    of named submodules (the paper: after the input/down blocks and after the middle block),
    flatten them per image, fit PCA with 20 components *per model*, and report the mean and
    standard deviation of the 20 per-component variances and the number of "collapsed"
    components (variance < 1e-4). The per-component variances are the top eigenvalues of the
    sample covariance, computed here to a certified tolerance, not by randomized PCA: from the
    smaller Gram matrix of the centred features in float64, by ``eigvalsh`` up to order
    :data:`SUBSPACE_MIN_ORDER`, above it by ``torch.lobpcg`` (block Rayleigh-Ritz)
    (:func:`top_eigenvalues`), which stops only when every requested Ritz pair's residual is at
    most ``1e-11`` of the largest (and falls back to ``eigvalsh`` if it does not get there).

ODE inversion
    A real image ``x1`` is mapped to noise by integrating ``dx/dt = v(t, x)`` backwards from
    ``t = 1`` to ``t = 0`` with a caller-given solver. The inverted noises of the
    full-precision and a quantized model are compared per image by the relative squared
    distance ``|z_q - z_fp|^2 / |z_fp|^2`` (``|z_fp|^2 \\approx`` the dimension for a model
    whose inversion lands on N(0, I)).

Only callables and module names are taken from the caller, so this module does not depend on
the UNet's internals. For :class:`fmq_theory.harness.models.unet.UNet` the activations "after the
input blocks" are the output of the last layer of the last down stage and those of the
middle block the output of ``mid2``; hooks on a container that is iterated rather than
called (``nn.ModuleList``) never fire, which :func:`latent_features` reports as an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from fmq_theory._util import check_positive_int

__all__ = [
    "COLLAPSE_THRESHOLD",
    "N_COMPONENTS",
    "InversionComparison",
    "LatentPCAStats",
    "compare_inversions",
    "invert",
    "inversion_stability",
    "latent_features",
    "latent_stability",
    "pca_variance_stats",
    "top_eigenvalues",
]

N_COMPONENTS = 20
COLLAPSE_THRESHOLD = 1e-4
#: Gram matrices of at most this order get the full ``eigvalsh``; larger ones the subspace iteration.
SUBSPACE_MIN_ORDER = 1024

#: ``velocity(t, x) -> dx/dt`` for a batch ``x`` and a float time ``t``.
Velocity = Callable[[float, torch.Tensor], torch.Tensor]
#: ``solver(velocity, x, t_start=..., t_end=...) -> x(t_end)``.
Solver = Callable[..., torch.Tensor]


def _check_images(images, *, name: str = "images") -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor in model space, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor in model space (e.g. uint8 / 127.5 - 1), got {images.dtype}")
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return images


# ---------------------------------------------------------------------------------------------
# PCA protocol


@dataclass(frozen=True)
class LatentPCAStats:
    """PCA statistics of one layer's activations for one model.

    Attributes
    ----------
    module : str
        Name of the hooked submodule.
    n_images : int
        Images the activations were computed on.
    n_features : int
        Flattened activation size per image.
    variances : numpy.ndarray, shape (n_components,), float64
        Variances of the PCA scores, largest first (top eigenvalues of the unbiased sample
        covariance; zero-padded if the covariance has fewer non-trivial eigenvalues).
    mean_variance, std_variance : float
        Mean and (population) standard deviation of ``variances``.
    collapsed : int
        Number of components with variance ``< collapse_threshold``.
    collapse_threshold : float
    explained_fraction : float
        ``sum(variances) / total variance`` (1.0 for constant features, by convention).
    """

    module: str
    n_images: int
    n_features: int
    variances: np.ndarray
    mean_variance: float
    std_variance: float
    collapsed: int
    collapse_threshold: float
    explained_fraction: float


def top_eigenvalues(
    gram: torch.Tensor,
    k: int,
    *,
    rtol: float = 1e-11,
    max_iter: int = 300,
    min_order: int = SUBSPACE_MIN_ORDER,
) -> torch.Tensor:
    r"""The ``k`` largest eigenvalues of a symmetric positive semi-definite matrix, descending.

    Up to order ``min_order`` (or three times the block below) this is
    ``torch.linalg.eigvalsh``. Above it, ``torch.lobpcg`` (Knyazev's locally optimal block
    preconditioned conjugate gradient, without a preconditioner) with a seeded Gaussian block
    of :math:`p = 2k` columns, stopped at relative residual ``rtol``; its values are Ritz
    values :math:`\theta_i` with vectors :math:`v_i`, and they are returned only when every
    one of the top ``k`` residuals :math:`r_i = \lVert A v_i - \theta_i v_i\rVert` is at most
    ``rtol`` :math:`\theta_1`. For a symmetric matrix each :math:`\theta_i` then lies within
    :math:`r_i` of an eigenvalue (Bauer-Fike), and :math:`\theta_i \le \lambda_i` by Cauchy
    interlacing, so from a start with a component along every top eigenvector (almost surely
    for a Gaussian start) :math:`|\theta_i - \lambda_i| \le r_i` (Saad, *Numerical Methods
    for Large Eigenvalue Problems*, 2nd ed., 2011, ch. 5). Each step costs products
    :math:`AX` of :math:`O(n^2 p)`, against the :math:`O(n^3)` of the full decomposition; if
    the residuals are not small after ``max_iter`` steps the full ``eigvalsh`` is returned.
    On a Gram matrix of order 10,000 (spectrum :math:`j^{-1/2}`, rank 2,000, 2 CPU cores)
    ``eigvalsh`` took 14.4 s and this function 6.2 s (of which ``torch.lobpcg`` 4.1 s; with
    blocks of :math:`k` and :math:`4k + 20` columns 5.8 and 7.2 s), the package's earlier
    hand-written block subspace iteration 6.8 s; all equal to 6e-15 of :math:`\lambda_1`.

    Parameters
    ----------
    gram : torch.Tensor, shape (n, n)
        Symmetric (it is symmetrised) and positive semi-definite, float64 for the stated
        tolerance.
    k : int
        How many eigenvalues, ``1 <= k``; ``min(k, n)`` are returned.
    rtol : float, keyword-only
        Largest residual of a returned Ritz pair, relative to the largest Ritz value.
    max_iter : int, keyword-only
    min_order : int, keyword-only
        Orders up to this get the full ``eigvalsh``.

    Returns
    -------
    torch.Tensor, shape (min(k, n),)
        Clamped at 0 (round-off of a semi-definite matrix), on the device of ``gram``.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(2000, 300, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> gram = x @ x.T
    >>> fast = top_eigenvalues(gram, 5, min_order=100)
    >>> full = torch.linalg.eigvalsh(gram).flip(0)[:5]
    >>> bool(torch.allclose(fast, full, rtol=1e-10, atol=0))
    True
    """
    a = 0.5 * (gram + gram.T)
    n = a.shape[0]
    k = min(k, n)
    p = min(n, 2 * k)
    if n <= max(min_order, 3 * p):  # torch.lobpcg needs an order of at least three blocks
        return torch.linalg.eigvalsh(a).flip(0)[:k].clamp(min=0.0)
    gen = torch.Generator(device=a.device).manual_seed(0)
    start = torch.randn(n, p, dtype=a.dtype, device=a.device, generator=gen)
    theta, v = torch.lobpcg(a, k=k, X=start, largest=True, tol=rtol, niter=max_iter)
    residual = torch.linalg.vector_norm(a @ v - v * theta, dim=0)
    if bool((residual <= rtol * theta[0].abs()).all()):
        return theta.clamp(min=0.0)
    return torch.linalg.eigvalsh(a).flip(0)[:k].clamp(min=0.0)


def pca_variance_stats(
    features: torch.Tensor,
    *,
    module: str = "",
    n_components: int = N_COMPONENTS,
    collapse_threshold: float = COLLAPSE_THRESHOLD,
) -> LatentPCAStats:
    r"""Per-component variances of the top ``n_components`` principal components.

    With centred data :math:`X_c \in \mathbb R^{n\times d}`, the variances are the largest
    eigenvalues of :math:`X_c^\top X_c/(n-1)`, computed as the eigenvalues of the smaller of
    :math:`X_c^\top X_c` and :math:`X_c X_c^\top` (same non-zero spectrum), in float64 on the
    device of ``features``, by :func:`top_eigenvalues`; the explained fraction divides their sum
    by the trace.

    Parameters
    ----------
    features : torch.Tensor, shape (n, d)
        One flattened activation per row, ``n >= 2``.
    module : str, keyword-only
        Label stored in the result.
    n_components : int, keyword-only
        20 in the paper's protocol.
    collapse_threshold : float, keyword-only
        1e-4 in the paper's protocol.

    Returns
    -------
    LatentPCAStats
    """
    if not isinstance(features, torch.Tensor) or features.ndim != 2 or features.shape[0] < 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"features must be a 2-D torch tensor with at least 2 rows, got {shape}")
    n_components = check_positive_int(n_components, name="n_components")
    if not (isinstance(collapse_threshold, float) and collapse_threshold > 0):
        raise ValueError(f"collapse_threshold must be a positive float, got {collapse_threshold!r}")
    x = features.to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"features of module {module!r} contain NaN or infinite values")
    n, d = x.shape
    xc = x - x.mean(dim=0)
    gram = xc.T @ xc if d <= n else xc @ xc.T
    eig = top_eigenvalues(gram, n_components) / (n - 1)
    total = float(torch.diagonal(gram).sum()) / (n - 1)  # the trace: the sum of every eigenvalue
    top = torch.zeros(n_components, dtype=torch.float64)
    top[:eig.shape[0]] = eig.cpu()
    var = top.numpy()
    return LatentPCAStats(
        module=module,
        n_images=n,
        n_features=d,
        variances=var,
        mean_variance=float(var.mean()),
        std_variance=float(var.std()),
        collapsed=int((var < collapse_threshold).sum()),
        collapse_threshold=collapse_threshold,
        explained_fraction=float(var.sum() / total) if total > 0 else 1.0,
    )


def latent_features(
    model: nn.Module,
    run: Callable[[torch.Tensor], object],
    images: torch.Tensor,
    *,
    module_names: Sequence[str],
    batch_size: int = 256,
) -> dict[str, torch.Tensor]:
    """Flattened activations of named submodules, collected by forward hooks.

    Parameters
    ----------
    model : torch.nn.Module
        The network whose submodules are hooked (``model.get_submodule(name)``).
    run : callable
        ``run(x_batch)`` runs the network on one batch, e.g. at ``t = 0``:
        ``lambda x: model(x, torch.zeros(len(x), device=x.device), None)``. Its result is
        ignored; the batch is moved to the device of the model's first parameter.
    images : torch.Tensor, shape (N, C, H, W), floating
        Inputs in model space.
    module_names : sequence of str
        Submodules to record; each must be *called* during ``run`` and return a tensor.
    batch_size : int, keyword-only

    Returns
    -------
    dict of str to torch.Tensor
        ``name -> (N, D_name)`` float32 CPU tensors, in the order of ``module_names``.
    """
    images = _check_images(images)
    batch_size = check_positive_int(batch_size, name="batch_size")
    names = list(module_names)
    if not names or len(set(names)) != len(names) or not all(isinstance(s, str) for s in names):
        raise ValueError(f"module_names must be distinct strings, at least one, got {module_names!r}")
    modules = {}
    for name in names:
        try:
            modules[name] = model.get_submodule(name)
        except AttributeError as exc:
            raise ValueError(f"model has no submodule {name!r}") from exc
    param = next(model.parameters(), None)
    device = param.device if param is not None else images.device
    store: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def hook_for(name):
        def hook(_module, _inputs, output):
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"submodule {name!r} returned {type(output).__name__}, expected a tensor")
            store[name].append(output.detach().flatten(1).float().cpu())

        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in names]
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                expected = start // batch_size + 1
                run(images[start : start + batch_size].to(device))
                for name in names:
                    if len(store[name]) != expected:
                        raise ValueError(
                            f"submodule {name!r} fired {len(store[name]) - expected + 1} times on one batch "
                            "(expected once; containers such as nn.ModuleList are never called: name the "
                            "last module they run)")
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return {name: torch.cat(store[name]) for name in names}


def latent_stability(
    model: nn.Module,
    run: Callable[[torch.Tensor], object],
    images: torch.Tensor,
    *,
    module_names: Sequence[str],
    n_components: int = N_COMPONENTS,
    collapse_threshold: float = COLLAPSE_THRESHOLD,
    batch_size: int = 256,
    pca_device=None,
) -> tuple[LatentPCAStats, ...]:
    """The paper's protocol: :func:`latent_features`, then :func:`pca_variance_stats` per module.

    Parameters
    ----------
    pca_device : str or torch.device, optional, keyword-only
        Where the Gram matrices are formed and diagonalised (default: CPU). On a GPU this is
        the expensive step for 10k images.

    Returns
    -------
    tuple of LatentPCAStats
        One per module, in the order of ``module_names``.
    """
    feats = latent_features(model, run, images, module_names=module_names, batch_size=batch_size)
    device = torch.device(pca_device) if pca_device is not None else torch.device("cpu")
    return tuple(
        pca_variance_stats(f.to(device), module=name, n_components=n_components, collapse_threshold=collapse_threshold)
        for name, f in feats.items()
    )


# ---------------------------------------------------------------------------------------------
# ODE inversion


@dataclass(frozen=True)
class InversionComparison:
    """Distance between the noises two models invert the same images to.

    Attributes
    ----------
    n_images : int
    relative_sq_distance : numpy.ndarray, shape (n_images,), float64
        ``|z_b - z_a|^2 / |z_a|^2`` per image (``a`` is the reference, e.g. full precision).
    mean_relative_sq_distance : float
        Mean of ``relative_sq_distance``.
    mean_sq_distance : float
        ``mean |z_b - z_a|^2 / dim`` (per coordinate).
    mean_sq_norm : float
        ``mean |z_a|^2 / dim`` (about 1 when the reference inversion lands on N(0, I)).
    """

    n_images: int
    relative_sq_distance: np.ndarray
    mean_relative_sq_distance: float
    mean_sq_distance: float
    mean_sq_norm: float


def invert(velocity: Velocity, images: torch.Tensor, *, solver: Solver, batch_size: int = 256) -> torch.Tensor:
    """Map images to noise by integrating ``dx/dt = velocity(t, x)`` from t = 1 back to t = 0.

    Parameters
    ----------
    velocity : callable
        ``velocity(t, x)`` of the model (label-free, e.g. the null-label field of a
        class-conditional model). Batches are passed on the device of ``images``.
    images : torch.Tensor, shape (N, C, H, W), floating
        Real images in model space.
    solver : callable
        ``solver(velocity, x, t_start=1.0, t_end=0.0) -> torch.Tensor``, e.g.
        ``lambda v, x, **kw: integrate(v, x, solver="midpoint", steps=100, **kw).x`` with
        :func:`fmq_theory.flow.solvers.integrate`.
    batch_size : int, keyword-only

    Returns
    -------
    torch.Tensor, shape (N, C, H, W), float32, CPU
    """
    images = _check_images(images)
    batch_size = check_positive_int(batch_size, name="batch_size")
    out = []
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            z = solver(velocity, images[start : start + batch_size], t_start=1.0, t_end=0.0)
            if not isinstance(z, torch.Tensor) or z.shape != images[start : start + batch_size].shape:
                raise TypeError("solver must return a tensor of the batch's shape")
            out.append(z.float().cpu())
    return torch.cat(out)


def compare_inversions(noise_ref: torch.Tensor, noise_other: torch.Tensor) -> InversionComparison:
    """Compare two inversions of the same images (see :class:`InversionComparison`)."""
    for name, z in (("noise_ref", noise_ref), ("noise_other", noise_other)):
        if not isinstance(z, torch.Tensor) or z.ndim < 2 or z.shape[0] == 0:
            raise ValueError(f"{name} must be a tensor (N, ...) with N >= 1")
        if not bool(torch.isfinite(z).all()):
            raise ValueError(f"{name} contains NaN or infinite values (the inversion diverged)")
    if noise_ref.shape != noise_other.shape:
        raise ValueError(f"noise_ref and noise_other must have one shape, got {tuple(noise_ref.shape)} and {tuple(noise_other.shape)}")
    a = noise_ref.to(torch.float64).flatten(1).cpu()
    b = noise_other.to(torch.float64).flatten(1).cpu()
    dist = ((b - a) ** 2).sum(dim=1)
    norm = (a**2).sum(dim=1)
    if bool((norm == 0).any()):
        raise ValueError("noise_ref has an all-zero row; the relative distance is undefined")
    rel = (dist / norm).numpy()
    dim = a.shape[1]
    return InversionComparison(
        n_images=int(a.shape[0]),
        relative_sq_distance=rel,
        mean_relative_sq_distance=float(rel.mean()),
        mean_sq_distance=float(dist.mean()) / dim,
        mean_sq_norm=float(norm.mean()) / dim,
    )


def inversion_stability(
    velocity_ref: Velocity,
    velocity_other: Velocity,
    images: torch.Tensor,
    *,
    solver: Solver,
    batch_size: int = 256,
) -> InversionComparison:
    """Invert ``images`` with both velocity fields (same solver) and compare the noises."""
    z_ref = invert(velocity_ref, images, solver=solver, batch_size=batch_size)
    z_other = invert(velocity_other, images, solver=solver, batch_size=batch_size)
    return compare_inversions(z_ref, z_other)
