r"""High-resolution asymptotics of scalar quantizers on weight laws, derived with sympy.

Every law is taken at unit variance; all distortions scale with the variance
:math:`\sigma^2`. :math:`K = 2^b` levels.

What is derived here (one function per result; each returns a frozen dataclass that
carries the sympy expression, its float value where it is a number, and the
assumptions used):

* :func:`uniform_cell_mse` — a step :math:`\Delta` with the error uniform on a cell
  gives :math:`\Delta^2/12`; :func:`minmax_step_mse` — the min-max grid
  :math:`\Delta = (\max-\min)/(K-1)` gives :math:`(\max-\min)^2/(12 (K-1)^2)`.
* :func:`optimal_clip` — the leading growth of the MSE-optimal clipping point
  :math:`c(b)` of the uniform quantizer (Gaussian :math:`c \sim 2\sqrt{\ln K}`).
* :func:`panter_dite_constant` — :math:`\frac1{12}\left(\int p^{1/3}\right)^3`
  (Bennett 1948; Panter & Dite 1951), closed forms for every law.
* :func:`exponential_tail_sum` and :func:`pareto_tail_sum` — the constants of the
  equal-mass quantizer's outer cells, which decide its true rate on unbounded support.
* :func:`asymptotic_form` / :func:`asymptotic_table` — the leading form of
  :math:`D_Q(b)` for ``uniform_minmax``, ``uniform_mse``, ``lloyd_max``, ``equal_mass``,
  with the constant and the effective exponent :math:`-\mathrm{d}\log_2 D/\mathrm{d}b`.

The leading forms (unit variance; :math:`S \approx 1.0803`, :math:`T_\nu` from
:func:`pareto_tail_sum`; :math:`\alpha, \beta` the generalized-Gaussian scale and
shape, :math:`A` the Student-t tail constant :math:`p(x) \sim A x^{-\nu-1}`):

=============  ==================================  ============================  =====================
method         Gaussian                            Student-t(:math:`\nu`)        generalized Gaussian
=============  ==================================  ============================  =====================
lloyd_max      :math:`\frac{\sqrt3\pi}{2}K^{-2}`    :math:`C_{PD}K^{-2}`          :math:`C_{PD}K^{-2}`
uniform_mse    :math:`\frac{4\ln K}{3K^2}`          :math:`\propto K^{4/\nu-2}`   :math:`\frac{\alpha^2}{3}(2\ln K)^{2/\beta}K^{-2}`
equal_mass     :math:`\frac{S}{K\ln K}`             :math:`\propto K^{2/\nu-1}`   :math:`\frac{2S\alpha^2}{\beta^2 K(\ln K)^{2-2/\beta}}`
=============  ==================================  ============================  =====================

References
----------
W. R. Bennett, "Spectra of quantized signals", Bell Syst. Tech. J. 27 (1948).
P. F. Panter and W. Dite, "Quantization distortion in pulse-count modulation with
nonuniform spacing of levels", Proc. IRE 39 (1951).
R. M. Gray and D. L. Neuhoff, "Quantization", IEEE Trans. Inf. Theory 44 (1998).
D. Hui and D. L. Neuhoff, "Asymptotic analysis of optimal fixed-rate uniform scalar
quantization", IEEE Trans. Inf. Theory 47 (2001).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import sympy as sp

from fmq_theory.vocab import LAWS, SYMBOLIC_METHODS

__all__ = [
    "SYMBOLIC_BETA_MIN",
    "SYMBOLIC_NU_MAX",
    "Derivation",
    "Constant",
    "AsymptoticForm",
    "uniform_cell_mse",
    "minmax_step_mse",
    "optimal_clip",
    "panter_dite_constant",
    "exponential_cell_variance",
    "pareto_cell_variance",
    "exponential_tail_sum",
    "pareto_tail_sum",
    "sample_range_second_moment",
    "asymptotic_form",
    "asymptotic_table",
]


#: The bit width, the symbol every :class:`AsymptoticForm` expression depends on.
B = sp.Symbol("b", positive=True)
_K = 2**B
_X = sp.Symbol("x", positive=True)
_PRECISION = 30  # mpmath digits for the numeric values of the constants


@dataclass(frozen=True)
class Derivation:
    """A formula derived by sympy.

    Attributes
    ----------
    name : str
        What the formula is.
    expression : sympy.Expr
        The formula; its free symbols are named in ``symbols``.
    symbols : tuple of str
        Names of the free symbols of ``expression``.
    assumptions : tuple of str
        Hypotheses under which the formula holds.
    """

    name: str
    expression: sp.Expr
    symbols: tuple[str, ...]
    assumptions: tuple[str, ...]


@dataclass(frozen=True)
class Constant:
    """A numeric constant with its closed form (or sympy series) and float value.

    Attributes
    ----------
    name : str
        What the constant is.
    expression : sympy.Expr
        Closed form, or an unevaluated ``sympy.Sum`` where no closed form is known.
    value : float
        Its value (``expression`` evaluated with mpmath at 30 digits, then rounded).
    assumptions : tuple of str
        Hypotheses under which it is defined.
    """

    name: str
    expression: sp.Expr
    value: float
    assumptions: tuple[str, ...]


@dataclass(frozen=True)
class AsymptoticForm:
    r"""Leading high-resolution form of the distortion :math:`D_Q(b)` of one method on one law.

    Attributes
    ----------
    law : str
        One of :data:`fmq_theory.vocab.LAWS`.
    params : tuple of (str, float)
        Shape parameters (``nu``, ``beta``; ``n`` for ``uniform_minmax``); unit variance.
    method : str
        One of :data:`fmq_theory.vocab.SYMBOLIC_METHODS`.
    expression : sympy.Expr
        Leading form of :math:`D_Q(b)`, a function of the symbol ``b`` (:data:`B`).
    constant : sympy.Expr
        Front constant :math:`C` in ``expression`` = :math:`C \cdot r(b)`.
    constant_value : float
        ``float(constant)``.
    rate : sympy.Expr
        :math:`r(b)` = ``expression / constant``.
    exponent : sympy.Expr
        Effective exponent :math:`-\mathrm{d}\log_2 D/\mathrm{d}b` of ``expression``.
    exponent_limit : float
        Limit of ``exponent`` as :math:`b \to \infty`.
    assumptions : tuple of str
        Hypotheses and the order of the neglected terms.
    """

    law: str
    params: tuple[tuple[str, float], ...]
    method: str
    expression: sp.Expr
    constant: sp.Expr
    constant_value: float
    rate: sp.Expr
    exponent: sp.Expr
    exponent_limit: float
    assumptions: tuple[str, ...]

    def distortion(self, bits: float) -> float:
        """Value of the leading form at ``bits`` (> 0)."""
        return float(self.expression.subs(B, _check_bits(bits)).evalf(_PRECISION))

    def effective_exponent(self, bits: float) -> float:
        r"""Value of :math:`-\mathrm{d}\log_2 D/\mathrm{d}b` of the leading form at ``bits``."""
        return float(self.exponent.subs(B, _check_bits(bits)).evalf(_PRECISION))


def _check_bits(bits) -> sp.Expr:
    if isinstance(bits, bool) or not isinstance(bits, (int, float)) or not math.isfinite(bits):
        raise TypeError(f"bits must be a finite number, got {bits!r}")
    if bits <= 1:
        raise ValueError(f"bits must be > 1 for the asymptotic forms, got {bits!r}")
    return sp.nsimplify(bits) if isinstance(bits, int) else sp.Float(bits, _PRECISION)


def _exact(value, *, name: str) -> sp.Expr:
    """A float or int parameter as an exact sympy rational (``4.5`` -> ``9/2``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return sp.Integer(value) if isinstance(value, int) else sp.Rational(repr(float(value)))


def _num(expr: sp.Expr) -> float:
    return float(sp.N(expr, _PRECISION))


# --------------------------------------------------------------------------------------------
# Laws
# --------------------------------------------------------------------------------------------


#: Smallest generalized-Gaussian ``beta`` the derivations accept (``beta = 1e-3`` ran past
#: 120 s in sympy's ``factorint``; ``beta = 0.005`` takes about 17 s).
SYMBOLIC_BETA_MIN = sp.Rational(1, 200)

#: Largest Student-t ``nu`` the derivations accept.  The exact constants hold powers such as
#: ``(nu - 2)**((nu + 1)/2)`` and ``Gamma(nu/2)``, whose exact simplification grows with ``nu``:
#: measured (one core, integer ``nu``), ``panter_dite_constant`` 0.3 s at ``nu = 1000``, 1.4 s
#: at 3000, 13 s at 1e4; ``optimal_clip`` 0.8 s at 1e4 and past 30 s at 3e4;
#: ``pareto_cell_variance`` / ``pareto_tail_sum`` 0.9 s at 1e6 and past 30 s at 1e8; every
#: function, ``asymptotic_form`` included, within 1.5 s at 1000.  There the Student-t is the
#: Gaussian to within 0.3% (Panter-Dite constant 2.7289 against 2.7207).
SYMBOLIC_NU_MAX = 1000

#: Largest odd-integer (key 1) and half-integer (key 2, the denominator of ``nu``) Student-t ``nu``
#: the derivations accept; even integers go up to :data:`SYMBOLIC_NU_MAX`, other ``nu`` are refused.
#: Measured (sympy 1.14, every value of each kind from 2.5 and 3 up): all pass within 3 s; above
#: them sympy builds integers past Python's 4300-digit conversion limit (a raw ``ValueError`` at
#: ``nu = 127`` and ``83.5``) or runs past a minute (``999.5``), as it does for other decimals
#: (``9.999`` and ``3.14159``: its exact powers of large coprime numerators and denominators).
_SYMBOLIC_NU_MAX_ODD = {1: sp.Integer(125), 2: sp.Rational(165, 2)}


@dataclass(frozen=True)
class _Law:
    """A unit-variance law as the derivations need it.

    ``kind`` is ``"exponential"`` (density ``coef * exp(-(|x|/alpha)**beta)``) or
    ``"pareto"`` (Student-t: ``coef * (1 + x**2/(nu-2))**(-(nu+1)/2)``, tail
    ``A x**(-nu-1)``).
    """

    name: str
    params: tuple[tuple[str, float], ...]
    kind: str
    alpha: sp.Expr | None = None
    beta: sp.Expr | None = None
    nu: sp.Expr | None = None


def _law(law: str, *, nu=None, beta=None) -> _Law:
    if law not in LAWS:
        raise ValueError(f"law must be one of {', '.join(LAWS)}; got {law!r}")
    if law != "student-t" and nu is not None:
        raise ValueError(f"nu applies only to law 'student-t', got nu={nu!r} for {law!r}")
    if law != "gen-gaussian" and beta is not None:
        raise ValueError(f"beta applies only to law 'gen-gaussian', got beta={beta!r} for {law!r}")
    if law == "gaussian":
        return _Law(law, (), "exponential", alpha=sp.sqrt(2), beta=sp.Integer(2))
    if law == "laplace":
        return _Law(law, (), "exponential", alpha=1 / sp.sqrt(2), beta=sp.Integer(1))
    if law == "gen-gaussian":
        if beta is None:
            raise ValueError("beta is required for law 'gen-gaussian'")
        be = _exact(beta, name="beta")
        if be <= 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        if be < SYMBOLIC_BETA_MIN:
            raise ValueError(
                f"beta={beta!r} is below {SYMBOLIC_BETA_MIN}: the exact constants hold Gamma(3/beta) with "
                f"3/beta > {round(3 / SYMBOLIC_BETA_MIN)}, whose exact simplification (integer "
                "factorization) does not finish in minutes; the high-resolution regime "
                "b >> 2/beta is out of reach there anyway")
        alpha = sp.sqrt(sp.gamma(1 / be) / sp.gamma(3 / be))
        return _Law(law, (("beta", float(beta)),), "exponential", alpha=alpha, beta=be)
    if nu is None:
        raise ValueError("nu is required for law 'student-t'")
    n = _exact(nu, name="nu")
    if n <= 2:
        raise ValueError(f"nu must be > 2 (finite variance, unit-variance scaling), got {nu!r}")
    if n > SYMBOLIC_NU_MAX:
        raise ValueError(
            f"nu={nu!r} is above {SYMBOLIC_NU_MAX}: the exact constants hold (nu-2)^((nu+1)/2) and "
            "Gamma(nu/2), whose exact simplification does not finish in minutes; use law='gaussian' "
            "(the nu -> infinity limit, within 0.3% at nu = 1000)")
    numeric = ("the numeric path takes any nu > 2: fmq_theory.theory.distortion.law_quantizer("
               "make_law('student-t', nu=...)), fmq distortion --law student-t --nu NU")
    if (2 * n).q != 1:
        raise ValueError(
            f"nu={nu!r} is not an integer or a half-integer: the exact constants raise numbers built from "
            f"nu = {n} to powers with its denominator, whose exact simplification can run for hours; the "
            f"symbolic path takes nu in steps of 1/2; {numeric}")
    if n % 2 != 0 and n > _SYMBOLIC_NU_MAX_ODD[n.q]:
        raise ValueError(
            f"nu={nu!r} is above {float(_SYMBOLIC_NU_MAX_ODD[n.q]):g} for an odd or half-integer nu: the exact "
            f"simplification there builds integers past Python's 4300-digit limit or runs for minutes; take an "
            f"even integer nu (up to {SYMBOLIC_NU_MAX}), or {numeric}")
    return _Law(law, (("nu", float(nu)),), "pareto", nu=n)


def _student_t_coef(nu: sp.Expr) -> sp.Expr:
    """Density constant of the unit-variance Student-t: p(0)."""
    c = sp.gamma((nu + 1) / 2) / (sp.sqrt(nu * sp.pi) * sp.gamma(nu / 2))
    s = sp.sqrt((nu - 2) / nu)
    return c / s


def _student_t_tail(nu: sp.Expr) -> sp.Expr:
    """A with p(x) ~ A x**(-nu-1) for the unit-variance Student-t."""
    return _student_t_coef(nu) * (nu - 2) ** ((nu + 1) / 2)


# --------------------------------------------------------------------------------------------
# Uniform steps
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def uniform_cell_mse() -> Derivation:
    r"""Mean squared error of a uniform step when the error is uniform on a cell.

    .. math:: \frac1\Delta\int_{-\Delta/2}^{\Delta/2} e^2\,\mathrm{d}e = \frac{\Delta^2}{12}.

    Returns
    -------
    Derivation
        ``expression`` = ``Delta**2/12`` (computed by ``sympy.integrate``).
    """
    delta, e = sp.symbols("Delta e", positive=True)
    expr = sp.simplify(sp.integrate(e**2 / delta, (e, -delta / 2, delta / 2)))
    return Derivation(
        name="uniform step: cell MSE",
        expression=expr,
        symbols=("Delta",),
        assumptions=(
            "the quantization error is uniformly distributed on (-Delta/2, Delta/2) "
            "(high-resolution: the density is nearly constant on each cell)",
            "no overload: every value lies inside the grid range",
        ),
    )


@lru_cache(maxsize=None)
def minmax_step_mse() -> Derivation:
    r"""High-resolution MSE of the asymmetric min-max grid with :math:`K` levels.

    :math:`\Delta = (\max - \min)/(K-1)`, hence
    :math:`D \approx (\max-\min)^2 / (12 (K-1)^2)`.

    Returns
    -------
    Derivation
        ``expression`` in the symbols ``R`` (= max - min) and ``K``.
    """
    r, k = sp.symbols("R K", positive=True)
    expr = uniform_cell_mse().expression.subs(sp.Symbol("Delta", positive=True), r / (k - 1))
    return Derivation(
        name="min-max uniform grid: MSE",
        expression=sp.simplify(expr),
        symbols=("R", "K"),
        assumptions=(
            *uniform_cell_mse().assumptions,
            "Delta = R/(K-1) with R = max - min of the quantized group (no clipping)",
        ),
    )


_NU, _A = sp.symbols("nu A", positive=True)


@lru_cache(maxsize=None)
def _pareto_clip() -> sp.Expr:
    """Stationary clip of c**2/(3K**2) + 2 int_c^oo (x-c)**2 A x**(-nu-1) dx, symbolic nu, A, K."""
    c, kk = sp.symbols("c K", positive=True)
    overload = 2 * sp.integrate((_X - c) ** 2 * _A * _X ** (-_NU - 1), (_X, c, sp.oo), conds="none")
    (root,) = sp.solve(sp.Eq(sp.diff(c**2 / (3 * kk**2) + overload, c), 0), c)
    return root


@lru_cache(maxsize=None)
def _optimal_clip(law: _Law) -> tuple[sp.Expr, tuple[str, ...]]:
    """Leading clip c(b) minimizing c**2/(3 K**2) + 2 int_c^oo (x-c)**2 p."""
    kk = sp.Symbol("K", positive=True)
    if law.kind == "pareto":
        clip = sp.simplify(_pareto_clip().subs({_NU: law.nu, _A: _student_t_tail(law.nu)}).subs(kk, _K))
        return clip, (
            "Student-t tail p(x) ~ A x^(-nu-1); overload 2 int_c^oo (x-c)^2 A x^(-nu-1) dx; "
            "the stationary clip solved exactly: c^nu = 6 A K^2 / (nu (nu-1))",
        )
    # exponential-type tail p ~ coef exp(-u), u = (x/alpha)^beta, hazard h = beta u^(1-1/beta)/alpha:
    # stationarity 2c/(3K^2) = 4 int_c^oo (x-c) p ~ 4 p(c)/h(c)^2 gives, to leading order in
    # logarithms, exp(-u) = K^(-2) * (powers of u), i.e. u ~ 2 ln K.
    u_leading = sp.log(_K**2)
    clip = sp.simplify(law.alpha * u_leading ** (1 / law.beta))
    return clip, (
        "exponential-type tail p(x) = coef exp(-(x/alpha)^beta); stationarity "
        "2c/(3K^2) = 4 int_c^oo (x-c) p dx solved to leading order: (c/alpha)^beta ~ 2 ln K "
        "(relative error O(ln ln K / ln K))",
    )


def optimal_clip(law: str, *, nu=None, beta=None) -> Derivation:
    r"""Leading growth of the MSE-optimal clipping point of the uniform quantizer.

    The clipped uniform quantizer with :math:`K` levels on :math:`[-c, c]` has
    high-resolution MSE :math:`c^2/(3K^2) + 2\int_c^\infty (x-c)^2 p(x)\,\mathrm{d}x`.
    Minimizing over :math:`c`: Gaussian :math:`c \sim 2\sqrt{\ln K}`, Laplace
    :math:`c \sim \sqrt2 \ln K`, generalized Gaussian :math:`c \sim \alpha (2\ln K)^{1/\beta}`,
    Student-t :math:`c = (6AK^2/(\nu(\nu-1)))^{1/\nu}` exactly for the Pareto tail.

    Parameters
    ----------
    law : str
        One of :data:`fmq_theory.vocab.LAWS`.
    nu, beta : float, optional
        Student-t degrees of freedom (> 2) / generalized-Gaussian shape (> 0).

    Returns
    -------
    Derivation
        ``expression`` in the symbol ``b``.

    Raises
    ------
    ValueError
        An unknown ``law``, a missing or misplaced shape parameter, or one the exact derivation
        does not finish for: Student-t ``nu`` must be a multiple of 1/2 in ``(2, 1000]``, at most
        125 when odd and 82.5 when a half-integer; generalized-Gaussian ``beta`` at least
        :data:`SYMBOLIC_BETA_MIN`.
    """
    spec = _law(law, nu=nu, beta=beta)
    clip, why = _optimal_clip(spec)
    return Derivation(
        name=f"optimal uniform clip, {law}",
        expression=clip,
        symbols=("b",),
        assumptions=("unit variance", "symmetric clip [-c, c], K = 2^b levels", *why),
    )


# --------------------------------------------------------------------------------------------
# Panter-Dite
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _cube_root_integral(law: _Law) -> sp.Expr:
    """Closed form of int_R p^(1/3) (sympy integrate in symbolic parameters, then substituted)."""
    if law.kind == "pareto":
        m, a = sp.symbols("m a", positive=True)
        half = sp.integrate((1 + _X**2 / m) ** (-a), (_X, 0, sp.oo), conds="none")
        nu = law.nu
        val = half.subs({m: nu - 2, a: (nu + 1) / 6})
        return sp.simplify(2 * _student_t_coef(nu) ** sp.Rational(1, 3) * val)
    al, be = sp.symbols("alpha beta", positive=True)
    half = sp.integrate(sp.exp(-((_X / al) ** be) / 3), (_X, 0, sp.oo), conds="none")
    coef = be / (2 * al * sp.gamma(1 / be))
    expr = 2 * coef ** sp.Rational(1, 3) * half
    return sp.simplify(expr.subs({al: law.alpha, be: law.beta}))


def panter_dite_constant(law: str, *, nu=None, beta=None) -> Constant:
    r"""Panter-Dite constant :math:`C_{PD} = \frac1{12}\left(\int p^{1/3}\right)^3`.

    Lloyd-Max (optimal fixed-rate) quantization has
    :math:`D_{LM}(b) \sim C_{PD}\, 2^{-2b}` (Bennett's integral with the optimal point
    density :math:`\lambda \propto p^{1/3}`). Unit variance: Gaussian
    :math:`\sqrt3\pi/2`, Laplace :math:`9/2`; Student-t through
    :math:`\int(1+x^2/m)^{-a} = \sqrt{\pi m}\,\Gamma(a-\tfrac12)/\Gamma(a)` (a Beta
    function), generalized Gaussian through :math:`\Gamma(1+1/\beta)`.

    Parameters
    ----------
    law : str
        One of :data:`fmq_theory.vocab.LAWS`.
    nu, beta : float, optional
        Student-t degrees of freedom (> 2) / generalized-Gaussian shape (> 0).

    Returns
    -------
    Constant

    Raises
    ------
    ValueError
        As :func:`optimal_clip`: an unknown ``law``, or a shape parameter it refuses.
    """
    spec = _law(law, nu=nu, beta=beta)
    expr = sp.simplify(_cube_root_integral(spec) ** 3 / 12)
    return Constant(
        name=f"Panter-Dite constant, {law}{_param_text(spec)}",
        expression=expr,
        value=_num(expr),
        assumptions=(
            "unit variance",
            "high resolution (K -> oo); int p^(1/3) < oo",
            "D_LM(b) ~ C_PD * 2^(-2b) (Bennett 1948, Panter & Dite 1951)",
        ),
    )


def _param_text(spec: _Law) -> str:
    return "".join(f", {k}={v:g}" for k, v in spec.params)


# --------------------------------------------------------------------------------------------
# Equal-mass outer cells
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def exponential_cell_variance() -> Derivation:
    r"""Variance of the :math:`j`-th equal-mass cell (from the top) of an exponential tail.

    A tail :math:`P(X > x) \propto e^{-x}` cut into cells of equal mass has, by
    memorylessness, cell :math:`j` distributed as :math:`\mathrm{Exp}(1)` truncated to
    :math:`[0, L_j]`, :math:`L_j = \ln(j/(j-1))` (:math:`L_1 = \infty`). Sympy integrates the
    truncated variance :math:`1 - L^2 e^L/(e^L-1)^2` and substitutes :math:`e^{L_j} = j/(j-1)`:

    .. math:: v_j = 1 - j(j-1)\ln^2\frac{j}{j-1}\ (j \ge 2), \qquad v_1 = 1,

    and :math:`v_j = 1/(12 j^2) + O(j^{-3})`.

    Returns
    -------
    Derivation
        ``expression`` in the symbol ``j`` (valid for ``j >= 2``).
    """
    ell, y = sp.symbols("L y", positive=True)
    j = sp.Symbol("j", positive=True, integer=True)
    mass = sp.integrate(sp.exp(-y), (y, 0, ell))
    m1 = sp.integrate(y * sp.exp(-y), (y, 0, ell)) / mass
    m2 = sp.integrate(y**2 * sp.exp(-y), (y, 0, ell)) / mass
    var = sp.simplify(m2 - m1**2)
    # substitute e^L = j/(j-1) with L kept as an opaque symbol, then L = ln(j/(j-1))
    opaque = sp.Symbol("ell", positive=True)
    vj = sp.factor(sp.cancel(var.subs(sp.exp(ell), j / (j - 1)).subs(ell, opaque)))
    vj = vj.subs(opaque, sp.log(j / (j - 1)))
    return Derivation(
        name="variance of the j-th equal-mass cell of Exp(1), j >= 2",
        expression=vj,
        symbols=("j",),
        assumptions=("tail exactly exponential of rate 1 beyond the cell", "j >= 2; v_1 = 1"),
    )


def pareto_cell_variance(nu) -> Derivation:
    r"""Variance of the :math:`j`-th equal-mass cell of a Pareto(:math:`\nu`) tail, in units of its lower end.

    With :math:`P(Z > z) = z^{-\nu}` on :math:`z \ge 1`, cell :math:`j` (from the top, out
    of :math:`J`) is :math:`[ (J/j)^{1/\nu}, (J/(j-1))^{1/\nu} ]`; its variance is
    :math:`(J/j)^{2/\nu} w_j` with :math:`w_j` the variance of :math:`Z` truncated to
    :math:`[1, r_j]`, :math:`r_j^\nu = j/(j-1)`:

    .. math:: w_j = \frac{\nu j}{\nu-2}\left(1-r_j^{2-\nu}\right)
              - \left(\frac{\nu j}{\nu-1}\left(1-r_j^{1-\nu}\right)\right)^2,
              \qquad w_1 = \frac{\nu}{(\nu-1)^2(\nu-2)} .

    Parameters
    ----------
    nu : float
        Tail index, > 2.

    Returns
    -------
    Derivation
        ``expression`` in the symbol ``j`` (valid for ``j >= 2``).

    Raises
    ------
    ValueError
        ``nu`` is not a multiple of 1/2 in ``(2, 1000]``, or is above 125 when odd or above 82.5
        when a half-integer (the exact derivation does not finish there).
    """
    n = _law("student-t", nu=nu).nu
    z, r = sp.symbols("z r", positive=True)
    j = sp.Symbol("j", positive=True, integer=True)
    dens = n * z ** (-n - 1)
    mass = sp.integrate(dens, (z, 1, r), conds="none")
    m1 = sp.integrate(z * dens, (z, 1, r), conds="none") / mass
    m2 = sp.integrate(z**2 * dens, (z, 1, r), conds="none") / mass
    var = (m2 - m1**2).subs(r, (j / (j - 1)) ** (1 / n))
    return Derivation(
        name=f"variance of the j-th equal-mass cell of Pareto(nu={float(nu):g}), j >= 2",
        expression=sp.simplify(var),
        symbols=("j",),
        assumptions=("tail exactly Pareto: P(Z > z) = z^(-nu), z >= 1", "nu > 2", "j >= 2"),
    )


@lru_cache(maxsize=None)
def exponential_tail_sum() -> Constant:
    r"""The constant :math:`S = \sum_{j \ge 1} v_j \approx 1.0803` of exponential tails.

    The summed variances of all equal-mass cells of an exponential tail (rate 1), each
    cell of mass 1: :math:`S = 1 + \sum_{j\ge 2}\left(1 - j(j-1)\ln^2\frac{j}{j-1}\right)`.
    No closed form is claimed; the value is an mpmath ``nsum`` (30 digits).

    Returns
    -------
    Constant
    """
    j = sp.Symbol("j", positive=True, integer=True)
    vj = exponential_cell_variance().expression
    expr = 1 + sp.Sum(vj, (j, 2, sp.oo))
    f = sp.lambdify(j, vj, modules="mpmath")
    with mpmath.workdps(_PRECISION):
        value = 1 + mpmath.nsum(f, [2, mpmath.inf])
    return Constant(
        name="S: summed equal-mass cell variances of an Exp(1) tail",
        expression=expr,
        value=float(value),
        assumptions=("v_1 = 1 (the unbounded top cell)", "v_j = 1/(12 j^2) + O(j^-3)"),
    )


@lru_cache(maxsize=None)
def _pareto_tail_sum(nu: sp.Expr) -> tuple[sp.Expr, float]:
    j = sp.Symbol("j", positive=True, integer=True)
    wj = pareto_cell_variance(float(nu)).expression
    w1 = nu / ((nu - 1) ** 2 * (nu - 2))
    expr = w1 + sp.Sum(j ** (-2 / nu) * wj, (j, 2, sp.oo))
    f = sp.lambdify(j, j ** (-2 / nu) * wj, modules="mpmath")
    with mpmath.workdps(_PRECISION):
        value = mpmath.mpf(_num(w1)) + mpmath.nsum(f, [2, mpmath.inf])
    return expr, float(value)


def pareto_tail_sum(nu) -> Constant:
    r"""The constant :math:`T_\nu = \sum_{j\ge1} j^{-2/\nu} w_j` of Pareto tails.

    With :math:`w_j` from :func:`pareto_cell_variance`; the equal-mass distortion of a
    law with :math:`P(X>x) \sim (A/\nu)x^{-\nu}` is
    :math:`D_{EM} \sim 2 (A/\nu)^{2/\nu} T_\nu K^{2/\nu-1}`.

    Parameters
    ----------
    nu : float
        Tail index, > 2.

    Returns
    -------
    Constant

    Raises
    ------
    ValueError
        ``nu`` is not a multiple of 1/2 in ``(2, 1000]``, or is above 125 when odd or above 82.5
        when a half-integer (the exact derivation does not finish there).
    """
    n = _law("student-t", nu=nu).nu
    expr, value = _pareto_tail_sum(n)
    return Constant(
        name=f"T_nu: weighted cell variances of a Pareto(nu={float(nu):g}) tail",
        expression=expr,
        value=value,
        assumptions=("nu > 2", "w_j = 1/(12 nu^2 j^2) + O(j^-3), so the series converges"),
    )


# --------------------------------------------------------------------------------------------
# Sample range (min-max grid at finite n)
# --------------------------------------------------------------------------------------------


def sample_range_second_moment(law: str, *, n: int, nu=None, beta=None) -> Constant:
    r"""Extreme-value approximation of :math:`E[R_n^2]`, :math:`R_n` = range of :math:`n` iid draws.

    Gumbel domain (Gaussian, Laplace, generalized Gaussian): the maximum is
    :math:`b_n + a_n G` with :math:`b_n = F^{-1}(1-1/n)`, :math:`a_n = 1/(n p(b_n))`,
    :math:`G` standard Gumbel, the minimum its mirror image and asymptotically
    independent, so :math:`E[R_n^2] \approx (2b_n + 2\gamma a_n)^2 + \pi^2 a_n^2/3`.
    Fréchet domain (Student-t): the maximum is :math:`b_n Z`,
    :math:`P(Z\le z) = e^{-z^{-\nu}}`, so
    :math:`E[R_n^2] \approx 2 b_n^2 (\Gamma(1-2/\nu) + \Gamma(1-1/\nu)^2)`.

    Parameters
    ----------
    law : str
        One of :data:`fmq_theory.vocab.LAWS`.
    n : int
        Sample size (>= 2).
    nu, beta : float, optional
        Shape parameters.

    Returns
    -------
    Constant
        ``expression`` is the formula with :math:`b_n, a_n` substituted as floats
        (:math:`b_n` from ``scipy.stats``' inverse survival function).

    Raises
    ------
    ValueError
        As :func:`optimal_clip`: an unknown ``law``, or a shape parameter it refuses.
    """
    import scipy.stats as st

    spec = _law(law, nu=nu, beta=beta)
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n!r}")
    if spec.kind == "pareto":
        nuf = float(spec.nu)
        dist = st.t(nuf, scale=math.sqrt((nuf - 2) / nuf))
        bn = sp.Float(float(dist.isf(1.0 / n)), _PRECISION)
        expr = 2 * bn**2 * (sp.gamma(1 - 2 / spec.nu) + sp.gamma(1 - 1 / spec.nu) ** 2)
        why = "Frechet limit of the extremes: E[R^2] ~ 2 b_n^2 (Gamma(1-2/nu) + Gamma(1-1/nu)^2)"
    else:
        be, al = float(spec.beta), float(spec.alpha)
        dist = st.gennorm(be, scale=al)
        bnf = float(dist.isf(1.0 / n))
        bn = sp.Float(bnf, _PRECISION)
        an = sp.Float(1.0 / (n * float(dist.pdf(bnf))), _PRECISION)
        expr = (2 * bn + 2 * sp.EulerGamma * an) ** 2 + sp.pi**2 * an**2 / 3
        why = "Gumbel limit of the extremes: E[R^2] ~ (2 b_n + 2 gamma a_n)^2 + pi^2 a_n^2 / 3"
    return Constant(
        name=f"E[R_n^2], {law}{_param_text(spec)}, n={n}",
        expression=expr,
        value=_num(expr),
        assumptions=(
            "unit variance",
            "n iid draws; max and min asymptotically independent",
            why,
            "b_n = F^{-1}(1 - 1/n); relative error O(1/ln n) (light tails) or O(n^(-2/nu)) (Student-t)",
        ),
    )


# --------------------------------------------------------------------------------------------
# Leading forms per method
# --------------------------------------------------------------------------------------------


def _form(spec, method, expr, constant, assumptions, extra_params=()) -> AsymptoticForm:
    expr = sp.simplify(expr)
    exponent = sp.simplify(-sp.diff(sp.log(expr, 2), B))
    limit = sp.limit(exponent, B, sp.oo)
    return AsymptoticForm(
        law=spec.name,
        params=(*spec.params, *extra_params),
        method=method,
        expression=expr,
        constant=constant,
        constant_value=_num(constant),
        rate=sp.simplify(expr / constant),
        exponent=exponent,
        exponent_limit=float(limit),
        assumptions=("unit variance (D scales with the variance)", "K = 2^b levels", *assumptions),
    )


def _shape_kwargs(spec: _Law) -> dict:
    return {k: v for k, v in spec.params}


def _uniform_mse(spec: _Law) -> AsymptoticForm:
    clip, why = _optimal_clip(spec)
    granular = clip**2 / (3 * _K**2)
    if spec.kind == "pareto":
        nu = spec.nu
        # the overload term is a fixed fraction 2/(nu-2) of the granular term at the optimum
        expr = granular * nu / (nu - 2)
        constant = sp.simplify(expr * _K ** (2 - 4 / nu))
        tail = ("at the optimum the overload is 2/(nu-2) times the granular term: D = nu/(nu-2) c^2/(3K^2)",
                "relative error O(K^(-2/nu)) from the next term of the Student-t tail")
    else:
        expr = granular
        constant = sp.simplify(expr / (B ** (2 / spec.beta) * 4 ** (-B)))
        tail = ("the overload term is smaller than the granular term by O(1/ln K)",
                "relative error O(ln ln K / ln K) (clip equation solved to leading order)")
    granular_note = "D ~ c^2/(3K^2) (granular term, delta = 2c/(K-1) ~ 2c/K)"
    return _form(spec, "uniform_mse", expr, constant, (*why, granular_note, *tail))


def _lloyd_max(spec: _Law) -> AsymptoticForm:
    pd = panter_dite_constant(spec.name, **_shape_kwargs(spec))
    return _form(spec, "lloyd_max", pd.expression * 4 ** (-B), pd.expression, pd.assumptions[1:])


def _equal_mass(spec: _Law) -> AsymptoticForm:
    s = exponential_tail_sum()
    if spec.kind == "pareto":
        nu = spec.nu
        t = pareto_tail_sum(float(nu))
        a = _student_t_tail(nu)
        constant = sp.simplify(2 * (a / nu) ** (2 / nu)) * sp.Float(t.value, _PRECISION)
        expr = constant * _K ** (2 / nu - 1)
        why = (
            "tail P(X > x) ~ (A/nu) x^(-nu): the top cells are equal-mass cells of a Pareto tail, "
            "cell j (from the top) has variance (A K/(nu j))^(2/nu) w_j",
            f"D_EM ~ (2/K) sum_j (A K/(nu j))^(2/nu) w_j = 2 (A/nu)^(2/nu) T_nu K^(2/nu - 1), T_nu = {t.value:.12g}",
            "the inner cells (truncated Bennett integral int 1/p) are the j -> oo end of the same sum",
            "relative error O(K^(-2/nu)) from the next term of the Student-t tail",
        )
    else:
        al, be = spec.alpha, spec.beta
        # cell j from the top: locally Exp with rate h = beta u^(1-1/beta)/alpha at u = (x/alpha)^beta ~ ln K
        hazard = be * sp.log(_K) ** (1 - 1 / be) / al
        expr = 2 * sp.Float(s.value, _PRECISION) / (_K * hazard**2)
        constant = sp.simplify(expr * _K * B ** (2 - 2 / be))
        why = (
            "exponential-type tail: near the top quantile the law is locally exponential with "
            "rate h = beta u^(1-1/beta)/alpha, u = (x/alpha)^beta ~ ln K",
            f"D_EM ~ (2/K) S / h^2, S = sum_j v_j = {s.value:.12g} (the two tails' cells; "
            "the top cell alone gives v_1 = 1 of S)",
            "the inner cells (truncated Bennett integral int 1/p, dominated by its ends) are the "
            "j -> oo end of the same sum",
            "relative error O(ln ln K / ln K); exactly O(1/K) for the Laplace law (exponential tail)",
        )
    return _form(spec, "equal_mass", expr, constant, why)


def asymptotic_form(law: str, method: str, *, nu=None, beta=None, n: int = 2304) -> AsymptoticForm:
    r"""Leading high-resolution form of :math:`D_Q(b)` for one method on one law.

    Parameters
    ----------
    law : str
        One of :data:`fmq_theory.vocab.LAWS`.
    method : str
        One of :data:`fmq_theory.vocab.SYMBOLIC_METHODS`.
    nu : float, optional
        Student-t degrees of freedom, > 2 (required for ``student-t``).
    beta : float, optional
        Generalized-Gaussian shape, > 0 (required for ``gen-gaussian``).
    n : int, default 2304
        Group size for ``uniform_minmax`` (the range of the law itself is infinite); ignored
        by the other methods.

    Returns
    -------
    AsymptoticForm

    Raises
    ------
    ValueError
        An unknown ``method``; as :func:`optimal_clip`, an unknown ``law`` or a shape parameter it
        refuses.

    Examples
    --------
    >>> f = asymptotic_form("gaussian", "lloyd_max")
    >>> f.constant
    sqrt(3)*pi/2
    >>> round(f.exponent_limit, 12)
    2.0
    """
    spec = _law(law, nu=nu, beta=beta)
    if method not in SYMBOLIC_METHODS:
        raise ValueError(f"method must be one of {', '.join(SYMBOLIC_METHODS)}; got {method!r}")
    if method == "uniform_minmax":
        return _uniform_minmax_form(spec, n)
    return {"uniform_mse": _uniform_mse, "lloyd_max": _lloyd_max, "equal_mass": _equal_mass}[method](spec)


def _uniform_minmax_form(spec: _Law, n: int) -> AsymptoticForm:
    r2 = sample_range_second_moment(spec.name, n=n, **_shape_kwargs(spec))
    rr, kk = sp.symbols("R K", positive=True)
    constant = sp.Float(r2.value, _PRECISION) / 12
    expr = minmax_step_mse().expression.subs({rr: sp.sqrt(sp.Float(r2.value, _PRECISION)), kk: _K})
    return _form(
        spec,
        "uniform_minmax",
        expr,
        constant,
        (
            f"finite group of n = {n} iid weights (the law itself has infinite range)",
            "D ~ E[R_n^2] / (12 (K-1)^2): delta^2/12 with delta = R_n/(K-1)",
            f"E[R_n^2] ~ {r2.value:.6g}: {r2.assumptions[2]}",
            "fixed n, K -> oo",
        ),
        extra_params=(("n", float(n)),),
    )


def asymptotic_table(law: str, *, nu=None, beta=None, n: int = 2304) -> tuple[AsymptoticForm, ...]:
    """:func:`asymptotic_form` for every method of :data:`fmq_theory.vocab.SYMBOLIC_METHODS`, in that order.

    Raises
    ------
    ValueError
        As :func:`asymptotic_form`.
    """
    return tuple(asymptotic_form(law, m, nu=nu, beta=beta, n=n) for m in SYMBOLIC_METHODS)
