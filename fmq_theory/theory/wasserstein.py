r"""Exact Wasserstein distances between one-dimensional empirical measures.

In one dimension the monotone (quantile) coupling is optimal, so for measures
:math:`\mu, \nu` on :math:`\mathbb R` with quantile functions :math:`F^{-1}, G^{-1}`

.. math:: W_p^p(\mu, \nu) = \int_0^1 |F^{-1}(t) - G^{-1}(t)|^p \, dt ,

and for discrete measures the integrand is piecewise constant: its breakpoints are the
cumulative masses of both measures, so the integral is an exact finite sum
(:func:`wasserstein_1d`).  For two samples of equal size with equal weights it reduces
to :math:`\frac1n \sum_i |u_{(i)} - v_{(i)}|^p` over the sorted samples.

For any monotone quantizer :math:`Q` the coupling :math:`(w, Q(w))` is itself monotone,
hence :math:`W_2^2(\mu, Q_\# \mu) = \frac1n \sum_i (w_i - Q(w_i))^2`, the MSE
(:func:`quantization_w2` computes the left side independently of that identity).

References
----------
.. [1] C. Villani, *Optimal transport: old and new*, Springer 2009, remark 2.19.
.. [2] R. Flamary et al., "POT: Python Optimal Transport", JMLR 22(78), 2021
   (``ot.wasserstein_1d``, used here only as a test oracle).
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["wasserstein_1d", "quantization_w2"]


def _is_torch_tensor(x) -> bool:
    """Whether ``x`` is a torch tensor, without importing torch (a tensor's existence means
    torch is already in ``sys.modules``; this module stays torch-free)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _values(x, name: str) -> np.ndarray:
    if _is_torch_tensor(x):
        x = x.detach().to(device="cpu").double().numpy()
    if np.iscomplexobj(x):
        raise ValueError(f"{name} must be real, not complex")
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (NaN or Inf)")
    return arr


def _weights(weights, n: int, name: str) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = _values(weights, name)
    if w.size != n:
        raise ValueError(f"{name} has {w.size} entries; its sample has {n}")
    if np.any(w < 0):
        raise ValueError(f"{name} has negative entries (min {float(w.min())!r})")
    total = w.sum()
    if not total > 0:
        raise ValueError(f"{name} sums to {float(total)!r}; it must have positive total mass")
    return w / total


def _pth_mean_root(diff: np.ndarray, p: float, dt: np.ndarray | None = None) -> float:
    r""":math:`(\sum_k dt_k\, d_k^p)^{1/p}` (the mean over ``diff`` without ``dt``), computed directly,
    or, where :math:`d^p` overflows float64, as :math:`M (\sum_k dt_k (d_k / M)^p)^{1/p}` with
    :math:`M = \max_k d_k`; ``ValueError`` naming ``u`` and ``v`` if a difference itself overflows."""
    with np.errstate(over="ignore"):
        powered = diff**p
        direct = (np.mean(powered) if dt is None else np.sum(dt * powered)) ** (1.0 / p)
        if np.isfinite(direct):
            return float(direct)
        top = float(diff.max())
        if not np.isfinite(top):
            raise ValueError("u and v lie too far apart for float64: a difference of their quantiles overflows")
        scaled = (diff / top) ** p
        return top * float((np.mean(scaled) if dt is None else np.sum(dt * scaled)) ** (1.0 / p))


def wasserstein_1d(u, v, *, u_weights=None, v_weights=None, p: float = 2.0) -> float:
    r"""Exact :math:`W_p` between the 1-D empirical measures of ``u`` and ``v``.

    Parameters
    ----------
    u, v : array_like or torch.Tensor
        Sample points (flattened); finite.
    u_weights, v_weights : array_like, optional
        Non-negative masses of the points (normalised to total mass 1); uniform if
        omitted.
    p : float
        Order, finite and ``>= 1``.

    Returns
    -------
    float
        :math:`W_p(\mu, \nu) = (\int_0^1 |F^{-1} - G^{-1}|^p)^{1/p}`, computed exactly in
        float64 (sum over the merged cumulative masses); rescaled by the largest quantile
        difference where its ``p``-th power would overflow.

    Raises
    ------
    ValueError
        Empty, complex or non-finite points, bad weights, ``p`` not finite and ``>= 1``, or
        points so far apart that a quantile difference overflows float64.

    Examples
    --------
    >>> wasserstein_1d([0.0, 1.0], [0.5, 1.5])
    0.5
    >>> round(wasserstein_1d([0.0, 1.0], [0.0], v_weights=[1.0], p=1), 12)
    0.5
    """
    if not (isinstance(p, (int, float, np.integer, np.floating)) and not isinstance(p, bool) and 1 <= p < np.inf):
        raise ValueError(f"p={p!r} must be a finite number >= 1")
    a = _values(u, "u")
    b = _values(v, "v")
    if u_weights is None and v_weights is None and a.size == b.size:
        with np.errstate(over="ignore"):
            diff = np.abs(np.sort(a) - np.sort(b))
        return _pth_mean_root(diff, p)
    wa = _weights(u_weights, a.size, "u_weights")
    wb = _weights(v_weights, b.size, "v_weights")
    ia = np.argsort(a, kind="stable")
    ib = np.argsort(b, kind="stable")
    a, wa, b, wb = a[ia], wa[ia], b[ib], wb[ib]
    ca = np.cumsum(wa)
    cb = np.cumsum(wb)
    ca[-1] = cb[-1] = 1.0
    t = np.union1d(ca, cb)  # right ends of the constant pieces of both quantile functions
    dt = np.diff(np.concatenate(([0.0], t)))
    qa = a[np.minimum(np.searchsorted(ca, t, side="left"), a.size - 1)]
    qb = b[np.minimum(np.searchsorted(cb, t, side="left"), b.size - 1)]
    with np.errstate(over="ignore"):
        diff = np.abs(qa - qb)
    return _pth_mean_root(diff, p, dt)


def quantization_w2(w, quantized) -> float:
    r"""Exact :math:`W_2` between the empirical law of the entries of ``w`` and of their
    quantized values.

    Parameters
    ----------
    w : numpy.ndarray or torch.Tensor
        The original weights.
    quantized : QuantizedTensor or numpy.ndarray or torch.Tensor
        Its quantized version (anything with a ``dequantize()`` method, such as a
        :class:`~fmq_theory.quantizers.QuantizedTensor`, is dequantized first), with as
        many entries as ``w``.

    Returns
    -------
    float
        :math:`W_2(\frac1n\sum_i\delta_{w_i}, \frac1n\sum_i\delta_{\hat w_i})`.
    """
    if callable(getattr(quantized, "dequantize", None)) and not _is_torch_tensor(quantized):
        quantized = quantized.dequantize()
    a = _values(w, "w")
    b = _values(quantized, "quantized")
    if a.size != b.size:
        raise ValueError(f"w has {a.size} entries but quantized has {b.size}")
    return wasserstein_1d(a, b, p=2)
