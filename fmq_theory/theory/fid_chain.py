r"""The textbook FID-degradation chain, link by link, as calculators with their assumptions.

The chain (all constants are inputs; estimating them from real models is the harness's job):

1. :func:`weight_w2` — weights: :math:`W_2^2(\text{law}(w), \text{law}(Q(w))) = \mathrm{MSE}`
   for a monotone quantizer (the monotone coupling is optimal in 1-D), and the parameter
   perturbation :math:`\|\delta\theta\|_2 = \sqrt{P\,\mathrm{MSE}}`.
2. :func:`velocity_error` — :math:`\varepsilon = L_\theta \|\delta\theta\|_2` bounds
   :math:`\sup_{t,x}|v_{\hat\theta}(t,x) - v_\theta(t,x)|`.
3. :func:`flow_error` — Gronwall: :math:`|x_1 - \hat x_1| \le \varepsilon (e^{L}-1)/L`
   for the exact flow on :math:`[0, 1]`; for the deployed solver with :math:`N` steps
   :math:`h = T/N`: Euler :math:`\varepsilon((1+hL)^N-1)/L`; midpoint and Heun
   :math:`d\,(G^N-1)/(G-1)` with stage gain :math:`G = 1+hL+(hL)^2/2` and per-step defect
   :math:`d = h\varepsilon(1+hL/2)`.
4. :func:`generated_w2` — :math:`W_2(\mu_{fp}, \mu_q) \le` flow error (shared-noise coupling).
5. :func:`feature_w2` — :math:`W_2` of the feature laws :math:`\le \mathrm{Lip}(\phi)\, W_2`.
6. :func:`gelbrich` — the Fréchet distance of the Gaussian moment fits is at most the
   :math:`W_2` of the laws (Gelbrich 1990).
7. :func:`fid_bound` — :math:`\sqrt{FID_q} \le \sqrt{FID_{fp}} + \sqrt{FD(N_q, N_{fp})}`
   (triangle inequality of the Bures-Wasserstein metric).

:func:`fid_chain` composes them; :func:`fid_bound_vs_bits` evaluates the chain for a
quantizer's distortion at several bit widths. :func:`frechet_distance` is the exact,
numerically stable Fréchet distance between two Gaussians.

References
----------
T. H. Gronwall, Ann. Math. 20 (1919); M. Gelbrich, Math. Nachr. 147 (1990);
D. C. Dowson and B. V. Landau, J. Multivariate Anal. 12 (1982); C. Villani, *Optimal
Transport* (2009); M. Heusel et al., NeurIPS (2017); E. Hairer, S. P. Nørsett and
G. Wanner, *Solving ODEs I* (1993).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = [
    "SOLVERS",
    "Link",
    "FidChain",
    "FidCurve",
    "weight_w2",
    "velocity_error",
    "flow_error",
    "generated_w2",
    "feature_w2",
    "gelbrich",
    "fid_bound",
    "fid_chain",
    "fid_bound_vs_bits",
    "frechet_distance",
]

#: Solvers with a discrete error recursion (``"exact"`` is the exact flow, Gronwall).
SOLVERS = ("exact", "euler", "midpoint", "heun")


@dataclass(frozen=True)
class Link:
    """One link of the chain.

    Attributes
    ----------
    name : str
        What ``value`` bounds (or equals).
    value : float
        The link's value.
    inputs : tuple of (str, float or str)
        Every input the value was computed from, by name.
    details : tuple of (str, float)
        Intermediate quantities (amplification factors, stage gains, ...); may be empty.
    assumptions : tuple of str
        Hypotheses under which ``value`` is valid.
    """

    name: str
    value: float
    inputs: tuple
    details: tuple
    assumptions: tuple[str, ...]


def _nonneg(value, *, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value


def _finite_factor(compute, lipschitz_x: float, horizon: float) -> float:
    """The flow-error amplification ``compute()``, or a ``ValueError`` naming ``lipschitz_x``
    when it leaves the float64 range (``e^(L T)`` overflows for ``L T > 709``: the bound is
    vacuous, not a number to print)."""
    try:
        value = compute()
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(
            f"lipschitz_x={lipschitz_x!r} with horizon={horizon!r}: the flow-error amplification "
            f"e^(lipschitz_x * horizon) = e^{lipschitz_x * horizon:.4g} overflows float64; the bound is vacuous")
    return value


def _finite_value(compute, **inputs) -> float:
    """``compute()``, or a ``ValueError`` naming ``inputs`` when it leaves the float64 range
    (the bound is vacuous, not a number to print)."""
    try:
        value = compute()
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        given = ", ".join(f"{name}={v!r}" for name, v in inputs.items())
        raise ValueError(f"{given}: the bound overflows float64; it is vacuous")
    return value


def _positive_int(value, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def weight_w2(*, mse: float, n_params: int) -> Link:
    r"""Link (i): :math:`W_2` between the weight law and its quantized image, and :math:`\|\delta\theta\|_2`.

    For a monotone (order-preserving) quantizer :math:`Q`, the coupling
    :math:`(w, Q(w))` is the monotone one, which is optimal in 1-D, so
    :math:`W_2^2 = E|w - Q(w)|^2 = \mathrm{MSE}`; over :math:`P` weights the Euclidean
    perturbation is :math:`\|\delta\theta\|_2 = \sqrt{P\,\mathrm{MSE}}` (an identity).

    Parameters
    ----------
    mse : float
        Per-weight mean squared error (>= 0).
    n_params : int
        Number of quantized weights :math:`P` (>= 1).

    Returns
    -------
    Link
        ``value`` = :math:`W_2 = \sqrt{\mathrm{MSE}}`; ``details`` holds
        ``("dtheta_norm", sqrt(P * mse))``.
    """
    mse = _nonneg(mse, name="mse")
    n_params = _positive_int(n_params, name="n_params")
    return Link(
        name="W2(weights, quantized weights)",
        value=math.sqrt(mse),
        inputs=(("mse", mse), ("n_params", n_params)),
        details=(("w2_squared", mse),
                 ("dtheta_norm", _finite_value(lambda: math.sqrt(n_params * mse), mse=mse, n_params=n_params))),
        assumptions=(
            "the quantizer is monotone (order preserving), so the coupling (w, Q(w)) is the "
            "monotone coupling, optimal for W2 in 1-D: W2^2 = MSE",
            "||dtheta||_2 = sqrt(n_params * mse) (sum of the squared per-weight errors)",
        ),
    )


def velocity_error(*, lipschitz_theta: float, dtheta_norm: float) -> Link:
    r"""Link (ii): :math:`\varepsilon = L_\theta\,\|\delta\theta\|_2`.

    Parameters
    ----------
    lipschitz_theta : float
        :math:`L_\theta` with :math:`|v_\theta(t,x) - v_{\theta'}(t,x)| \le L_\theta\|\theta-\theta'\|_2`
        for all :math:`t, x` on the segment between the two parameter vectors.
    dtheta_norm : float
        :math:`\|\delta\theta\|_2`.

    Returns
    -------
    Link
        ``value`` = :math:`\varepsilon`, a bound on :math:`\sup_{t,x}|v_q - v_{fp}|`.
    """
    lt = _nonneg(lipschitz_theta, name="lipschitz_theta")
    dn = _nonneg(dtheta_norm, name="dtheta_norm")
    return Link(
        name="sup velocity error eps",
        value=_finite_value(lambda: lt * dn, lipschitz_theta=lt, dtheta_norm=dn),
        inputs=(("lipschitz_theta", lt), ("dtheta_norm", dn)),
        details=(),
        assumptions=(
            "v is L_theta-Lipschitz in the parameters, uniformly in (t, x), on the segment "
            "between the full-precision and the quantized parameters",
        ),
    )


def flow_error(*, lipschitz_x: float, eps: float, solver: str = "exact", steps: int | None = None,
               horizon: float = 1.0) -> Link:
    r"""Link (iii): error between the two flows (or the two numerical solutions) at time ``horizon``.

    With :math:`v` (full precision) :math:`L`-Lipschitz in :math:`x` and
    :math:`|\hat v - v| \le \varepsilon`:

    * ``"exact"`` (Gronwall): :math:`\varepsilon\,(e^{LT}-1)/L`;
    * ``"euler"``: :math:`e_{k+1} \le (1+hL)e_k + h\varepsilon`, so
      :math:`e_N \le \varepsilon((1+hL)^N - 1)/L`;
    * ``"midpoint"``, ``"heun"``: the one-step maps are :math:`G`-Lipschitz with
      :math:`G = 1 + hL + (hL)^2/2` and differ by at most :math:`d = h\varepsilon(1+hL/2)`,
      so :math:`e_N \le d\,(G^N - 1)/(G - 1) = \varepsilon (G^N-1)/L`.

    Every discrete factor increases to the Gronwall factor as :math:`N \to \infty`, and all
    are attained by the linear field :math:`v = Lx`, :math:`\hat v = Lx + \varepsilon`.

    Parameters
    ----------
    lipschitz_x : float
        :math:`L \ge 0`, Lipschitz constant of the full-precision field in :math:`x`.
    eps : float
        Sup bound on the velocity error.
    solver : {"exact", "euler", "midpoint", "heun"}
    steps : int, optional
        Number of steps :math:`N` (required for a discrete solver; must be ``None`` for
        ``"exact"``).
    horizon : float, default 1.0
        Integration time :math:`T` (flow matching integrates over :math:`[0, 1]`).

    Returns
    -------
    Link
        ``details`` holds ``amplification`` (= value / eps, or the factor itself when
        ``eps == 0``) and, for the discrete solvers, ``step_size``, ``step_gain``,
        ``step_defect``.
    """
    lx = _nonneg(lipschitz_x, name="lipschitz_x")
    eps = _nonneg(eps, name="eps")
    horizon = _nonneg(horizon, name="horizon")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}; got {solver!r}")
    base = (
        "the full-precision field v(t, x) is L-Lipschitz in x (uniformly in t)",
        "sup_{t,x} |v_q - v_fp| <= eps",
        "both runs start from the same initial noise",
    )
    if solver == "exact":
        if steps is not None:
            raise ValueError(f"steps must be None for solver 'exact', got {steps!r}")
        amp = horizon if lx == 0 else _finite_factor(lambda: math.expm1(lx * horizon) / lx, lx, horizon)
        return Link(
            name="flow error |x_T - x_hat_T| (exact flow, Gronwall)",
            value=_finite_value(lambda: eps * amp, eps=eps, lipschitz_x=lx, horizon=horizon),
            inputs=(("lipschitz_x", lx), ("eps", eps), ("solver", solver), ("horizon", horizon)),
            details=(("amplification", amp),),
            assumptions=(*base, "exact ODE solutions (no discretization); Gronwall's inequality"),
        )
    if steps is None:
        raise ValueError(f"steps is required for solver {solver!r}")
    n = _positive_int(steps, name="steps")
    h = horizon / n
    if solver == "euler":
        gain, defect = 1.0 + h * lx, h
        how = "Euler: e_{k+1} <= (1 + hL) e_k + h eps"
    else:
        gain = _finite_factor(lambda: 1.0 + h * lx + 0.5 * (h * lx) ** 2, lx, horizon)
        defect = h * (1.0 + 0.5 * h * lx)
        how = (f"{solver}: one-step maps G-Lipschitz with G = 1 + hL + (hL)^2/2; "
               "one-step defect <= h eps (1 + hL/2)")
    # sum_{k<N} G^k, computed stably for G close to 1
    geometric = n if gain == 1.0 else _finite_factor(
        lambda: math.expm1(n * math.log1p(gain - 1.0)) / (gain - 1.0), lx, horizon)
    amp = _finite_factor(lambda: defect * geometric, lx, horizon)
    return Link(
        name=f"numerical flow error |x_N - x_hat_N| ({solver}, {n} steps)",
        value=_finite_value(lambda: eps * amp, eps=eps, lipschitz_x=lx, steps=n, horizon=horizon),
        inputs=(("lipschitz_x", lx), ("eps", eps), ("solver", solver), ("steps", n),
                ("horizon", horizon)),
        details=(("amplification", amp), ("step_size", h), ("step_gain", gain),
                 ("step_defect", defect * eps)),
        assumptions=(*base, how, "both models run the same solver on the same time grid"),
    )


def generated_w2(*, flow_error_bound: float) -> Link:
    r"""Link (iv): :math:`W_2(\mu_{fp}, \mu_q) \le E[|x_1 - \hat x_1|^2]^{1/2} \le` the flow error bound.

    Parameters
    ----------
    flow_error_bound : float
        A bound on :math:`|x_1 - \hat x_1|` valid for every initial noise.

    Returns
    -------
    Link
    """
    fe = _nonneg(flow_error_bound, name="flow_error_bound")
    return Link(
        name="W2(generated laws)",
        value=fe,
        inputs=(("flow_error_bound", fe),),
        details=(),
        assumptions=(
            "the pair (x_1, x_hat_1) from shared noise is a coupling of the two generated laws, "
            "so W2 <= its root-mean-square distance <= the uniform flow error bound",
        ),
    )


def feature_w2(*, lip_features: float, w2_samples: float) -> Link:
    r"""Link (v, first half): :math:`W_2(\phi_\#\mu_{fp}, \phi_\#\mu_q) \le \mathrm{Lip}(\phi)\,W_2(\mu_{fp}, \mu_q)`.

    Parameters
    ----------
    lip_features : float
        Lipschitz constant of the feature map :math:`\phi` (e.g. Inception pool3).
    w2_samples : float
        :math:`W_2` bound between the generated laws.

    Returns
    -------
    Link
    """
    lf = _nonneg(lip_features, name="lip_features")
    w2 = _nonneg(w2_samples, name="w2_samples")
    return Link(
        name="W2(feature laws)",
        value=_finite_value(lambda: lf * w2, lip_features=lf, w2_samples=w2),
        inputs=(("lip_features", lf), ("w2_samples", w2)),
        details=(),
        assumptions=("the feature map is Lip(features)-Lipschitz (Euclidean norms) on the "
                     "supports of both generated laws",),
    )


def gelbrich(*, w2_features: float) -> Link:
    r"""Link (v): Gelbrich's bound :math:`\sqrt{FD(N(m_1,\Sigma_1), N(m_2,\Sigma_2))} \le W_2(P_1, P_2)`.

    :math:`N(m_i, \Sigma_i)` are the Gaussians with the means and covariances of
    :math:`P_i`; the Fréchet distance between them is a lower bound on the :math:`W_2^2` of
    any two laws with those moments.

    Parameters
    ----------
    w2_features : float
        :math:`W_2` bound between the two feature laws.

    Returns
    -------
    Link
        ``value`` bounds :math:`\sqrt{FD}` of the Gaussian fits.
    """
    w2 = _nonneg(w2_features, name="w2_features")
    return Link(
        name="sqrt FD(Gaussian fits of the features)",
        value=w2,
        inputs=(("w2_features", w2),),
        details=(),
        assumptions=("both feature laws have finite second moments; Gelbrich (1990): "
                     "W2 of the moment-matched Gaussians <= W2 of the laws",),
    )


def fid_bound(*, fid_fp: float, sqrt_fd_bound: float) -> Link:
    r"""Link (vi): :math:`\sqrt{FID_q} \le \sqrt{FID_{fp}} + \sqrt{FD(N_q, N_{fp})}`.

    :math:`\sqrt{FD}` between Gaussians is the :math:`W_2` (Bures-Wasserstein) metric, so the
    triangle inequality through the reference Gaussian gives the bound; hence
    :math:`FID_q - FID_{fp} \le 2\sqrt{FID_{fp}}\,\delta + \delta^2`.

    Parameters
    ----------
    fid_fp : float
        FID of the full-precision model (>= 0).
    sqrt_fd_bound : float
        :math:`\delta`, a bound on :math:`\sqrt{FD(N_q, N_{fp})}`.

    Returns
    -------
    Link
        ``value`` bounds :math:`FID_q`; ``details`` holds ``("delta_fid", value - fid_fp)``.
    """
    fid = _nonneg(fid_fp, name="fid_fp")
    d = _nonneg(sqrt_fd_bound, name="sqrt_fd_bound")
    value = _finite_value(lambda: (math.sqrt(fid) + d) ** 2, fid_fp=fid, sqrt_fd_bound=d)
    return Link(
        name="FID_q",
        value=value,
        inputs=(("fid_fp", fid), ("sqrt_fd_bound", d)),
        details=(("delta_fid", value - fid),),
        assumptions=("FID = Frechet distance of the Gaussian fits to the features of the model "
                     "and of the reference data, with the same feature net and sample sizes; "
                     "sqrt(FD) is a metric on Gaussians (triangle inequality)",),
    )


@dataclass(frozen=True)
class FidChain:
    """The whole chain for one quantized model.

    Attributes
    ----------
    links : tuple of Link
        In order: weights, velocity, flow, generated laws, features, Gelbrich, FID.
    fid_bound : float
        Upper bound on the quantized model's FID (``links[-1].value``).
    delta_fid : float
        ``fid_bound - fid_fp``.
    """

    links: tuple[Link, ...]
    fid_bound: float
    delta_fid: float

    @property
    def assumptions(self) -> tuple[str, ...]:
        """Every assumption of every link, in order, without repeats."""
        return tuple(dict.fromkeys(a for link in self.links for a in link.assumptions))


def fid_chain(*, mse: float, n_params: int, lipschitz_theta: float, lipschitz_x: float,
              lip_features: float, fid_fp: float, solver: str = "exact", steps: int | None = None,
              horizon: float = 1.0) -> FidChain:
    """Compose links (i)-(vi): a bound on the quantized model's FID from its weight MSE.

    Parameters
    ----------
    mse, n_params
        See :func:`weight_w2`.
    lipschitz_theta
        See :func:`velocity_error`.
    lipschitz_x, solver, steps, horizon
        See :func:`flow_error`.
    lip_features
        See :func:`feature_w2`.
    fid_fp
        See :func:`fid_bound`.

    Returns
    -------
    FidChain
    """
    w = weight_w2(mse=mse, n_params=n_params)
    v = velocity_error(lipschitz_theta=lipschitz_theta, dtheta_norm=dict(w.details)["dtheta_norm"])
    f = flow_error(lipschitz_x=lipschitz_x, eps=v.value, solver=solver, steps=steps, horizon=horizon)
    g = generated_w2(flow_error_bound=f.value)
    phi = feature_w2(lip_features=lip_features, w2_samples=g.value)
    gb = gelbrich(w2_features=phi.value)
    fid = fid_bound(fid_fp=fid_fp, sqrt_fd_bound=gb.value)
    links = (w, v, f, g, phi, gb, fid)
    for link in links:
        if not math.isfinite(link.value):
            raise ValueError(f"the link {link.name!r} overflows float64 (inputs {dict(link.inputs)}); "
                             "the bound is vacuous at these constants")
    return FidChain(links=links, fid_bound=fid.value,
                    delta_fid=dict(fid.details)["delta_fid"])


@dataclass(frozen=True)
class FidCurve:
    """The chain evaluated at several bit widths for one quantizer.

    Attributes
    ----------
    method : str
        Label of the quantizer whose distortions were given.
    bits : numpy.ndarray, shape (m,)
        Bit widths, increasing.
    mse : numpy.ndarray, shape (m,)
        Per-weight MSE at each bit width (the input distortions).
    fid_bound : numpy.ndarray, shape (m,)
        FID bound at each bit width.
    delta_fid : numpy.ndarray, shape (m,)
        ``fid_bound - fid_fp``.
    chains : tuple of FidChain
        The full chain at each bit width (length m).
    """

    method: str
    bits: np.ndarray
    mse: np.ndarray
    fid_bound: np.ndarray
    delta_fid: np.ndarray
    chains: tuple[FidChain, ...]


def fid_bound_vs_bits(*, method: str, distortions: Mapping[int, float], n_params: int,
                      lipschitz_theta: float, lipschitz_x: float, lip_features: float,
                      fid_fp: float, solver: str = "exact", steps: int | None = None,
                      horizon: float = 1.0) -> FidCurve:
    r"""The FID degradation bound as a function of :math:`b` for one quantizer.

    Every link is monotone increasing in the MSE, so the bound inherits the rate of
    :math:`D_Q(b)`: :math:`\Delta FID \approx 2\sqrt{FID_{fp}}\, c\, \sqrt{D_Q(b)}` for small
    distortion, with :math:`c` the product of the chain constants.

    Parameters
    ----------
    method : str
        Label of the quantizer (reported, not interpreted).
    distortions : mapping of int to float
        Per-weight MSE :math:`D_Q(b)` by bit width (e.g. from :mod:`fmq_theory.theory.distortion`).
    n_params, lipschitz_theta, lipschitz_x, lip_features, fid_fp, solver, steps, horizon
        See :func:`fid_chain`.

    Returns
    -------
    FidCurve
    """
    if not isinstance(method, str) or not method:
        raise TypeError(f"method must be a non-empty str, got {method!r}")
    if not isinstance(distortions, Mapping) or not distortions:
        raise ValueError(f"distortions must be a non-empty mapping bits -> mse, got {distortions!r}")
    bits = sorted(_positive_int(b, name="distortions key (bits)") for b in distortions)
    chains = tuple(
        fid_chain(mse=distortions[b], n_params=n_params, lipschitz_theta=lipschitz_theta,
                  lipschitz_x=lipschitz_x, lip_features=lip_features, fid_fp=fid_fp,
                  solver=solver, steps=steps, horizon=horizon)
        for b in bits
    )
    return FidCurve(
        method=method,
        bits=np.array(bits, dtype=np.int64),
        mse=np.array([float(distortions[b]) for b in bits]),
        fid_bound=np.array([c.fid_bound for c in chains]),
        delta_fid=np.array([c.delta_fid for c in chains]),
        chains=chains,
    )


def _as_moments(mu, sigma, *, which: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or mu.size == 0:
        raise ValueError(f"mu{which} must be a non-empty 1-D array, got shape {mu.shape}")
    if sigma.shape != (mu.size, mu.size):
        raise ValueError(f"sigma{which} must have shape {(mu.size, mu.size)}, got {sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"mu{which} and sigma{which} must be finite")
    scale = max(float(np.max(np.abs(sigma))), np.finfo(float).tiny)
    if np.max(np.abs(sigma - sigma.T)) > 1e-8 * scale:
        raise ValueError(f"sigma{which} must be symmetric")
    return mu, 0.5 * (sigma + sigma.T)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    r"""Fréchet distance (squared 2-Wasserstein) between two Gaussians.

    .. math::
        FD = |\mu_1-\mu_2|^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
             - 2\operatorname{tr}\big(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}\big)^{1/2}
        \qquad\text{(Dowson \& Landau 1982)}.

    Computed through eigen-decompositions of symmetric matrices only
    (:math:`\Sigma_1^{1/2}`, then the eigenvalues of the symmetric
    :math:`\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}`, clipped at 0), which avoids the complex
    round-off of ``scipy.linalg.sqrtm`` on the non-symmetric product :math:`\Sigma_1\Sigma_2`.

    Parameters
    ----------
    mu1, mu2 : array_like, shape (d,)
    sigma1, sigma2 : array_like, shape (d, d)
        Symmetric positive semi-definite covariances.

    Returns
    -------
    float
        :math:`FD \ge 0` (FID when the moments are those of Inception features).

    Examples
    --------
    >>> round(frechet_distance([0.0], [[4.0]], [1.0], [[1.0]]), 12)
    2.0
    """
    mu1, s1 = _as_moments(mu1, sigma1, which="1")
    mu2, s2 = _as_moments(mu2, sigma2, which="2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must have the same shape, got {mu1.shape} and {mu2.shape}")
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (m + m.T)), 0.0, None)))
    fd = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * cross)
    return max(fd, 0.0)
