r"""Choosing among plans of several bit floors and code families by their sampled output law, data-free.

The knapsack of :mod:`fmq_theory.plan.core` is optimal for the additive, first-order model
:math:`\sum_i s_i e_i^2`, which holds while every weight error is small and uncorrelated.
Two kinds of option break it.  A 1-bit code is far outside the small-error regime.  And a code
that minimises the squared error clips or pools a group's extreme weights
(:data:`~fmq_theory.plan.candidates.CODE_FAMILIES` ``"optimal"``): its errors are largest, and
of one sign, exactly on the weights of largest magnitude, which the diagonal model prices as
if they were independent noise, while a min-max grid (``"minmax"``) keeps every group's range
at a larger squared error.  So the plan solves the knapsack once per *variant*: a bit floor
:math:`f` (every quantized option below :math:`f` bits removed) and a family (only that
family's quantized options; kept float tensors are in every family) and a *grouping* (``"any"``
granularity; ``"groups"``: a tensor that has grouped options of the family may use only those, as
HQQ and GGUF store every large matrix; ``"flat"``: one grouped code shared by every tensor that
has it, or full precision, as HQQ's and GGUF's files), and samples each
variant from the plan's own Gaussian noise :math:`z_1..z_n` with the deployed solver, next to
the full-precision samples :math:`y_b = x_N(\theta; z_b)`.  With
:math:`x_b = x_N(\hat\theta_v; z_b)` and :math:`D` entries per sample, two scores are kept.

The *distribution shift* ranks the variants: the squared 2-Wasserstein distance between the
two sample sets' diagonal Gaussian fits, per entry,

.. math::

    \hat w_v = \frac1D \sum_{j=1}^{D} \big[(\bar x_j - \bar y_j)^2 + (s_{x,j} - s_{y,j})^2\big],

(:math:`\bar x_j, s_{x,j}` the mean and unbiased standard deviation of entry :math:`j` over the
draws; for Gaussians with diagonal covariances this is their exact :math:`W_2^2`, Givens & Shortt
1984), with a paired percentile-bootstrap interval over the noise draws.  The plan keeps the
variant of least :math:`\hat w_v` (ties: the lower floor, then the family named first).

The *displacement* is reported beside it: the mean squared distance of each sample from its
own full-precision twin,

.. math::

    \hat m_v = \frac1n \sum_{b=1}^{n} d_b,\qquad d_b = \frac1D \|x_b - y_b\|^2 ,

with the Student-t interval :math:`\hat m_v \pm t_{n-1}\,\mathrm{sd}(d)/\sqrt n` (clipped at 0).
It was the ranking score until the GPU measured every variant
(``results/plan_variants_gpu.json``, ``scripts/gpu_plan_variants.py``: 5,000 samples per
variant, classifier FID): a FID compares laws, not pairs, and a variant can move each sample
far from its twin (large :math:`\hat m_v`) while the law of the samples moves little.  On the
FashionMNIST DiT at 2 bits per weight the least-displacement variant measured a FID change of
387 where the least-shift one measured 219; over the ten (model, budget) cells of that file the
least-shift variant is the measured best or second best in every one.  Both scores need only
the model and Gaussian noise, like the sensitivity.

Examples
--------
>>> import torch
>>> lin = torch.nn.Linear(2, 2, bias=False)
>>> _ = torch.nn.init.eye_(lin.weight)
>>> class Field(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.lin = lin
...     def forward(self, x, t):
...         return self.lin(x)
>>> noise = torch.ones(3, 2)
>>> ref = sampled(Field(), Field().state_dict(), noise, solver="euler", steps=1)
>>> ref[0].tolist()  # x_1 = x_0 + W x_0 with W = I
[2.0, 2.0]
>>> half = {"lin.weight": 0.5 * torch.eye(2)}
>>> moved = sampled(Field(), half, noise, solver="euler", steps=1)
>>> displacement(moved, ref)  # (2 - 1.5)^2
(0.25, 0.25, 0.25)
>>> distribution_shift(moved, ref)  # the means move by 0.5, the spreads (0) not at all
(0.25, 0.25, 0.25)
>>> def score(floor, shift):
...     return VariantScore(floor=floor, bits_per_weight=2.0, additive=1.0, sampled_msd=0.1, sampled_low=0.0,
...                         sampled_high=0.2, sampled_shift=shift, shift_low=shift, shift_high=shift)
>>> choose_variant((score(1, 0.3), score(2, 0.1))).floor
2
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from scipy import stats

from fmq_theory._util import check_positive_int
from fmq_theory.flow.solvers import sample
from fmq_theory.plan.candidates import CODE_FAMILIES
from fmq_theory.flow.velocity import XT, Adapter, placement, with_parameters

__all__ = ["GROUPINGS", "VariantScore", "check_bit_floors", "check_families", "check_groupings", "choose_variant",
           "diagonal_w2", "displacement", "distribution_shift", "sampled", "shift_difference"]

#: Allowed bit floors (code bits of the packed format up to a 16-bit kept tensor).
FLOOR_RANGE = (1, 16)

#: Granularities a variant may use: every one, only groups on tensors that have grouped options, or
#: one shared grouped code on every tensor that has it (:func:`fmq_theory.plan.core.variant_option_sets`).
GROUPINGS = ("any", "groups", "flat")
#: How a variant's codes are chosen on its options' levels: each weight to its nearest level, or
#: column by column against the layer's inputs (:func:`fmq_theory.plan.compensation.compensated`).
ROUNDINGS = ("nearest", "compensated")

#: Bootstrap resamples of :func:`distribution_shift`'s interval (and by default :func:`shift_difference`'s),
#: and the seed of their draws.
SHIFT_RESAMPLES, SHIFT_SEED = 400, 0


@dataclass(frozen=True)
class VariantScore:
    """One variant of a plan: the knapsack's solution with no quantized option below ``floor`` bits,
    and none outside ``family``.

    Attributes
    ----------
    floor : int
        Least code bits of a quantized option the variant could use (kept float tensors are
        always allowed).
    bits_per_weight : float
        Honest bits per weight of the variant.
    additive : float
        Its additive predicted :math:`\\sum_i \\hat s_i e_i^2` (the knapsack's objective, with
        the scoring sensitivity), per sample.
    sampled_msd : float
        Sampled mean squared displacement of the final samples from the full-precision ones,
        per entry (:func:`displacement`), from the plan's noise.
    sampled_low, sampled_high : float
        Its Student-t interval over the noise draws, at the plan's level.
    family : str
        The key of :data:`~fmq_theory.plan.candidates.CODE_FAMILIES` whose quantized options
        the variant could use (plans saved before families existed read as ``"optimal"``).
    sampled_shift : float or None
        Sampled distribution shift per entry (:func:`distribution_shift`), the ranking score;
        ``None`` only in plans saved before it existed (they were ranked by ``sampled_msd``).
    shift_low, shift_high : float or None
        Its bootstrap interval over the noise draws, at the plan's level.
    grouping : str
        One of :data:`GROUPINGS` (plans saved before groupings existed read as ``"any"``).
    rounding : str
        One of :data:`ROUNDINGS`: the codes by round-to-nearest, or by error-compensating rounding on the
        same levels (:mod:`fmq_theory.plan.compensation`; plans saved before it existed read as
        ``"nearest"``).
    """

    floor: int
    bits_per_weight: float
    additive: float
    sampled_msd: float
    sampled_low: float
    sampled_high: float
    family: str = "optimal"
    sampled_shift: float | None = None
    shift_low: float | None = None
    shift_high: float | None = None
    grouping: str = "any"
    rounding: str = "nearest"


def check_bit_floors(bit_floors) -> tuple:
    """``bit_floors`` as a tuple of ints, checked: non-empty, each an int in 1..16, no repeats.

    >>> check_bit_floors([1, 2])
    (1, 2)

    Raises
    ------
    ValueError
        Naming ``bit_floors`` and the bad value.
    """
    low, high = FLOOR_RANGE
    if isinstance(bit_floors, (str, bytes)) or not isinstance(bit_floors, Sequence) or not bit_floors:
        raise ValueError(f"bit_floors={bit_floors!r} must be a non-empty sequence of ints in {low}..{high}")
    for f in bit_floors:
        if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or not low <= f <= high:
            raise ValueError(f"bit_floors={bit_floors!r}: {f!r} is not an int in {low}..{high}")
    floors = tuple(int(f) for f in bit_floors)
    if len(set(floors)) != len(floors):
        raise ValueError(f"bit_floors={bit_floors!r} repeats a floor")
    return floors


def check_families(families) -> tuple:
    """``families`` as a tuple of keys of :data:`~fmq_theory.plan.candidates.CODE_FAMILIES`, checked.

    >>> check_families(["optimal", "minmax"])
    ('optimal', 'minmax')

    Raises
    ------
    ValueError
        Naming ``families`` and the bad value: empty, not a family, or repeated.
    """
    return _distinct(families, name="families", allowed=sorted(CODE_FAMILIES), item="family")


def check_groupings(groupings) -> tuple:
    """``groupings`` as a tuple of :data:`GROUPINGS`, checked.

    >>> check_groupings(["any", "groups"])
    ('any', 'groups')

    Raises
    ------
    ValueError
        Naming ``groupings`` and the bad value: empty, not a grouping, or repeated.
    """
    return _distinct(groupings, name="groupings", allowed=list(GROUPINGS), item="grouping")


def check_roundings(roundings) -> tuple:
    """``roundings`` as a tuple of :data:`ROUNDINGS`, checked.

    >>> check_roundings(["nearest", "compensated"])
    ('nearest', 'compensated')

    Raises
    ------
    ValueError
        Naming ``roundings`` and the bad value: empty, not a rounding, or repeated.
    """
    return _distinct(roundings, name="roundings", allowed=list(ROUNDINGS), item="rounding")


def _distinct(values, *, name: str, allowed: list, item: str) -> tuple:
    """``values`` as a tuple, checked: a non-empty sequence (not a string) of distinct members of ``allowed``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{name}={values!r} must be a non-empty sequence of {allowed}")
    for v in values:
        if v not in allowed:
            raise ValueError(f"{name}={values!r}: {v!r} is not one of {allowed}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name}={values!r} repeats a {item}")
    return tuple(values)


def sampled(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], noise: torch.Tensor, *,
            adapter: Adapter = XT(), solver: str = "midpoint", steps: int = 10) -> torch.Tensor:
    """Final samples of ``model`` with the weights ``state_dict``, from ``noise`` (``model`` is left unchanged).

    The model is called with ``state_dict`` in place of its parameters and buffers
    (:func:`~fmq_theory.flow.velocity.with_parameters`) on its own device and dtype and
    sampled by :func:`fmq_theory.flow.solvers.sample`; returns the samples on the CPU in
    float32.
    """
    device, dtype = placement(model, like=noise)
    call = with_parameters(model, {k: v.to(device) for k, v in state_dict.items()})
    with torch.no_grad():
        return sample(call, noise.to(device=device, dtype=dtype), adapter=adapter, solver=solver, steps=steps).x


def displacement(samples: torch.Tensor, reference: torch.Tensor, *, level: float = 0.95) -> tuple:
    """``(msd, low, high)``: mean over samples of the per-entry squared displacement, with its interval.

    ``msd`` is :math:`\\hat m` of the module docstring; ``low``/``high`` its Student-t interval
    over the samples at ``level`` (both ``msd`` with a single sample), ``low`` clipped at 0.
    """
    d = ((samples.double() - reference.double()) ** 2).reshape(samples.shape[0], -1).mean(dim=1).numpy()
    msd = float(d.mean())
    if d.size < 2:
        return msd, msd, msd
    half = float(stats.t.ppf(0.5 + level / 2, df=d.size - 1)) * float(np.std(d, ddof=1)) / math.sqrt(d.size)
    return msd, max(msd - half, 0.0), msd + half


def diagonal_w2(a, b) -> float:
    r"""Squared W2 between the diagonal Gaussian fits of two sample sets, per entry: :math:`\hat w`.

    .. math::

        \hat w = \frac1D \sum_{j=1}^{D} \big[(\bar a_j - \bar b_j)^2 + (s_{a,j} - s_{b,j})^2\big]

    (means and unbiased standard deviations over the first axis; every other axis is an entry).
    The point estimate of :func:`distribution_shift`, for any feature sets: the pixels, pooled
    pixels or a network's features.

    Parameters
    ----------
    a, b : array_like or torch.Tensor, shape ``(n, ...)`` and ``(m, ...)``
        Draws along the first axis, ``n, m >= 2``, the same entries.

    Raises
    ------
    ValueError
        If the entries differ, a set has fewer than two draws, or a value is not finite.

    Examples
    --------
    >>> diagonal_w2([[0.0], [2.0]], [[1.0], [5.0]])  # (1 - 3)^2 + (sqrt(2) - sqrt(8))^2
    6.0
    """
    x, y = (np.asarray(torch.as_tensor(v).double().reshape(len(v), -1)) for v in (a, b))
    if x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise ValueError(f"a {x.shape} and b {y.shape}: need the same entries and at least two draws each")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a and b must be finite")
    return _diagonal_w2(x, y)


def _diagonal_w2(x: np.ndarray, y: np.ndarray) -> float:
    """:func:`diagonal_w2` of checked float64 arrays ``(n, D)`` (the bootstrap's inner loop)."""
    return float(np.mean((x.mean(0) - y.mean(0)) ** 2 + (x.std(0, ddof=1) - y.std(0, ddof=1)) ** 2))


def distribution_shift(samples: torch.Tensor, reference: torch.Tensor, *, level: float = 0.95) -> tuple:
    """``(shift, low, high)``: squared W2 between the diagonal Gaussian fits of two paired sample sets, per entry.

    ``shift`` is :math:`\\hat w` of the module docstring (:func:`diagonal_w2`); ``low``/``high`` the percentile
    interval at ``level`` of :data:`SHIFT_RESAMPLES` paired bootstrap resamples of the draws
    (the same draws for both sets, seeded by :data:`SHIFT_SEED`; both ``shift`` with fewer than
    three draws).  The plug-in estimate is biased upward by about :math:`\\mathrm{var}(x_j - y_j)/n`
    per entry in its mean term (and alike in its spread term), which is small for paired samples of
    close variants; the interval is that of the estimate over the draws, and covered the population
    value in 35 of 40 paired replicates at :math:`n = 200` in the tests (nominal 95%).

    Raises
    ------
    ValueError
        If ``samples`` and ``reference`` differ in shape or hold fewer than two draws.
    """
    x, y = _paired_rows(samples=samples, reference=reference)
    return _paired_bootstrap(lambda rows: _diagonal_w2(x[rows], y[rows]), n=x.shape[0], level=level,
                             resamples=SHIFT_RESAMPLES)


def shift_difference(samples: torch.Tensor, other: torch.Tensor, reference: torch.Tensor, *, level: float = 0.95,
                     resamples: int = SHIFT_RESAMPLES) -> tuple:
    """``(d, low, high)``: :func:`distribution_shift` of ``samples`` minus that of ``other``, both against
    ``reference``, with a paired bootstrap interval.

    The three sets are sampled from the same draws of noise, so every resample takes the same draws
    of all three (seeded by :data:`SHIFT_SEED`, as :func:`distribution_shift`).  Two variants whose
    single intervals overlap may still differ by far more than the noise of their difference:
    ``low > 0`` says ``samples`` moves the law more than ``other`` beyond that noise.

    Raises
    ------
    ValueError
        If the three sets differ in shape or hold fewer than two draws.

    Examples
    --------
    >>> import torch
    >>> ref = torch.linspace(-1, 1, 8).reshape(4, 2)
    >>> round(shift_difference(ref + 0.5, ref + 0.25, ref)[0], 6)  # 0.25 - 0.0625
    0.1875
    """
    x, y, r = _paired_rows(samples=samples, other=other, reference=reference)
    return _paired_bootstrap(lambda rows: _diagonal_w2(x[rows], r[rows]) - _diagonal_w2(y[rows], r[rows]),
                             n=x.shape[0], level=level, resamples=check_positive_int(resamples, name="resamples"))


def _paired_rows(**sets: torch.Tensor) -> tuple:
    """The sets, in the order given, as float64 arrays ``(n, D)``, after checking they have one shape and at
    least two draws (the error names each set by its keyword)."""
    shapes = {name: tuple(v.shape) for name, v in sets.items()}
    if len(set(shapes.values())) > 1 or next(iter(shapes.values()))[0] < 2:
        raise ValueError(f"{' and '.join(f'{name} {shape}' for name, shape in shapes.items())} must have one "
                         f"shape with at least two draws")
    return tuple(v.double().reshape(v.shape[0], -1).numpy() for v in sets.values())


def _paired_bootstrap(statistic, *, n: int, level: float, resamples: int) -> tuple:
    """``(value, low, high)``: ``statistic`` of all ``n`` draws and the percentile interval at ``level`` of
    ``resamples`` bootstrap resamples of the draws (seeded by :data:`SHIFT_SEED`), widened to hold the
    value; both the value with fewer than three draws."""
    value = statistic(np.arange(n))
    if n < 3:
        return value, value, value
    draws = np.random.default_rng(SHIFT_SEED).integers(0, n, size=(resamples, n))
    low, high = np.quantile([statistic(rows) for rows in draws], [0.5 - level / 2, 0.5 + level / 2])
    return value, float(min(low, value)), float(max(high, value))


def choose_variant(scores: Sequence[VariantScore]) -> VariantScore:
    """The variant of least sampled distribution shift; among equal ones, the lowest floor, then the first given
    (the plan gives them family by family, floors within a family, groupings within a floor, round-to-nearest
    before compensated within a grouping).

    Raises
    ------
    ValueError
        If ``scores`` is empty or a variant has no ``sampled_shift`` (a plan saved before it existed).
    """
    if not scores or any(v.sampled_shift is None for v in scores):
        raise ValueError(f"scores must be a non-empty sequence of VariantScore with sampled_shift, got {scores!r}")
    return min(scores, key=lambda v: (v.sampled_shift, v.floor))
