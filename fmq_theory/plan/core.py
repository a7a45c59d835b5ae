r"""``plan_quantization``: a data-free mixed-precision plan, optimal for the additive model.

For every floating tensor :math:`t` of the model the plan picks one option :math:`j`
(a :class:`~fmq_theory.plan.candidates.Candidate`: method, bits, grouping, storage dtype)
to minimise the first-order predicted displacement of the generated samples

.. math::

    \Delta(j_1..j_T) = \sum_t \sum_{i \in t} s_i\, e_{t j_t, i}^2
    \quad\text{subject to}\quad \sum_t \text{bytes}_{t j_t} \le \lfloor b_{\max} N / 8 \rfloor ,

where :math:`s_i` is the per-weight sensitivity of the sampler's output
(:mod:`fmq_theory.plan.sensitivity`, from Gaussian noise only), :math:`e` the weight error of
the fitted option and bytes its exact size in the quantized file.  Each tensor's term is a
sum of per-weight terms, so the predicted degradation is additive over tensors and the
allocation is a multiple-choice knapsack, solved exactly by
:func:`fmq_theory.plan.knapsack.solve_mckp` (optimality: ``proofs/plan_allocation.md``).

The honest bits per weight are the exact data bytes of the written file (every packed
code, codebook, scale and kept tensor at its stored dtype) times 8 over the number of
floating weights :math:`N` of the state dict; the safetensors header (names, shapes, the
plan's JSON) is reported separately by :func:`fmq_theory.io.quantized_file.inspect_quantized`.

Float buffers (not parameters; the sampler has no gradient for them) are kept at their
dtype and counted.  No training or test data is used anywhere.

The additive model is first order and diagonal: it holds while every weight error is small
and uncorrelated, and neither a 1-bit code nor a code that clips a group's extreme weights
is.  So the knapsack is solved once per *variant*, a bit floor :math:`f` (``bit_floors``:
every quantized option of fewer than :math:`f` bits removed) and a code family
(``families``: only the MSE-optimal codes, or only the min-max grids, beside the kept
tensors) and a grouping (``groupings``: any granularity, or only groups where a tensor has
them), and the variants are sampled from the plan's own noise and ranked by how far the
law of their final samples moved from the full-precision one (the squared W2 of diagonal
Gaussian fits, :mod:`fmq_theory.plan.selection`).

Examples
--------
>>> import torch
>>> class Field(torch.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.lin = torch.nn.Linear(32, 32)
...     def forward(self, x, t):
...         return self.lin(x)
>>> _ = torch.manual_seed(0)
>>> plan = plan_quantization(Field(), budget_bits=4.0, noise=torch.randn(32, 32), solver="euler",
...                          steps=2, replicates=4, progress=False)
>>> plan.bits_per_weight <= 4.0, plan.data_free, len(plan.choices)
(True, True, 2)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from fmq_theory._util import check_positive_int
from fmq_theory.flow.checks import check_noise
from fmq_theory.flow.solvers import make_noise
from fmq_theory.flow.velocity import XT, Adapter
from fmq_theory.io.quantized_file import inspect_quantized, load_quantized, save_quantized
from fmq_theory.plan.candidates import (CODE_FAMILIES, Candidate, FittedCandidate, KEPT_METHODS, default_candidates,
                                        dequantized, fit_candidate, fit_options, scored_candidate)
from fmq_theory.plan.compensation import compensated, input_moments
from fmq_theory.plan.knapsack import solve_mckp
from fmq_theory.plan.selection import (VariantScore, check_bit_floors, check_families, check_groupings,
                                       check_roundings, choose_variant,
                                       displacement, distribution_shift, sampled)
from fmq_theory.plan.sensitivity import WeightSensitivity, weight_sensitivity
from fmq_theory.quantizers import (QuantizedStateDict, QuantizedTensor, TensorReport, format_granularity,
                                   parse_granularity, serial_kernels)
from fmq_theory.theory.wasserstein import quantization_w2

__all__ = ["FittedCandidates", "PredictedDelta", "QuantizationPlan", "TensorChoice", "compensated_option",
           "fit_candidates", "load_fitted", "load_plan", "plan_quantization", "variant_option_sets", "variant_options",
           "variant_state"]

#: Text printed with every plan.
DATA_FREE_NOTE = ("data-free: sensitivities come from the model's own sampling trajectories started from "
                  "Gaussian noise; no training or test images were used")


@dataclass(frozen=True)
class TensorChoice:
    """The option chosen for one tensor.

    Attributes
    ----------
    name : str
    method : str
        ``lloyd_max``, ``weighted_lloyd``, ``uniform_mse``, ``normal_float``, ``float16``
        or ``float32``.
    bits : int
        Code bits (16/32 for a kept tensor).
    granularity : str
    storage : str
        Dtype of the side information (or of the kept tensor).
    n_weights : int
    nbytes : int
        Exact data bytes of the tensor in the file.
    bits_per_weight : float
        ``8 * nbytes / n_weights``.
    mse : float
        Mean squared weight error.
    gain : float
        Mean per-weight sensitivity :math:`\\bar s_t` (0 for a buffer).
    predicted : float
        Predicted contribution :math:`\\sum_{i \\in t} s_i e_i^2`.
    """

    name: str
    method: str
    bits: int
    granularity: str
    storage: str
    n_weights: int
    nbytes: int
    bits_per_weight: float
    mse: float
    gain: float
    predicted: float


@dataclass(frozen=True)
class PredictedDelta:
    """Predicted degradation of the plan with its interval.

    Attributes
    ----------
    value : float
        :math:`\\sum_t \\sum_i \\hat s_i e_i^2`: predicted mean over samples of
        :math:`|x_N(\\hat\\theta) - x_N(\\theta)|^2` (summed over the sample's entries), first
        order, noise model of uncorrelated weight errors.
    low, high : float
        Student-t interval over the sensitivity replicates (the Monte Carlo error of
        :math:`\\hat s` only; not the error of the first-order model).
    level : float
    per_entry : float
        ``value`` divided by the number of entries of one sample: the predicted
        sample-level MSE against the full-precision model from the same noise.
    """

    value: float
    low: float
    high: float
    level: float
    per_entry: float


@dataclass(frozen=True, eq=False)
class QuantizationPlan:
    """A mixed-precision quantization of a model's state dict.

    Attributes
    ----------
    quantized : QuantizedStateDict
        Every floating tensor: quantized ones in ``quantized``, kept ones (at their kept
        dtype) and non-floating entries in ``passthrough``.
    choices : tuple of TensorChoice
        One per floating tensor, in state-dict order.
    budget_bits : float
    bits_per_weight : float
        Honest: ``8 * total_bytes / n_weights`` (``<= budget_bits``).
    total_bytes : int
        Data bytes of the file: every packed code, side array and kept tensor.
    n_weights : int
        Floating weights of the state dict.
    predicted_delta : PredictedDelta
    dual_bound : float
        Lagrangian lower bound on the additive model's optimum over the chosen variant's
        options (``<= predicted_delta.value``).
    settings : dict
        How the sensitivity was estimated (samples, projections, replicates, solver, steps,
        seed), the candidate count, the bit floors, code families and groupings tried
        (``bit_floors``, ``families``, ``groupings``) and the variant chosen (``bit_floor``,
        ``family``, ``grouping``; plans saved before groupings have no such keys), and the plan's
        wall time.
    data_free : bool
        Always ``True``.
    variants : tuple of VariantScore
        Every feasible variant of the plan (one per family, bit floor and grouping) with its
        additive prediction and sampled scores, family by family in the order of ``families``,
        floors in the order of ``bit_floors``, groupings in the order of ``groupings``; empty
        when one of each was given (nothing was sampled).
    """

    quantized: QuantizedStateDict
    choices: tuple
    budget_bits: float
    bits_per_weight: float
    total_bytes: int
    n_weights: int
    predicted_delta: PredictedDelta
    dual_bound: float
    settings: Mapping
    data_free: bool = True
    variants: tuple = ()

    def state_dict(self) -> dict:
        """The dequantized state dict, every tensor in its original dtype (CPU)."""
        out = {}
        for choice in self.choices:
            value = self.quantized.quantized.get(choice.name)
            original = self.settings["dtypes"][choice.name]
            if value is not None:
                out[choice.name] = dequantized(value)
            else:
                out[choice.name] = self.quantized.passthrough[choice.name].to(getattr(torch, original))
        return {k: out.get(k, self.quantized.passthrough.get(k)) for k in self.quantized.keys}

    def _document(self) -> dict:
        return {
            "budget_bits": self.budget_bits,
            "bits_per_weight": self.bits_per_weight,
            "total_bytes": self.total_bytes,
            "n_weights": self.n_weights,
            "predicted_delta": asdict(self.predicted_delta),
            "dual_bound": self.dual_bound,
            "settings": dict(self.settings),
            "data_free": self.data_free,
            "choices": [asdict(c) for c in self.choices],
            "variants": [asdict(v) for v in self.variants],
        }

    def save(self, path, *, metadata: Mapping | None = None):
        """Write the plan as a quantized ``.safetensors`` file (atomically); see :func:`load_plan`.

        Returns the :class:`~fmq_theory.io.quantized_file.QuantizedFileInfo`; its
        ``data_bytes`` equals :attr:`total_bytes` plus the bytes of non-floating entries.
        """
        document = {"command": "fmq plan", **dict(metadata or {}), "plan": self._document()}
        return save_quantized(path, self.quantized, metadata=document)

    def report(self) -> str:
        """The per-tensor table (choice, bits, MSE, predicted contribution), totals and the variants."""
        width = max(len("tensor"), *(len(c.name) for c in self.choices))
        lines = [f"{'tensor':<{width}}  {'n':>8}  {'choice':<28}  {'bits/w':>7}  {'MSE':>10}  "
                 f"{'gain':>10}  {'predicted':>10}"]
        for c in self.choices:
            label = Candidate(c.method, c.bits, c.granularity, c.storage).label
            lines.append(f"{c.name:<{width}}  {c.n_weights:>8}  {label:<28}  {c.bits_per_weight:7.3f}  "
                         f"{c.mse:10.3e}  {c.gain:10.3e}  {c.predicted:10.3e}")
        d = self.predicted_delta
        lines.append(f"honest bits/weight {self.bits_per_weight:.4f} (budget {self.budget_bits}); "
                     f"{self.total_bytes} data bytes for {self.n_weights} weights")
        lines.append(f"predicted E|dx|^2 per sample {d.value:.4e} ({100 * d.level:.0f}% interval "
                     f"{d.low:.4e}..{d.high:.4e}; per entry {d.per_entry:.4e}); Lagrangian bound {self.dual_bound:.4e}")
        s = self.settings
        lines.append(f"sensitivity: {s['n_samples']} noise samples, {s['projections']} projection(s), "
                     f"{s['replicates']} replicates, {s['solver']} {s['steps']} steps, seed {s['seed']}")
        if s.get("rounding") == "compensated":
            lines.append("codes: error-compensating rounding of every linear and convolution weight on its option's "
                         "levels, against its inputs' second moment over the model's own sampling from the noise")
        if self.variants:
            lines.append(f"variants by code family and bit floor, sampled from {s['selection_samples']} noise draws "
                         f"(per entry, {100 * d.level:.0f}% intervals: shift of the samples' law, which chooses, "
                         f"and displacement of the samples, from full precision):")
            chosen = (s.get("family", "optimal"), s["bit_floor"], s.get("grouping", "any"), s.get("rounding", "nearest"))
            several = len(s.get("roundings", ["nearest"])) > 1
            for v in self.variants:
                mark = "  <- chosen" if (v.family, v.floor, v.grouping, v.rounding) == chosen else ""
                shift = ("" if v.sampled_shift is None else
                         f"shift {v.sampled_shift:.4e} ({v.shift_low:.4e}..{v.shift_high:.4e}), ")
                rounding = f" {v.rounding:<11}" if several else ""
                lines.append(f"  floor {v.floor:>2} bits {v.family:<14} {v.grouping:<6}{rounding}: "
                             f"{v.bits_per_weight:.4f} bits/w, "
                             f"additive {v.additive:.4e}, {shift}"
                             f"sampled {v.sampled_msd:.4e} ({v.sampled_low:.4e}..{v.sampled_high:.4e}){mark}")
        lines.append(DATA_FREE_NOTE)
        return "\n".join(lines)


def _floating_names(state: Mapping) -> list[str]:
    """The names of ``state``'s non-empty floating tensors: the tensors a plan fits options for."""
    return [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and v.numel() > 0]


def _candidates_for(candidates, name: str, shape: tuple, n: int) -> tuple:
    if candidates is None:
        return default_candidates(shape, n_weights=n)
    if callable(candidates):
        found = tuple(candidates(name, shape, n))
    else:
        found = tuple(candidates)
    if not found or not all(isinstance(c, Candidate) for c in found):
        raise ValueError(f"candidates for {name!r} must be a non-empty sequence of Candidate")
    return found


def _check_held_out(replicates: int) -> None:
    """``ValueError`` naming ``replicates`` if held-out scoring cannot split them in halves of at least 2."""
    if replicates < 4:
        raise ValueError(f"replicates={replicates}: held-out scoring needs at least 4 sensitivity replicates (half to "
                         "fit the codebooks, half to score them with an interval); use replicates >= 4 or held_out=False")


def _make_noise(noise, n_samples, seed, event_shape):
    if noise is not None:
        check_noise(noise)
        return noise
    if event_shape is None:
        raise ValueError("give noise, or event_shape (with n_samples and seed) to draw it")
    return make_noise(n_samples, tuple(event_shape), seed=seed)


@dataclass(frozen=True, eq=False)
class FittedCandidates:
    """Every option of every floating tensor, fitted and scored once, for any number of budgets.

    Attributes
    ----------
    names : tuple of str
        The floating tensors, in state-dict order.
    fitted : tuple of tuple of FittedCandidate
        The options of each tensor that could be stored.
    costs : tuple of numpy.ndarray
        Exact file bytes of each option.
    values : tuple of numpy.ndarray
        Predicted :math:`\\sum_i s_i e_i^2` of each option, with the scoring sensitivity.
    sensitivity : WeightSensitivity
        The whole estimate.
    fit_sensitivity, score_sensitivity : WeightSensitivity
        The halves the codebooks were fitted to and the options scored with (both the whole
        estimate when ``held_out`` is ``False``).
    held_out : bool
    seconds : float
        Wall time of the fitting.
    keep_codes : bool
        Whether every option holds what a file of it would (:attr:`FittedCandidate.stored`), or
        only its cost and prices, a chosen option being fitted again by :meth:`option`.
    """

    names: tuple
    fitted: tuple
    costs: tuple
    values: tuple
    sensitivity: WeightSensitivity
    fit_sensitivity: WeightSensitivity
    score_sensitivity: WeightSensitivity
    held_out: bool
    seconds: float
    keep_codes: bool = True

    def option(self, t: int, j: int, *, state: Mapping) -> FittedCandidate:
        """Option ``j`` of tensor ``t`` with what a file of it holds: as kept, or, for a fit made
        with ``keep_codes=False``, fitted again to ``state[names[t]]`` (the same codes, levels and
        side arrays: a candidate's fit depends on the tensor and the fitting sensitivity alone).

        Raises
        ------
        ValueError
            The fit again does not cost what the option was priced at (``state`` holds other
            weights than the ones fitted).
        """
        f = self.fitted[t][j]
        if f.stored is not None:
            return f
        name = self.names[t]
        again = fit_candidate(state[name].detach().cpu(), f.candidate, sensitivity=self.fit_sensitivity.diag.get(name))
        if again is None or again.nbytes != f.nbytes:
            raise ValueError(f"state: {name!r} fitted again as {f.candidate.label!r} does not cost the "
                             f"{f.nbytes} bytes it was priced at (other weights than the fitted ones?)")
        return replace(f, stored=again.stored)

    def save(self, path, *, model: torch.nn.Module, metadata: Mapping | None = None) -> None:
        """Write the fit to ``path`` (an uncompressed ``.npz``, no pickles), atomically; see :func:`load_fitted`.

        Stored: every option's candidate, cost, score and what the file of a plan would hold
        (codes, levels and side arrays, or the kept tensor's bytes), the whole sensitivity
        estimate, the fit's wall time, a SHA-256 of ``model``'s fitted tensors and
        ``metadata`` (JSON).  The squared errors are not stored (8 bytes a weight an option);
        :func:`load_fitted` computes them again from ``model``.

        Raises
        ------
        ValueError
            A fit made with ``keep_codes=False`` (it holds no codes to save).
        """
        if not self.keep_codes:
            raise ValueError("a fit made with keep_codes=False holds no codes to save; fit with keep_codes=True")
        path = os.fspath(path)
        arrays, tensors = {}, []
        for t, (fits, cost, value) in enumerate(zip(self.fitted, self.costs, self.values)):
            arrays[f"t{t}.costs"], arrays[f"t{t}.values"] = cost, value
            options = []
            for j, f in enumerate(fits):
                key, entry = f"t{t}.o{j}", {"candidate": asdict(f.candidate), "nbytes": f.nbytes}
                if isinstance(f.stored, QuantizedTensor):
                    qt = f.stored
                    entry["quantized"] = {"method": qt.method, "bits": qt.bits,
                                          "granularity": format_granularity(qt.granularity), "shape": list(qt.shape),
                                          "dtype": qt.dtype, "framework": qt.framework, "device": qt.device,
                                          "stored": list(qt.stored)}
                    arrays[f"{key}.codes"], arrays[f"{key}.levels"] = qt.codes, qt.levels
                    arrays.update({f"{key}.stored.{k}": np.asarray(v) for k, v in qt.stored.items()})
                else:
                    entry["kept"] = {"dtype": str(f.stored.dtype).removeprefix("torch."), "shape": list(f.stored.shape)}
                    arrays[f"{key}.kept"] = f.stored.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
                options.append(entry)
            tensors.append(options)
        sens = self.sensitivity
        for i, name in enumerate(sens.diag):
            arrays[f"s{i}.diag"], arrays[f"s{i}.replicates"] = sens.diag[name], sens.replicates[name]
        meta = {"format": FITTED_FORMAT, "names": list(self.names), "held_out": self.held_out, "seconds": self.seconds,
                "state_sha256": _state_sha256(model.state_dict(), self.names), "tensors": tensors,
                "sensitivity": {"names": list(sens.diag), "n_samples": sens.n_samples, "projections": sens.projections,
                                "solver": sens.solver, "steps": sens.steps, "seed": sens.seed,
                                "data_free": sens.data_free, "autocast": sens.autocast},
                "metadata": dict(metadata or {})}
        arrays["meta"] = np.array(json.dumps(meta))
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)


#: Version of the file :meth:`FittedCandidates.save` writes.
FITTED_FORMAT = 1


def _state_sha256(state: Mapping, names: Sequence[str]) -> str:
    """SHA-256 of the names, dtypes, shapes and bytes of the tensors ``names`` of ``state``."""
    digest = hashlib.sha256()
    for name in names:
        t = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def load_fitted(path, *, model: torch.nn.Module, workers: int = 1) -> tuple[FittedCandidates, dict]:
    """Read a fit written by :meth:`FittedCandidates.save` for ``model``; equal option for option to the saved one.

    The options' errors and predicted prices are computed again from ``model``'s tensors
    (:func:`~fmq_theory.plan.candidates.scored_candidate`, as the fit did), ``workers`` tensors at once.

    Returns
    -------
    fitted : FittedCandidates
        With the saved wall time of the fit.
    metadata : dict
        As given to :meth:`~FittedCandidates.save`.

    Raises
    ------
    ValueError
        The file is of another format version, or ``model``'s tensors are not the ones fitted.
    """
    workers = check_positive_int(workers, name="workers")
    state = model.state_dict()
    with np.load(os.fspath(path), allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("format") != FITTED_FORMAT:
            raise ValueError(f"path={path!r}: fit file format {meta.get('format')!r}, this version reads {FITTED_FORMAT}")
        names = tuple(meta["names"])
        if not all(name in state for name in names) or _state_sha256(state, names) != meta["state_sha256"]:
            raise ValueError(f"path={path!r} was fitted to other weights than model's")
        stored = []
        for t, options in enumerate(meta["tensors"]):
            row = []
            for j, entry in enumerate(options):
                key, cand = f"t{t}.o{j}", Candidate(**entry["candidate"])
                if "quantized" in entry:
                    q = entry["quantized"]
                    obj = QuantizedTensor(method=q["method"], bits=q["bits"], granularity=parse_granularity(q["granularity"]),
                                          shape=tuple(q["shape"]), dtype=q["dtype"], codes=z[f"{key}.codes"],
                                          levels=z[f"{key}.levels"], stored={k: z[f"{key}.stored.{k}"] for k in q["stored"]},
                                          framework=q["framework"], device=q["device"])
                else:
                    k = entry["kept"]
                    obj = torch.from_numpy(z[f"{key}.kept"]).view(getattr(torch, k["dtype"])).reshape(k["shape"])
                row.append((cand, obj, entry["nbytes"]))
            stored.append(row)
        costs = tuple(z[f"t{t}.costs"] for t in range(len(names)))
        values = tuple(z[f"t{t}.values"] for t in range(len(names)))
        s = meta["sensitivity"]
        sensitivity = WeightSensitivity(diag={n: z[f"s{i}.diag"] for i, n in enumerate(s["names"])},
                                        replicates={n: z[f"s{i}.replicates"] for i, n in enumerate(s["names"])},
                                        n_samples=s["n_samples"], projections=s["projections"], solver=s["solver"],
                                        steps=s["steps"], seed=s["seed"], data_free=s["data_free"],
                                        autocast=s.get("autocast", False))

    fit_sens, score_sens = sensitivity.split() if meta["held_out"] else (sensitivity, sensitivity)

    def score(t: int) -> tuple:
        w = state[names[t]].detach().cpu()
        terms = score_sens.scorer(names[t]) if names[t] in score_sens.diag else None
        fits = tuple(scored_candidate(w, cand, stored=obj, nbytes=nbytes, score=terms)
                     for cand, obj, nbytes in stored[t])
        if any(f is None for f in fits):
            raise ValueError(f"path={path!r}: an option of {names[t]!r} has a non-finite error on model's tensor")
        return fits

    with ThreadPoolExecutor(max_workers=workers) as pool:
        fitted = tuple(pool.map(score, range(len(names))))
    return (FittedCandidates(names=names, fitted=fitted, costs=costs, values=values, sensitivity=sensitivity,
                             fit_sensitivity=fit_sens, score_sensitivity=score_sens, held_out=bool(meta["held_out"]),
                             seconds=float(meta["seconds"])),
            meta["metadata"])


def fit_memory_bytes(model: torch.nn.Module, *, candidates: Sequence[Candidate] | Callable | None = None,
                     keep_codes: bool = True) -> int:
    r"""Bytes of the codes and kept copies :func:`fit_candidates` holds for ``model``: a lower bound on its memory.

    Every option of every floating tensor is fitted and kept until the budgets are solved:
    a quantized option with one ``uint8`` code per weight (its levels and side arrays come on
    top), a kept one as the tensor at its dtype.  So the fit holds at least
    :math:`\sum_t n_t \sum_{o \in O_t} c_o` bytes for tensors of :math:`n_t` weights and options
    :math:`O_t`, with :math:`c_o` = 1 for a quantized option and its item size for a kept one (an
    option whose error is not finite is dropped).  With the default options a large tensor has
    100 (98 quantized, float16 and float32 kept), so about 104 bytes a weight: 5.4 GiB for the
    paper's 55.7M network.  (Until the fit kept only each option's price instead of its
    squared error per weight, :attr:`~fmq_theory.plan.candidates.FittedCandidate.predicted`,
    it held 8 bytes more per option and weight: that network was killed for memory at 24.1 GB
    on a 23 GB machine on 2026-12-04.)  With ``keep_codes=False`` (:func:`fit_candidates`) the
    options of one tensor are held only while it is fitted: the largest tensor's
    :math:`n_t \sum_{o \in O_t} c_o` for one worker.

    Examples
    --------
    >>> def per_weight(shape, n):
    ...     return sum(c.bits // 8 if c.method in KEPT_METHODS else 1 for c in default_candidates(shape, n_weights=n))
    >>> per_weight((64, 64), 4096), per_weight((64,), 64)  # a weight matrix's 100 options, a bias's 7
    (104, 11)
    >>> fit_memory_bytes(torch.nn.Linear(64, 64)) == 4096 * 104 + 64 * 11
    True
    >>> fit_memory_bytes(torch.nn.Linear(64, 64), keep_codes=False) == 4096 * 104
    True
    """
    state = model.state_dict()
    per_tensor = [state[k].numel() * sum(c.bits // 8 if c.method in KEPT_METHODS else 1
                                         for c in _candidates_for(candidates, k, tuple(state[k].shape), state[k].numel()))
                  for k in _floating_names(state)]
    return sum(per_tensor) if keep_codes else max(per_tensor, default=0)


def fit_candidates(model: torch.nn.Module, *, sensitivity: WeightSensitivity,
                   candidates: Sequence[Candidate] | Callable | None = None, held_out: bool = True,
                   workers: int = 1, keep_codes: bool = True, progress: bool = True) -> FittedCandidates:
    """Fit and score every option of every floating tensor of ``model`` (the budget-free part of a plan).

    Parameters
    ----------
    model : torch.nn.Module
    sensitivity : WeightSensitivity
        Of :func:`~fmq_theory.plan.sensitivity.weight_sensitivity` on ``model``.
    candidates, held_out, progress
        As in :func:`plan_quantization`.
    workers : int
        Threads fitting tensors at once (the kernels release the GIL).  The result does not
        depend on it: every tensor is fitted alone and the results keep the state-dict order.
        With more than one worker the tensors are handed out largest first (the last ones
        to finish are then the smallest) and each worker runs the kernels' serial
        compilations (:func:`fmq_theory.quantizers.serial_kernels`): the workers are the
        parallelism, so no worker starts a team of numba threads on cores the others use,
        under any threading layer.  Without numba (``FMQ_DISABLE_NUMBA``) the numpy twins
        run, which are thread-safe.
    keep_codes : bool
        Keep what a file of every option holds (its codes: about 104 bytes a weight with the
        default options, :func:`fit_memory_bytes`), or only each option's cost and prices, so that
        the fit holds a few numbers per option and a plan fits its chosen options again
        (:meth:`FittedCandidates.option`; the same plan, bit for bit).  ``False`` for a model
        whose options do not fit in memory; such a fit cannot be saved.

    Returns
    -------
    FittedCandidates
        Pass it to :func:`plan_quantization` (``fitted=``) for each budget.
    """
    start = time.perf_counter()
    if held_out:
        _check_held_out(next(iter(sensitivity.replicates.values())).shape[0])
        fit_sens, score_sens = sensitivity.split()
    else:
        fit_sens = score_sens = sensitivity
    state = model.state_dict()
    names = _floating_names(state)
    workers = check_positive_int(workers, name="workers")

    def fit(name: str) -> tuple:
        w = state[name].detach().cpu()
        s = fit_sens.diag.get(name)
        if s is None:  # a float buffer: kept at its dtype
            options = (Candidate(str(w.dtype).removeprefix("torch."), w.element_size() * 8, "tensor",
                                 str(w.dtype).removeprefix("torch.")),)
        else:
            options = _candidates_for(candidates, name, tuple(w.shape), w.numel())
        terms = score_sens.scorer(name) if name in score_sens.diag else None
        fits = [f if keep_codes else replace(f, stored=None)
                for f in fit_options(w, options, sensitivity=s, score=terms) if f is not None]
        if not fits:
            raise ValueError(f"no candidate of tensor {name!r} could be stored (side information overflows)")
        return (tuple(fits), np.array([f.nbytes for f in fits], dtype=np.int64),
                np.array([f.predicted for f in fits]))

    def fit_serial(name: str) -> tuple:
        with serial_kernels():
            return fit(name)

    bar = dict(desc="fitting candidates", unit="tensor", total=len(names), disable=not progress)
    if workers == 1:
        results = list(tqdm(map(fit, names), **bar))
    else:
        results = [None] * len(names)
        largest_first = sorted(range(len(names)), key=lambda i: -state[names[i]].numel())
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(fit_serial, names[i]): i for i in largest_first}
            try:
                for done in tqdm(as_completed(futures), **bar):
                    results[futures[done]] = done.result()
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    fitted, costs, values = (list(part) for part in zip(*results)) if results else ([], [], [])
    return FittedCandidates(names=tuple(names), fitted=tuple(fitted), costs=tuple(costs), values=tuple(values),
                            sensitivity=sensitivity, fit_sensitivity=fit_sens, score_sensitivity=score_sens,
                            held_out=bool(held_out), seconds=time.perf_counter() - start, keep_codes=bool(keep_codes))


def variant_options(fits: tuple, *, floor: int, family: str, grouping: str = "any") -> np.ndarray:
    """Indices of the options of one tensor (its fitted candidates, ``fits``) that a plan of bit floor
    ``floor``, code family ``family`` and grouping ``grouping`` may use: every kept tensor, and the
    quantized options of that family with at least ``floor`` code bits; with ``grouping="groups"``,
    only the grouped ones among those if there are any."""
    methods = CODE_FAMILIES[family]
    quantized = [j for j, f in enumerate(fits) if f.candidate.method not in KEPT_METHODS
                 and f.candidate.bits >= floor and f.candidate.method in methods]
    if grouping == "groups" and any(fits[j].candidate.granularity.startswith("group:") for j in quantized):
        quantized = [j for j in quantized if fits[j].candidate.granularity.startswith("group:")]
    kept = [j for j, f in enumerate(fits) if f.candidate.method in KEPT_METHODS]
    return np.array(sorted(kept + quantized), dtype=np.intp)


def variant_option_sets(fitted: Sequence[tuple], *, floor: int, family: str, grouping: str = "any") -> list:
    """The knapsacks of one variant: lists of every tensor's allowed option indices (one list per
    knapsack; ``fitted``: each tensor's fitted candidates).

    With ``grouping`` ``"any"`` or ``"groups"`` there is one knapsack, of
    :func:`variant_options`.  With ``"flat"`` there is one per *shared code*: each grouped code
    (method, bits, group size, storage) of the family with at least ``floor`` bits.  A tensor
    that has the shared code may take it or be kept in float16 or float32; a tensor that does
    not have it (a small one) takes any option of the family (``"any"``).  That is the layout
    of HQQ's and GGUF's files, one code for every large matrix, with the knapsack choosing which
    tensors to keep at full precision; the variant is the shared code whose knapsack has the
    least additive value.
    """
    if grouping != "flat":
        return [[variant_options(fits, floor=floor, family=family, grouping=grouping) for fits in fitted]]
    methods = CODE_FAMILIES[family]
    codes = sorted({f.candidate for fits in fitted for f in fits
                    if f.candidate.method in methods and f.candidate.bits >= floor
                    and f.candidate.granularity.startswith("group:")},
                   key=lambda c: (c.method, c.bits, c.granularity, c.storage))
    kept = [[j for j, f in enumerate(fits) if f.candidate.method in KEPT_METHODS] for fits in fitted]
    anywhere = [variant_options(fits, floor=floor, family=family) for fits in fitted]
    out = []
    for code in codes:
        sets = []
        for t, fits in enumerate(fitted):
            own = [j for j, f in enumerate(fits) if f.candidate == code]
            sets.append(np.array(sorted(kept[t] + own), dtype=np.intp) if own else anywhere[t])
        out.append(sets)
    return out


def variant_state(state: Mapping, fitted: FittedCandidates, picks: Sequence[int], *,
                  option: Callable[[int, int], FittedCandidate] | None = None) -> dict:
    """``state`` with every fitted tensor replaced by what the model gets back from its option ``picks[t]``
    (one index per fitted tensor, :meth:`~fmq_theory.plan.candidates.FittedCandidate.restored`);
    ``option(t, j)`` gives the option (default :meth:`FittedCandidates.option`, e.g. a
    :func:`compensated_option` instead)."""
    out = dict(state)
    for t, (name, j) in enumerate(zip(fitted.names, picks)):
        f = fitted.option(t, j, state=state) if option is None else option(t, j)
        out[name] = f.restored(state[name].dtype)
    return out


def compensated_option(fitted: FittedCandidates, t: int, j: int, *, state: Mapping, moments: Mapping,
                       score: Callable | None = None) -> FittedCandidate:
    """Option ``j`` of tensor ``t`` with its codes chosen by error-compensating rounding on its own levels
    (:func:`fmq_theory.plan.compensation.compensated`, against ``moments[name]``), scored again on the
    values the model gets back (``score`` as in :func:`~fmq_theory.plan.candidates.fit_candidate`).

    The same candidate, side information and bytes; a kept tensor, or one without moments (not the
    weight of a linear or ungrouped convolution layer), is the option as fitted."""
    f = fitted.option(t, j, state=state)
    name = fitted.names[t]
    if name not in moments or not isinstance(f.stored, QuantizedTensor):
        return f
    w = state[name].detach().cpu()
    return scored_candidate(w, f.candidate, stored=compensated(w, f.stored, moments[name]), nbytes=f.nbytes,
                            score=score)


def plan_quantization(
    model: torch.nn.Module,
    *,
    budget_bits: float,
    adapter: Adapter = XT(),
    noise: torch.Tensor | None = None,
    n_samples: int = 64,
    seed: int = 0,
    event_shape: tuple | None = None,
    solver: str = "midpoint",
    steps: int = 10,
    candidates: Sequence[Candidate] | Callable | None = None,
    sensitivity: WeightSensitivity | None = None,
    projections: int = 1,
    replicates: int = 4,
    batch_size: int = 16,
    batches_per_pass: int = 1,
    held_out: bool = True,
    fitted: FittedCandidates | None = None,
    bit_floors: Sequence[int] = (1, 2, 3),
    families: Sequence[str] = ("optimal", "minmax", "half_quadratic"),
    groupings: Sequence[str] = ("any",),
    level: float = 0.95,
    keep_codes: bool = True,
    roundings: Sequence[str] = ("nearest",),
    moments: Mapping | None = None,
    progress: bool = True,
) -> QuantizationPlan:
    """Plan a mixed-precision quantization of ``model`` within ``budget_bits`` honest bits per weight.

    Parameters
    ----------
    model : torch.nn.Module
        The full-precision velocity model (left unchanged).
    budget_bits : float
        Largest honest bits per floating weight of the written file.
    adapter : Adapter
        How the model is called (:mod:`fmq_theory.flow.velocity`; the package's UNet needs
        :func:`fmq_theory.harness.models.unet.unet_adapter`), for the sensitivity and for
        sampling the variants.
    noise : torch.Tensor, optional
        Starting noise ``(n, *event)``; else ``n_samples`` draws of ``event_shape`` from ``seed``.
    solver, steps
        The deployed fixed-step sampler.
    candidates : sequence of Candidate, or callable ``(name, shape, n) -> sequence``, optional
        Options per tensor (default :func:`~fmq_theory.plan.candidates.default_candidates`).
    sensitivity : WeightSensitivity, optional
        Reuse an estimate (e.g. for several budgets); else estimated here.
    projections, replicates, batch_size, batches_per_pass
        Of :func:`~fmq_theory.plan.sensitivity.weight_sensitivity` (``batches_per_pass > 1``:
        the same estimate in fewer, vectorized passes, for a GPU with memory to spare).
    held_out : bool
        Fit the sensitivity-weighted codebooks to one half of the replicates and score every
        candidate (the knapsack's values, the report and the predicted interval) with the
        other half (:meth:`~fmq_theory.plan.sensitivity.WeightSensitivity.split`), so that the
        scores are unbiased for the fitted codebooks.  ``False`` fits and scores with the
        whole estimate, which favours the weighted codebooks by the noise they were fitted
        to.  Needs at least 4 replicates (2 to fit, 2 to score with an interval).
    fitted : FittedCandidates, optional
        The options of :func:`fit_candidates` on ``model`` (fitted once for several budgets);
        then ``sensitivity``, ``candidates`` and ``held_out`` are those it was made with.
    bit_floors : sequence of int
        Distinct ints in 1..16.  For each floor :math:`f` the knapsack is solved with only
        the options of :math:`f` or more code bits (and the kept float tensors); each
        feasible variant and the full-precision model are sampled from ``noise`` (``adapter``,
        and the sensitivity's solver and steps), and the variant whose samples' law moved
        least from the full-precision one is the plan (:mod:`fmq_theory.plan.selection`;
        ties go to the lower floor).  With one floor
        and one family nothing is sampled: the knapsack's solution over that variant's
        options is the plan.
    families : sequence of str
        Keys of :data:`~fmq_theory.plan.candidates.CODE_FAMILIES`: each floor's knapsack is
        solved once per family, with only that family's quantized options (and the kept
        tensors), and every such variant is sampled and ranked as above.  The default
        ``("optimal", "minmax", "half_quadratic")`` samples every family's plan of every
        floor; ``("optimal", "minmax")`` is the plan before HQQ's grids were offered,
        ``("optimal",)`` the plan before the min-max grids were.
    groupings : sequence of str
        Of :data:`~fmq_theory.plan.selection.GROUPINGS`: each (family, floor) is solved with
        every granularity (``"any"``, the default); if ``"groups"`` is given, also with only
        the grouped options of every tensor that has some; if ``"flat"`` is given, also with
        one grouped code shared by every tensor that has it, or full precision (the layout of
        HQQ's and GGUF's files: one knapsack per shared code, the one of least additive value
        kept, :func:`variant_option_sets`).  Variants with equal choices are sampled once.
        Neither ``"groups"`` nor ``"flat"`` is a default: see the Notes.
    level : float
        Level of the intervals on the predicted degradation and the variants' sampled scores.
    keep_codes : bool
        Of :func:`fit_candidates`, when the fit is made here: ``False`` keeps each option's cost and
        prices only and fits the chosen options again, the same plan in far less memory (every
        variant sampled costs one more fit of one option per tensor).
    roundings : sequence of str
        Of :data:`~fmq_theory.plan.selection.ROUNDINGS`: how each variant's codes are chosen on its
        options' levels.  ``"nearest"`` (the default) rounds every weight to its nearest level;
        ``"compensated"`` chooses the codes of every linear and ungrouped convolution weight by
        error-compensating rounding (:mod:`fmq_theory.plan.compensation`, GPTQ with static
        groups), against the second moment of the layer's inputs over the full-precision model's
        sampling from ``noise`` (data-free).  Each variant is sampled with each rounding given and
        the law's shift chooses, as between floors (the same bytes either way); the report and
        prediction score the chosen codes' errors.  The knapsack prices each option by its
        round-to-nearest error.  Why both, not compensation alone: on the FashionMNIST UNet's committed
        plans (CPU, ``results/probes/plan_gptq_*.json``) compensation cut the classifier
        :math:`\\Delta FID` at 3 bits per weight from 3.11 to 0.73, but raised it at 2 bits from
        68.4 to 153, though it cut the summed output error there too (3,613 to 762): the layers'
        errors are compensated one layer at a time, against the full-precision inputs.
    moments : mapping, optional
        With ``"compensated"`` among ``roundings``: ``{weight name: E[x x^T]}`` of
        :func:`~fmq_theory.plan.compensation.input_moments` (made once for several budgets); else
        made here from ``noise`` with the sensitivity's solver and steps.
    progress : bool
        tqdm bars on the sensitivity, the fitting, the layer moments and the sampling of the variants.

    Returns
    -------
    QuantizationPlan
        Its ``predicted_delta`` is the additive prediction of the chosen variant; every
        variant's scores are in ``variants``.

    Raises
    ------
    ValueError
        A budget below the cheapest plan of every variant, bad noise, candidates,
        ``bit_floors``, ``families``, ``groupings`` or ``roundings``, or ``moments`` without a
        compensated rounding (naming the argument).

    Notes
    -----
    Why several floors.  The knapsack is exact for the additive model
    :math:`\\sum_i s_i e_i^2`, which is the first-order term of the samples' displacement and
    holds while the weight errors are small.  1-bit codes are far outside that regime, and the
    additive model can misprice them badly.  On the FashionMNIST DiT
    (``checkpoints/dit_fashion_mnist``) at 3.0 bits per weight
    (``results/plan_dit_floor_cpu.json``, ``scripts/plan_dit_floor_cpu.py``), the plan with
    every candidate put all seven adaLN modulation matrices at 1 bit per channel; its additive
    prediction was 988 against 1371 for the plan without 1-bit codes, yet it measured a FID
    change of 137.2 (95% interval 130.5 to 148.2) against 90.0 (83.0 to 98.0), and its samples
    were 11.1 dB PSNR from the full-precision ones against 17.9 dB.  The additive model ranked
    the two plans the wrong way round; the displacement of actually sampled outputs, which is
    what the additive model approximates to first order, ranks them the right way and is just
    as data-free (the model and Gaussian noise only).  The additive prediction stays the
    knapsack's objective within each floor, where all options are priced alike; the sampled
    displacement only arbitrates between the floors' solutions.

    Why two code families.  On the same DiT at the honest bits per weight of the per-channel
    min-max rule (``results/plan_dit_floor_variants_cpu.json``,
    ``scripts/plan_dit_floor_variants_cpu.py``), every floor of the ``"optimal"`` family lost
    to that rule, although the plan kept the floor whose samples measured best: its codes
    clip or pool extreme weights, and the additive model prices their one-signed errors as
    independent noise.  With both families (``results/plan_dit_equal_bits_cpu.json``,
    ``scripts/plan_dit_equal_bits_cpu.py``) the plan kept a min-max variant at each of the
    four peers' bits per weight and measured a smaller FID change than the ``"optimal"``
    family's plan every time.  Hence the defaults, floors 1 to 3 and both families: on the
    GPU (``results/plan_<model>.csv``, ``scripts/gpu_plan_eval.sh``; 5,000 samples) they
    lowered the DiT's FID change at 2.5, 3 and 4 bits per weight from 164, 135 and 24.9
    (floor 1, ``"optimal"``) to 143, 63.0 and 1.52, the FashionMNIST UNet's at 3 and 4
    from 11.6 and 0.76 to 6.12 and 0.54, and the MNIST UNet's at 3 and 4 from 3.27 and 0.37
    to 2.27 and 0.15; where the ``"optimal"`` family's floor-1 plan is the least displaced
    (every model at 2 bits per weight) it is still chosen, and measures the same.

    Why a third, HQQ's grids.  Even with both families, HQQ (the ``hqq`` package, groups of 128)
    measured a smaller FID change than the plan on that DiT at 2 bits, and offered HQQ's codes
    beside its own, the knapsack never picked them: their additive price was several times
    higher (``results/plan_hqq_options_dit_cpu.json``).  The price ranks options within a code
    family, not across families, so HQQ's grid entered as a family of its own, fitted by the
    package (:mod:`fmq_theory.quantizers.half_quadratic`) and stored in its file format.  At
    HQQ g128's own bits per weight on the DiT (``results/plan_half_quadratic_dit_cpu.json``,
    ``scripts/plan_half_quadratic_cpu.py``; 256 held-out samples, classifier FID; the file as of
    commit 25ea8f8, variants then ranked by their mean squared displacement), the plan kept a
    ``"half_quadratic"`` variant at both budgets and its FID change fell, at 2.34 bits, from 213
    (two families) to 127 against HQQ's 101, and at 3.53 bits from 7.5 to 3.2 against HQQ's
    14.7.  Run again with the law's shift ranking the variants (below) and the fit of every
    group to all its steps (the file now), the family still helps at 2.34 bits (159 to 125),
    but at 3.53 bits the shift kept its floor-2 variant over its floor-3 one by less than
    their intervals' width (0.00174 [0.00163, 0.00284] against 0.00191 [0.00167, 0.00294], 128
    draws) and measured 17.4 [13.6, 21.5] against 7.5 without the family and HQQ's 14.7: a
    choice between variants that close is a draw, and it can cost more than the family gains.

    Why the law's shift chooses.  The variants were ranked by the mean squared displacement
    of each sample from its full-precision twin until the GPU measured every variant
    (``results/plan_variants_gpu.json``, ``scripts/gpu_plan_variants.py``; 5,000 samples,
    classifier FID): on the DiT at 2 bits per weight the least-displaced variant
    (``"half_quadratic"``, floor 1) measured a FID change of 387 against 219 for the
    ``"optimal"`` floor-1 one, and on the FashionMNIST UNet at 2.36 bits 50.8 against 7.96 for
    ``"minmax"`` floor 2.  A FID compares laws, not pairs; the squared W2 between the two
    sample sets' diagonal Gaussian fits picked the measured best variant in both, and the best
    or second best in every (model, budget) cell of that file.

    Why grouped-only variants are offered but not tried by default.  At HQQ g128's 2.34 bits
    the DiT's plan put most weights at 2 bits per channel and lost to HQQ's flat groups of 128
    (dFID 126.9 against 105.2).  With ``groupings=("any", "groups")`` the GPU measured every
    variant of four budgets (``results/plan_variants_groupings_gpu.json``): one grouped
    variant does beat HQQ there (``"minmax"``, floor 1, groups: 88.3), but its shift was
    among the largest, while the grouped ``"optimal"`` variants, of the least shift, measured
    worse than the variants of every granularity; re-planned with both groupings
    (``results/plan_groupings_gpu.csv``), the DiT's FID change grew at 2.5, 4, 2.34, 3.53 and
    4.32 bits per weight (96.2 -> 114, 1.63 -> 5.94, 127 -> 132, 3.98 -> 10.6, 0.86 -> 1.21)
    and fell only at 3 (47.0 -> 42.0).  No data-free score measured here ranks the grouped
    variants as the FID does, so more variants only give the selection more ways to err.

    Why ``"flat"`` is offered but not a default.  On the DiT at HQQ g128's 2.34 bits per weight
    the flat variant (``half_quadratic``, 2 bits in groups of 128 on every tensor that has it,
    the rest kept) moved the law least of all variants and measured a classifier dFID of 103.4
    [95.7, 110.0] against 124.4 [117.9, 132.4] for the default plan and 101.3 [93.8, 108.1] for
    HQQ (CPU, 256 draws; ``results/plan_flat_dit_cpu.json``, ``scripts/plan_flat_dit_cpu.py``):
    the loss closed to a tie.  At 3.53 and 4.32 bits its shift was above the default plan's, so
    it would not be picked.  The GPU then measured every variant of both groupings at HQQ g128's
    bits on every model (one H100, 5,000 samples; ``results/plan_variants_flat_dit_gpu.json``,
    ``results/plan_variants_flat_unets_gpu.json``): adding ``"flat"`` changed the pick in 1 of 7
    cells, the DiT at 2.34 bits (105.8 [104.4, 107.7] against 122.7 and HQQ's 105.2), and in the
    other six (the DiT at 3.53 and 4.32, the FashionMNIST UNet at 2.36, 3.62 and 4.34, the MNIST
    UNet at 2.36) the flat variants moved the law more than the default's pick.  At the committed
    rows' budgets (2, 2.5, 3 and 4 bits on the DiT and the FashionMNIST UNet, 2 on the MNIST UNet;
    ``results/plan_variants_flat_budgets_*_gpu.json``) it changed 1 pick of 9, for the worse: the
    FashionMNIST UNet at 2.5 bits, 33.8 [32.6, 35.1] against 13.6 [12.7, 14.7].  Over the 16 GPU
    cells it made one pick better and one worse, so it is not a default.  (On the MNIST UNet's
    other budgets, scored on the CPU without FID, the least flat shift is 1.6 to 6.5 times the
    default pick's: ``results/plan_variants_flat_*mnist_scores_cpu.json``.)
    """
    if isinstance(budget_bits, bool) or not isinstance(budget_bits, (int, float)) or not (
            math.isfinite(budget_bits) and budget_bits > 0):
        raise ValueError(f"budget_bits={budget_bits!r} must be a positive finite number")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be in (0, 1)")
    roundings = check_roundings(roundings)
    if moments is not None and not ("compensated" in roundings and len(moments)):
        raise ValueError("moments: give them with 'compensated' among roundings, one matrix per weight at least")
    floors = check_bit_floors(bit_floors)
    groups = check_groupings(groupings)
    keys = [(fam, f, g) for fam in check_families(families) for f in floors for g in groups]
    start = time.perf_counter()
    noise = _make_noise(noise, n_samples, seed, event_shape)
    earlier_fit_s = 0.0 if fitted is None else fitted.seconds  # a fit made before this call: its time is added
    if fitted is None:
        if sensitivity is None:
            if held_out:  # refused before the pass, not after it
                _check_held_out(replicates)
            sensitivity = weight_sensitivity(model, noise, adapter=adapter, solver=solver, steps=steps,
                                             projections=projections, replicates=replicates,
                                             batch_size=batch_size, batches_per_pass=batches_per_pass, seed=seed,
                                             progress=progress)
        fitted = fit_candidates(model, sensitivity=sensitivity, candidates=candidates, held_out=held_out,
                                keep_codes=keep_codes, progress=progress)
    sensitivity, score_sens, held_out = fitted.sensitivity, fitted.score_sensitivity, fitted.held_out
    state = model.state_dict()
    names = list(fitted.names)
    n_total = sum(state[k].numel() for k in names)
    budget_bytes = int(math.floor(budget_bits * n_total / 8))
    costs, values = list(fitted.costs), list(fitted.values)

    def cheapest_of(allowed):  # the least cost of a knapsack, None if a tensor has no option
        return sum(int(c[a].min()) for c, a in zip(costs, allowed)) if all(a.size for a in allowed) else None

    knapsacks = {k: [(a, low) for a in variant_option_sets(fitted.fitted, floor=k[1], family=k[0], grouping=k[2])
                     if (low := cheapest_of(a)) is not None] for k in keys}
    cheapest = {k: min(low for _, low in sets) for k, sets in knapsacks.items() if sets}
    if not cheapest:
        raise ValueError(f"bit_floors={list(floors)}, families={list(families)}, groupings={list(groups)}: "
                         f"every variant leaves some tensor without an option")
    feasible = [k for k in keys if k in cheapest and cheapest[k] <= budget_bytes]
    if not feasible:
        raise ValueError(f"budget_bits={budget_bits} is below the cheapest plan's "
                         f"{8 * min(cheapest.values()) / n_total:.4f} bits/weight")
    solutions = {}
    for k in feasible:  # a variant of several knapsacks ("flat") keeps the one of least value (the first of ties)
        for allowed, low in knapsacks[k]:
            if low <= budget_bytes:
                sol = solve_mckp([c[a] for c, a in zip(costs, allowed)], [v[a] for v, a in zip(values, allowed)],
                                 budget=budget_bytes)
                if k not in solutions or sol.value < solutions[k][1].value:
                    solutions[k] = (tuple(int(a[j]) for a, j in zip(allowed, sol.choice)), sol)
    if "compensated" in roundings and moments is None:
        moments = input_moments(model, noise, adapter=adapter, solver=sensitivity.solver, steps=sensitivity.steps,
                                batch_size=max(batch_size, 64), progress=progress)
    compensated_options = {}  # (t, j) -> the option with compensated codes, made once for every variant

    def option(t: int, j: int, rounding: str) -> FittedCandidate:
        if rounding == "nearest":
            return fitted.option(t, j, state=state)
        if (t, j) not in compensated_options:
            name = names[t]
            score = score_sens.scorer(name) if name in score_sens.diag else None
            compensated_options[t, j] = compensated_option(fitted, t, j, state=state, moments=moments, score=score)
        return compensated_options[t, j]

    def priced(t: int, j: int, rounding: str) -> tuple:  # prediction terms (round-to-nearest's without a fit again)
        f = fitted.fitted[t][j] if rounding == "nearest" else option(t, j, rounding)
        return f.predicted, f.predicted_replicates

    variants = []
    if len(keys) * len(roundings) > 1:
        kw = dict(adapter=adapter, solver=sensitivity.solver, steps=sensitivity.steps)
        reference = sampled(model, state, noise, **kw)
        scored = {}  # variants of equal choices and rounding are sampled once
        for k in tqdm(feasible, desc="sampling variants", unit="variant", disable=not progress):
            picks = solutions[k][0]
            for rounding in roundings:
                if (picks, rounding) not in scored:
                    x = sampled(model, variant_state(state, fitted, picks,
                                                     option=lambda t, j, r=rounding: option(t, j, r)), noise, **kw)
                    scored[picks, rounding] = (displacement(x, reference, level=level),
                                               distribution_shift(x, reference, level=level))
                (msd, low, high), (shift, shift_low, shift_high) = scored[picks, rounding]
                additive = score_sens.predicted_from_terms(
                    [priced(t, j, rounding) for t, (name, j) in enumerate(zip(names, picks)) if name in score_sens.diag])[0]
                variants.append(VariantScore(
                    floor=k[1], bits_per_weight=8 * sum(int(c[j]) for c, j in zip(costs, picks)) / n_total,
                    additive=additive, sampled_msd=msd, sampled_low=low, sampled_high=high, family=k[0],
                    sampled_shift=shift, shift_low=shift_low, shift_high=shift_high, grouping=k[2], rounding=rounding))
        best = choose_variant(variants)
        chosen, rounding = (best.family, best.floor, best.grouping), best.rounding
    else:
        chosen, rounding = keys[0], roundings[0]
    variants = tuple(variants)
    picks, solution = solutions[chosen]
    quantized, passthrough, report, choices, terms = {}, {}, [], [], []
    for t, (name, j) in enumerate(zip(names, picks)):
        f = option(t, j, rounding)
        c = f.candidate
        s = score_sens.diag.get(name)
        original = state[name].detach().cpu()
        if isinstance(f.stored, QuantizedTensor):
            quantized[name] = f.stored
            report.append(TensorReport(
                name=name, shape=f.stored.shape, n_weights=f.stored.n_weights, method=f.stored.method,
                bits=f.stored.bits, granularity=format_granularity(f.stored.granularity), mse=f.mse,
                w2=quantization_w2(original.double().numpy(), dequantized(f.stored).double().numpy()),
                bits_per_weight=f.stored.bits_per_weight))
        else:
            passthrough[name] = f.stored
        if s is not None:
            terms.append((f.predicted, f.predicted_replicates))
        choices.append(TensorChoice(
            name=name, method=c.method, bits=c.bits, granularity=c.granularity, storage=c.storage,
            n_weights=original.numel(), nbytes=f.nbytes, bits_per_weight=8 * f.nbytes / original.numel(),
            mse=f.mse, gain=0.0 if s is None else float(np.mean(s)),
            predicted=f.predicted))
    for k, v in state.items():
        if k not in names:
            passthrough[k] = v
    value, low, high = score_sens.interval_from_terms(terms, level=level)
    entries = int(np.prod(noise.shape[1:]))
    total = sum(c.nbytes for c in choices)
    settings = {
        "n_samples": sensitivity.n_samples, "projections": sensitivity.projections,
        "replicates": int(next(iter(sensitivity.replicates.values())).shape[0]), "solver": sensitivity.solver,
        "steps": sensitivity.steps, "seed": sensitivity.seed, "autocast": sensitivity.autocast,
        "held_out": bool(held_out), "event_shape": list(noise.shape[1:]),
        "candidates": int(sum(len(f) for f in fitted.fitted)), "frontier_peak": solution.frontier_peak,
        "lagrange_multiplier": solution.lagrange_multiplier,
        "bit_floors": list(floors), "bit_floor": chosen[1], "families": list(families), "family": chosen[0],
        "groupings": list(groups), "grouping": chosen[2],
        "roundings": list(roundings), "rounding": rounding,
        "selection_samples": int(noise.shape[0]) if variants else 0,
        "seconds": time.perf_counter() - start + earlier_fit_s,
        "dtypes": {k: str(state[k].dtype).removeprefix("torch.") for k in names},
    }
    return QuantizationPlan(
        quantized=QuantizedStateDict(quantized, passthrough, tuple(report), tuple(state.keys())),
        choices=tuple(choices), budget_bits=float(budget_bits), bits_per_weight=8 * total / n_total,
        total_bytes=int(total), n_weights=int(n_total),
        predicted_delta=PredictedDelta(value=value, low=low, high=high, level=level, per_entry=value / entries),
        dual_bound=float(solution.dual_bound), settings=settings, variants=variants,
    )


def load_plan(path, *, device: str = "cpu") -> QuantizationPlan:
    """Read a plan written by :meth:`QuantizationPlan.save`; equal field for field to the saved one.

    Raises
    ------
    ValueError
        The file is a quantized checkpoint without a plan.
    """
    d = inspect_quantized(path).metadata.get("plan")
    if not isinstance(d, dict):
        raise ValueError(f"path={path!r} is a quantized checkpoint without a plan (not written by fmq plan)")
    qsd = load_quantized(path, device=device)
    return QuantizationPlan(
        quantized=qsd, choices=tuple(TensorChoice(**c) for c in d["choices"]), budget_bits=d["budget_bits"],
        bits_per_weight=d["bits_per_weight"], total_bytes=d["total_bytes"], n_weights=d["n_weights"],
        predicted_delta=PredictedDelta(**d["predicted_delta"]), dual_bound=d["dual_bound"],
        settings=d["settings"], data_free=d["data_free"],
        variants=tuple(VariantScore(**v) for v in d.get("variants", ())),
    )
