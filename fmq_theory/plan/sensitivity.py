r"""Per-weight sensitivity of the generated samples, data-free, by random projections.

For the deployed sampler :math:`x_N(\theta; z)` (fixed-step solver from Gaussian noise
:math:`z`, :func:`fmq_theory.flow.solvers.integrate`), a small weight error :math:`e` moves
the sample by :math:`J e` with :math:`J = \partial x_N / \partial \theta`, and

.. math::

    E_z |J e|^2 = e^\top F e,\qquad F = E_z[J^\top J]

(the sample-level Fisher / Gauss-Newton matrix of the sampler).  The plan keeps its
diagonal :math:`s_i = F_{ii} = E_z \|\partial x_N/\partial\theta_i\|^2` and predicts
:math:`\sum_i s_i e_i^2` (exact when the errors of distinct weights are uncorrelated with
mean zero, which is the noise model of :mod:`fmq_theory.bounds.prediction`; summed over a
row it is that module's sample-level noise gain times the row's MSE).

Estimator (Hutchinson [1]_, diagonal form [2]_).  For :math:`u \sim N(0, I)` in sample space
and a batch :math:`z_1..z_B`, :math:`g = \nabla_\theta \sum_b \langle u_b, x_N(\theta; z_b)\rangle`
(one backward pass through the solver, :func:`fmq_theory.flow.velocity.with_parameters`) has
:math:`E_u[g_i^2] = \sum_b \|\partial x_N(z_b)/\partial \theta_i\|^2`, so the mean of
:math:`g_i^2 / B` over ``projections`` draws and all batches is unbiased for :math:`s_i`.
The draws are split into ``replicates`` interleaved groups whose means are independent
estimates: the spread of any linear functional :math:`\sum_i s_i e_i^2` over them gives its
standard error (:meth:`WeightSensitivity.predicted`).  No training or test data is used:
only the model and Gaussian noise.

References
----------
.. [1] M. F. Hutchinson, "A stochastic estimator of the trace of the influence matrix for
   Laplacian smoothing splines", Comm. Stat. Simul. Comput. 19, 1990.
.. [2] C. Bekas, E. Kokiopoulou, Y. Saad, "An estimator for the diagonal of a matrix",
   Appl. Numer. Math. 57, 2007.

Examples
--------
>>> import torch
>>> class Field(torch.nn.Module):  # v(x, t) = W x
...     def __init__(self):
...         super().__init__()
...         self.lin = torch.nn.Linear(2, 2, bias=False)
...     def forward(self, x, t):
...         return self.lin(x)
>>> _ = torch.manual_seed(0)
>>> sens = weight_sensitivity(Field(), torch.randn(4096, 2), solver="euler", steps=1,
...                           projections=2, replicates=4, batch_size=16)
>>> # x_1 = x_0 + W x_0, so d x_1 / d W_ij = x_0j e_i and s_ij = E[x_0j^2] = 1
>>> bool(np.abs(sens.diag["lin.weight"] - 1.0).max() < 0.25)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

from fmq_theory.flow.checks import check_noise
from fmq_theory.flow.solvers import check_probe_settings, integrate, solver_spec, step, time_grid
from fmq_theory.flow.velocity import XT, Adapter, placement, with_parameters

__all__ = ["PassMemory", "ReplicateMeans", "SensitivityMemory", "WeightSensitivity",
           "pass_memory", "probe_gradients", "replicate_batch_size", "sensitivity_memory", "weight_sensitivity"]


class ReplicateMeans(Mapping):
    """Read-only mapping of parameter name to the float64 mean of its replicates, computed when read.

    The diagonal of a :meth:`WeightSensitivity.split` half: equal, bit for bit, to
    ``replicates[name].astype(np.float64).mean(axis=0)``, and never stored, so that a half
    costs no memory beyond views of the whole estimate's replicates.

    Parameters
    ----------
    replicates : mapping of str to numpy.ndarray
        Shape ``(R, *shape)`` of each parameter.

    Examples
    --------
    >>> means = ReplicateMeans({"w": np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)})
    >>> means["w"].tolist(), "w" in means, "b" in means, len(means)
    ([2.0, 4.0], True, False, 1)
    """

    def __init__(self, replicates: Mapping[str, np.ndarray]):
        self._replicates = replicates

    def __getitem__(self, name: str) -> np.ndarray:
        return self._replicates[name].astype(np.float64).mean(axis=0)

    def __contains__(self, name: object) -> bool:  # without computing the mean
        return name in self._replicates

    def __iter__(self) -> Iterator[str]:
        return iter(self._replicates)

    def __len__(self) -> int:
        return len(self._replicates)


@dataclass(frozen=True, eq=False)
class WeightSensitivity:
    """Diagonal sample-level Fisher of every parameter, with independent replicates.

    Attributes
    ----------
    diag : mapping of str to numpy.ndarray
        :math:`\\hat s_i`, float64 of the parameter's shape: the mean over all replicates (a
        :class:`ReplicateMeans` for a :meth:`split` half).
    replicates : dict of str to numpy.ndarray
        Shape ``(R, *shape)`` float32: the ``R`` independent replicate means.
    n_samples : int
        Noise draws ``z``.
    projections : int
        Random projections per batch.
    solver : str
    steps : int
    seed : int
        Seed of the projections.
    data_free : bool
        Always ``True``: only the model and Gaussian noise were used.
    autocast : bool
        Whether the probes' forward passes ran under bfloat16 autocast.
    """

    diag: Mapping[str, np.ndarray]
    replicates: Mapping[str, np.ndarray]
    n_samples: int
    projections: int
    solver: str
    steps: int
    seed: int
    data_free: bool = True
    autocast: bool = False

    def terms(self, name: str, squared_error: np.ndarray) -> tuple[float, np.ndarray]:
        r"""One tensor's :math:`\sum_i \hat s_i e_i^2` and its ``R`` replicate sums :math:`\sum_i \hat s^{(r)}_i e_i^2`.

        They are all that :meth:`predicted` and :meth:`interval` read of the tensor's errors, so
        a caller scoring many options of one tensor keeps these ``R + 1`` numbers of each option
        instead of its :math:`e_i^2` (:func:`fmq_theory.plan.core.fit_candidates` does).

        Parameters
        ----------
        name : str
            A parameter of the estimate.
        squared_error : numpy.ndarray
            :math:`e_i^2`, of the parameter's shape.

        Examples
        --------
        >>> sens = WeightSensitivity(diag={"w": np.array([1.0, 3.0])},
        ...                          replicates={"w": np.array([[0.0, 2.0], [2.0, 4.0]], dtype=np.float32)},
        ...                          n_samples=4, projections=1, solver="euler", steps=1, seed=0)
        >>> total, reps = sens.terms("w", np.array([1.0, 0.5]))
        >>> total, reps.tolist()
        (2.5, [1.0, 4.0])
        """
        return self.scorer(name)(squared_error)

    def scorer(self, name: str) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
        """:meth:`terms` of one tensor as a function of :math:`e_i^2`, its diagonal and replicates read once.

        For scoring many options of one tensor: a :meth:`split` half computes its diagonal when
        it is read, and the replicates are widened to float64 once, not once per option.  The
        function holds them (``8 (1 + R)`` bytes a weight of the tensor) while it is kept.

        Examples
        --------
        >>> sens = WeightSensitivity(diag={"w": np.array([1.0, 3.0])},
        ...                          replicates={"w": np.array([[0.0, 2.0], [2.0, 4.0]], dtype=np.float32)},
        ...                          n_samples=4, projections=1, solver="euler", steps=1, seed=0)
        >>> score = sens.scorer("w")
        >>> score(np.array([1.0, 0.5]))[0], score(np.array([0.0, 1.0]))[0]
        (2.5, 3.0)
        """
        diag = np.asarray(self.diag[name])
        reps = self.replicates[name].astype(np.float64)

        def terms(squared_error: np.ndarray) -> tuple[float, np.ndarray]:
            e2 = np.asarray(squared_error, dtype=np.float64)
            return float(np.sum(diag * e2)), np.tensordot(reps, e2, axes=e2.ndim)

        return terms

    def predicted(self, squared_errors: Mapping[str, np.ndarray]) -> tuple[float, float]:
        r""":math:`\sum_i \hat s_i e_i^2` over the given tensors, and its standard error.

        ``squared_errors`` maps parameter names to arrays of :math:`e_i^2` of the
        parameter's shape.  The standard error is the spread of the replicate means over
        :math:`\sqrt{R}` (0 with one replicate).
        """
        return self.predicted_from_terms([self.terms(name, e2) for name, e2 in squared_errors.items()])

    @staticmethod
    def predicted_from_terms(terms) -> tuple[float, float]:
        """:meth:`predicted` from the tensors' :meth:`terms`, summed in the order given."""
        reps = None
        total = 0.0
        for value, r in terms:
            total += value
            reps = r if reps is None else reps + r
        if reps is None or reps.size < 2:
            return total, 0.0
        return total, float(np.std(reps, ddof=1) / math.sqrt(reps.size))

    def split(self) -> tuple["WeightSensitivity", "WeightSensitivity"]:
        """Two independent estimates from disjoint halves of the replicates: ``(fit, score)``.

        The first ``R // 2`` replicates make ``fit``, the other ``R - R // 2`` make ``score``.
        A codebook fitted to ``fit.diag`` is independent of ``score``, so
        ``score.predicted(e**2)`` is unbiased for :math:`\\sum_i s_i e_i^2` of that codebook,
        whereas scoring it with the estimate it was fitted to is optimistic (the fit follows
        the estimate's noise: a winner's curse).

        The halves hold no copy: their replicates are views of this estimate's, and their
        diagonals (the float64 means of those replicates) are computed each time a tensor's is
        read (:class:`ReplicateMeans`), so splitting costs no memory where storing them would
        cost 16 bytes a weight.

        Raises
        ------
        ValueError
            Fewer than 2 replicates.
        """
        r = next(iter(self.replicates.values())).shape[0]
        if r < 2:
            raise ValueError(f"split needs at least 2 replicates, this estimate has {r}")
        half = r // 2

        def part(rows: slice) -> "WeightSensitivity":
            reps = {k: v[rows] for k, v in self.replicates.items()}
            return replace(self, diag=ReplicateMeans(reps), replicates=reps)

        return part(slice(0, half)), part(slice(half, r))

    def interval(self, squared_errors: Mapping[str, np.ndarray], *, level: float = 0.95) -> tuple:
        """``(estimate, low, high)``: Student-t interval on :meth:`predicted`, clipped at 0."""
        return self.interval_from_terms([self.terms(name, e2) for name, e2 in squared_errors.items()], level=level)

    def interval_from_terms(self, terms, *, level: float = 0.95) -> tuple:
        """:meth:`interval` from the tensors' :meth:`terms`, summed in the order given."""
        est, se = self.predicted_from_terms(terms)
        r = next(iter(self.replicates.values())).shape[0]
        q = float(stats.t.ppf(0.5 + level / 2, df=max(r - 1, 1)))
        return est, max(est - q * se, 0.0), est + q * se


def weight_sensitivity(
    model: torch.nn.Module,
    noise: torch.Tensor,
    *,
    adapter: Adapter = XT(),
    solver: str = "midpoint",
    steps: int = 10,
    projections: int = 1,
    replicates: int = 4,
    batch_size: int = 16,
    seed: int = 0,
    autocast: bool = False,
    batches_per_pass: int = 1,
    progress: bool = False,
) -> WeightSensitivity:
    """Per-weight sample-level sensitivity :math:`s_i` of ``model`` (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The full-precision velocity model, called through ``adapter``; it runs where its
        parameters are.
    noise : torch.Tensor, shape ``(n, *event)``
        Starting noise at ``t = 0`` (Gaussian: the plan needs no data).
    adapter, solver, steps
        How the model is called and sampled (the deployed fixed-step solver).
    projections : int
        Random projections per batch.
    replicates : int
        Independent groups of draws (``>= 1``; ``>= 2`` for an error bar); batch ``k`` goes
        to replicate ``k mod replicates``.
    batch_size : int
        Samples per backward pass; lowered, where needed, to the largest size that makes at
        least ``replicates`` batches, so that every replicate gets one (:func:`replicate_batch_size`).
    seed : int
        Seed of the projections.
    autocast : bool
        Run the probes' forward passes under bfloat16 autocast on the model's device (the
        backward passes follow it), as the harness samples on CUDA: about half the time on a
        GPU, at bfloat16's rounding of every activation.  Off by default; what it changes in
        the estimate is measured against the replicates' spread by ``benchmarks/gpu.py``
        (stage ``sensitivity``).
    batches_per_pass : int
        Batches run as one vectorized forward and backward pass (:func:`probe_gradients`):
        the same estimate in fewer, larger kernels, holding that many batches' activations of
        one solver step (one batch per pass holds one batch's activations of every step).
        On the paper's 55.7M network on an H200, 8 batches of 32 per pass took 0.55 of the
        time of one batch per pass, with a peak of 105 GiB (``benchmarks/gpu.md``).
    progress : bool
        tqdm bar over batches.

    Returns
    -------
    WeightSensitivity

    Notes
    -----
    The batches run replicate by replicate (batch ``b`` in replicate ``b mod R``, each
    replicate's batches in increasing order, every batch with the projections it has in batch
    order: :func:`probe_gradients` ``batch_order``), so that the model's device holds the
    float64 sum of one replicate only, ``8`` bytes a parameter; it is added to the host's
    float64 sums of every replicate, ``8 R`` bytes a parameter, when the replicate is done.  Each
    batch's squared probe is added in the same order as in batch order, so the estimate is the
    same, bit for bit, as accumulating all replicates at once in batch order (on the CPU, where
    the host's sums are the device's, they are added to in place).  The host's sums are freed
    one parameter at a time as the result's arrays are made from them (``8 + 4 R`` bytes a
    parameter); :func:`sensitivity_memory`.
    """
    _check_pass(model, noise, solver=solver, steps=steps, projections=projections, replicates=replicates,
                batch_size=batch_size, batches_per_pass=batches_per_pass, autocast=autocast)
    n = int(noise.shape[0])
    batch_size = replicate_batch_size(n, batch_size=batch_size, replicates=replicates)
    n_batches = math.ceil(n / batch_size)
    params = {k: p for k, p in model.named_parameters()}
    device = placement(model, like=noise)[0]
    sums = {k: torch.zeros((replicates, *p.shape), dtype=torch.float64) for k, p in params.items()}
    in_place = device.type == "cpu"  # the host is the device: add to the sums themselves
    count = np.zeros(replicates)
    current, acc = None, {}

    def keep(r: int) -> None:  # replicate r is done: its device sums go to the host's
        if not in_place:
            for k, a in acc.items():
                sums[k][r].copy_(a)

    order = [b for r in range(replicates) for b in range(r, n_batches, replicates)]
    for b, rows, grads in probe_gradients(model, noise, adapter=adapter, solver=solver, steps=steps,
                                          projections=projections, batch_size=batch_size, seed=seed,
                                          autocast=autocast, batches_per_pass=batches_per_pass,
                                          batch_order=order, progress=progress):
        r = b % replicates
        if r != current:
            if current is not None:
                keep(current)
            current = r
            acc = {k: sums[k][r] if in_place else torch.zeros(p.shape, dtype=torch.float64, device=device)
                   for k, p in params.items()}
        for k, g in grads.items():
            acc[k] += g.double() ** 2
        count[r] += rows.stop - rows.start
    keep(current)
    acc.clear()
    counts = torch.as_tensor(count, dtype=torch.float64)
    # each sum is freed once read, so that the sums and the results (8 R and 8 + 4 R bytes a
    # weight) are not all held at once
    diag, replicates = {}, {}
    for k in list(sums):
        a = sums.pop(k)
        a /= counts.reshape((-1,) + (1,) * (a.ndim - 1))
        diag[k] = a.mean(dim=0).numpy()
        # the sums are of squares, so their mean is finite exactly where every replicate's is
        if not np.isfinite(diag[k]).all():  # the samples or their gradients overflowed (a finite model and noise)
            raise ValueError(f"the probes of model parameter {k!r} are not finite: the sampler's output or its "
                             f"gradient overflows for this noise ({solver}, {steps} steps)")
        replicates[k] = a.float().numpy()
        del a
    return WeightSensitivity(
        diag=diag,
        replicates=replicates,
        n_samples=n, projections=projections, solver=solver, steps=steps, seed=seed, autocast=bool(autocast),
    )


def replicate_batch_size(n: int, *, batch_size: int, replicates: int) -> int:
    """The batch size :func:`weight_sensitivity` uses for ``n`` noise samples: the largest size at
    most ``batch_size`` and ``ceil(n / replicates)`` that cuts them into at least ``replicates``
    batches, so that every replicate gets one (``ceil(n / replicates)`` alone cuts 6 samples into
    3 batches of 2, which leaves one of 4 replicates empty; 1 cuts them into 6).

    Raises
    ------
    ValueError
        Fewer samples than replicates, or a count that is not a positive int (naming it).

    Examples
    --------
    >>> replicate_batch_size(256, batch_size=16, replicates=4)
    16
    >>> replicate_batch_size(6, batch_size=16, replicates=4)
    1
    """
    check_probe_settings(n=n, batch_size=batch_size, replicates=replicates)
    if n < replicates:
        raise ValueError(f"replicates={replicates} needs at least that many noise samples; noise has {n}")
    size = min(batch_size, math.ceil(n / replicates))
    while math.ceil(n / size) < replicates:  # ends: size 1 makes n >= replicates batches
        size -= 1
    return size


@dataclass(frozen=True)
class SensitivityMemory:
    """Bytes :func:`weight_sensitivity` holds for a model's parameters: lower bounds (its activations come on top).

    Attributes
    ----------
    sums : int
        During the pass: the float64 sum of the squared probes of every replicate, ``8 R``
        bytes a parameter, on the host.
    device_sums : int
        During the pass, for a model on a GPU: the float64 sum of the replicate being run,
        ``8`` bytes a parameter, on its device (for a model on the CPU it is a slice of ``sums``).
    estimate : int
        After it: the :class:`WeightSensitivity` (a float64 diagonal and ``R`` float32
        replicates), ``8 + 4 R`` bytes a parameter, on the host; a plan holds it until it is
        made.  Its :meth:`~WeightSensitivity.split` halves add nothing (:class:`ReplicateMeans`).
    """

    sums: int
    device_sums: int
    estimate: int


def sensitivity_memory(model: torch.nn.Module, *, replicates: int) -> SensitivityMemory:
    """The bytes of :class:`SensitivityMemory` for ``model``'s parameters and ``replicates``.

    The sums are freed one parameter at a time as the estimate is made from them, so the two
    are not held whole at once.  With 4 replicates: 32 and 24 bytes a parameter on the host,
    1.7 and 1.2 GiB for the paper's 55.7M network, 30 and 22 GiB for 1e9 parameters; on a GPU
    the sums take 8 bytes a parameter whatever the number of replicates (7.5 GiB for 1e9).

    Examples
    --------
    >>> sensitivity_memory(torch.nn.Linear(64, 64), replicates=4)  # 4,160 parameters
    SensitivityMemory(sums=133120, device_sums=33280, estimate=99840)
    """
    check_probe_settings(replicates=replicates)
    n = sum(p.numel() for p in model.parameters())
    return SensitivityMemory(sums=8 * replicates * n, device_sums=8 * n, estimate=(8 + 4 * replicates) * n)


@dataclass(frozen=True)
class PassMemory:
    """Bytes one :func:`weight_sensitivity` pass holds on the model's device, estimated (:func:`pass_memory`).

    Attributes
    ----------
    parameters : int
        The model's parameters (held anyway).
    sums : int
        The float64 sum of the replicate being run, ``8`` bytes a parameter.
    gradients : int
        One probe's gradients (``k = 1``); with ``k = batches_per_pass > 1``, the adjoint's
        ``k P`` accumulators, a pullback's ``k`` gradients and the stacked result: ``3 k P``
        gradients (``P`` projections), each the parameters' size.
    activations : int
        What autograd saves for the backward pass: with ``k = 1`` every velocity evaluation of
        one batch, ``shared + per_row B S N`` (``B`` rows, ``S`` stages of the solver, ``N``
        steps); with ``k > 1`` one solver step of ``k`` batches, ``k (shared + per_row B S)``.
    per_row : int
        Measured: the bytes saved for one noise row's velocity evaluation.
    shared : int
        Measured: the bytes saved once whatever the rows (under autocast, the weights' bfloat16
        copies it caches).
    """

    parameters: int
    sums: int
    gradients: int
    activations: int
    per_row: int
    shared: int

    @property
    def total(self) -> int:
        """The estimated peak: every term above (the allocator's slack and the noise come on top)."""
        return self.parameters + self.sums + self.gradients + self.activations


def pass_memory(model: torch.nn.Module, noise: torch.Tensor, *, adapter: Adapter = XT(), solver: str = "midpoint",
                steps: int = 10, projections: int = 1, replicates: int = 4, batch_size: int = 16,
                autocast: bool = False, batches_per_pass: int = 1) -> PassMemory:
    r"""The device memory of :func:`weight_sensitivity` with these arguments, from two evaluations.

    The velocity is evaluated on one and on two rows of ``noise``, on the model's device and
    under the pass's precision, while :func:`torch.autograd.graph.saved_tensors_hooks` records
    every storage autograd saves for the backward pass (the parameters' own left out): the
    difference is ``per_row``, the rest ``shared``; the pass's terms follow
    (:class:`PassMemory`), with the batch size the pass uses
    (:func:`replicate_batch_size`).  Two evaluations of two rows cost far less than the pass.

    The paper's 55.7M network, measured on the CPU: 102.7 MB a row and evaluation in float32,
    72.2 MB and 111 MB shared under bfloat16 autocast.  Against the five peaks measured on the
    H200 (``benchmarks/gpu_h200_sensitivity.json``, batches of 32, midpoint, 10 steps, with the
    code of then: 8 R bytes a parameter of sums on the device and, vectorized, two steps'
    activations), the same terms came within 2.3 % (``scripts/sensitivity_memory_cpu.py``).  With
    the code now, on an H100 (``benchmarks/gpu_h100_sensitivity.json``): 0.98-0.99 of the measured
    peak with one batch per pass, but 0.84-0.90 with 2-8 batches per vectorized pass (2.6-5.8 GiB
    short): the vectorized backward holds memory that autograd does not save, so there the
    estimate is a lower bound.

    Raises
    ------
    ValueError
        As :func:`weight_sensitivity` for its arguments.

    Examples
    --------
    >>> class Field(torch.nn.Module):  # v(x, t) = W x
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lin = torch.nn.Linear(64, 64, bias=False)
    ...     def forward(self, x, t):
    ...         return self.lin(x)
    >>> m = pass_memory(Field(), torch.randn(32, 64), solver="euler", steps=10, replicates=2, batch_size=16)
    >>> m.per_row  # the input row a Linear saves: 64 float32
    256
    >>> m.activations == 16 * 10 * 256  # 16 rows, 10 evaluations
    True
    """
    _check_pass(model, noise, solver=solver, steps=steps, projections=projections, replicates=replicates,
                batch_size=batch_size, batches_per_pass=batches_per_pass, autocast=autocast)
    device, dtype = placement(model, like=noise)
    params = {k: p.detach().requires_grad_(True) for k, p in model.named_parameters()}
    own = {p.untyped_storage().data_ptr() for p in model.parameters()}
    call = with_parameters(model, params)

    def saved(rows: int) -> int:
        storages: dict = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            if storage.data_ptr() not in own:
                storages[storage.data_ptr()] = storage.nbytes()
            return t

        velocity = adapter.bind(call, rows=slice(0, rows), device=device)
        x = noise[:rows].to(device=device, dtype=dtype).clone()  # its own storage, not the whole noise's
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(autocast)):
                velocity(0.5, x)
        return sum(storages.values())

    one = saved(1)  # one row of noise: all of it counted as the row's (an upper estimate under autocast)
    two = saved(2) if noise.shape[0] > 1 else 2 * one
    per_row, shared = two - one, 2 * one - two
    n = sum(p.numel() for p in model.parameters())
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    rows = replicate_batch_size(int(noise.shape[0]), batch_size=batch_size, replicates=replicates)
    stages = solver_spec(solver).stages
    k = batches_per_pass
    if k == 1:
        gradients, activations = nbytes, shared + per_row * rows * stages * steps
    else:
        gradients, activations = 3 * k * projections * nbytes, k * (shared + per_row * rows * stages)
    return PassMemory(parameters=nbytes, sums=8 * n, gradients=gradients, activations=activations,
                      per_row=per_row, shared=shared)


def _check_pass(model: torch.nn.Module, noise, *, autocast: bool, batches_per_pass: int, **settings) -> None:
    """The checks of :func:`weight_sensitivity`'s arguments (and :func:`pass_memory`'s, the same),
    each a ``ValueError`` naming the argument, before any work."""
    check_probe_settings(**settings, batches_per_pass=batches_per_pass)
    _check_vectorized(autocast=autocast, batches_per_pass=batches_per_pass)
    check_noise(noise)
    _check_finite_parameters(model)


def _check_finite_parameters(model: torch.nn.Module) -> None:
    """``ValueError`` if ``model`` has no parameters (nothing to probe), or naming the first one with
    a NaN or infinite entry."""
    if next(model.parameters(), None) is None:
        raise ValueError("model has no parameters: there is no weight whose sensitivity could be estimated")
    for name, p in model.named_parameters():
        if p.is_floating_point() and not bool(torch.isfinite(p).all()):
            raise ValueError(f"model parameter {name!r} holds NaN or infinite entries")


def probe_gradients(model: torch.nn.Module, noise: torch.Tensor, *, adapter: Adapter = XT(),
                    solver: str = "midpoint", steps: int = 10, projections: int = 1, batch_size: int = 16,
                    seed: int = 0, autocast: bool = False, batches_per_pass: int = 1,
                    batch_order: Sequence[int] | None = None, progress: bool = False):
    r"""The VJP probes of the module docstring, one batch at a time.

    Yields ``(b, rows, grads)`` for every batch ``b`` of ``batch_size`` noise rows (``rows``,
    a slice) and every one of its ``projections``: ``grads`` maps each parameter name to
    :math:`g = \nabla_\theta \sum_{z \in \text{rows}} \langle u_z, x_N(\theta; z)\rangle`
    (detached, on the model's device) for a fresh :math:`u \sim N(0, I)` drawn from ``seed``,
    so that :math:`E_u[(g \cdot e)^2] = \sum_{z} |J_z e|^2` for any weight error :math:`e`.
    ``autocast``: the forward passes run under bfloat16 autocast (:func:`weight_sensitivity`).

    ``batches_per_pass = k > 1`` runs ``k`` consecutive batches of equal size as one forward
    and backward pass, vectorized over the batches by :func:`torch.func.vmap` (every batch
    still gets its own gradient): the same probes, the same :math:`u` in the same order, so
    the same gradients up to floating-point summation order, in ``k`` times fewer, larger
    kernels; not with ``autocast`` (``ValueError``).  Its backward pass recomputes the solver
    step by step (the discrete adjoint of :func:`_vectorized_probes`), so it holds ``k``
    batches' activations of one solver step, where ``k = 1`` holds one batch's activations of
    every step, for one more forward pass.  With ``k = 1`` parameters the samples do not
    depend on are left out; with ``k > 1`` their gradients are zeros.

    ``batch_order`` (a permutation of the batch indices, default ``0, 1, ...``) runs the
    batches in that order; each batch keeps the projections it has in batch order (all are
    drawn first, batch by batch, projection by projection), so in any order the loop yields
    every batch's gradients bit for bit as in batch order.  A vectorized pass takes up to
    ``k`` batches of equal size that follow each other in ``batch_order`` (:func:`_passes`).
    """
    _check_vectorized(autocast=autocast, batches_per_pass=batches_per_pass)
    check_noise(noise)
    n = int(noise.shape[0])
    adapter.check(n)
    device, dtype = placement(model, like=noise)
    n_batches = math.ceil(n / batch_size)
    order = list(range(n_batches)) if batch_order is None else [int(b) for b in batch_order]
    if sorted(order) != list(range(n_batches)):
        raise ValueError(f"batch_order must be a permutation of the {n_batches} batch indices 0..{n_batches - 1}; "
                         f"got {len(order)} indices")
    rows = [slice(b * batch_size, min((b + 1) * batch_size, n)) for b in range(n_batches)]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    u = [[torch.randn((r.stop - r.start, *noise.shape[1:]), generator=gen) for _ in range(projections)]
         for r in rows]  # batch by batch, projection by projection, whatever the order run
    bar = tqdm(total=n_batches, desc="VJP probes", unit="batch", disable=not progress)
    if batches_per_pass == 1:
        params = {k: p.detach().to(device).requires_grad_(True) for k, p in model.named_parameters()}
        call = with_parameters(model, params)
        for b in order:
            velocity = adapter.bind(call, rows=rows[b], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(autocast)):
                xn = integrate(velocity, noise[rows[b]].to(device=device, dtype=dtype), solver=solver, steps=steps).x
            for p in range(projections):
                grads = torch.autograd.grad((u[b][p].to(device=device, dtype=dtype) * xn).sum(), list(params.values()),
                                            retain_graph=p < projections - 1, allow_unused=True)
                yield b, rows[b], {k: g.detach() for k, g in zip(params, grads) if g is not None}
            bar.update(1)
    else:
        params = {k: p.detach().to(device) for k, p in model.named_parameters()}
        probes = _vectorized_probes(model, params, adapter=adapter, solver=solver, steps=steps, device=device)
        sizes = [r.stop - r.start for r in rows]
        for batches in _passes(order, sizes=sizes, batches_per_pass=batches_per_pass):
            x0 = torch.stack([noise[rows[b]] for b in batches]).to(device=device, dtype=dtype)
            index = torch.stack([torch.arange(rows[b].start, rows[b].stop) for b in batches])  # CPU indices cut CPU or CUDA labels
            grads = probes(x0, index, torch.stack([torch.stack(u[b]) for b in batches]).to(device=device, dtype=dtype))
            for j, b in enumerate(batches):
                for p in range(projections):
                    yield b, rows[b], {k: g[j, p] for k, g in grads.items()}
                bar.update(1)
    bar.close()


def _check_vectorized(*, autocast: bool, batches_per_pass: int) -> None:
    """``ValueError`` for bfloat16 autocast with vectorized passes: under :func:`torch.func.vmap`
    torch 2.11's bfloat16 backward of attention mixes float32 and bfloat16 on CUDA (found on
    the paper's network on an H200, ``benchmarks/gpu.md``)."""
    if autocast and batches_per_pass > 1:
        raise ValueError(f"autocast=True with batches_per_pass={batches_per_pass}: not supported (under "
                         "torch.func.vmap the bfloat16 backward of attention mixes float32 and bfloat16 on CUDA); "
                         "use one of them")


def _passes(order: Sequence[int], *, sizes: Sequence[int], batches_per_pass: int) -> list[list[int]]:
    """The batches of each pass: ``order`` cut into runs of at most ``batches_per_pass`` batches
    that follow each other in it and have equal ``sizes`` (a batch of another size starts a pass)."""
    out = []
    for b in order:
        if out and len(out[-1]) < batches_per_pass and sizes[out[-1][0]] == sizes[b]:
            out[-1].append(b)
        else:
            out.append([b])
    return out


def _vectorized_probes(model, params, *, adapter, solver, steps, device):
    r"""``f(x0, index, u) -> {name: (k, P, *shape)}``: the probes of ``k`` batches in one pass.

    ``x0``: ``(k, B, *event)`` noise; ``index``: ``(k, B)`` the rows of each batch (for the
    adapter's per-sample conditioning); ``u``: ``(k, P, B, *event)`` the projections.

    The gradient is the discrete adjoint of the solver, checkpointed at its steps: the
    states :math:`x_0..x_{N-1}` of all ``k`` batches are computed as one ordinary batch
    without a graph, then for :math:`n = N-1..0` the step
    :math:`x_{n+1} = \Phi_n(x_n; \theta)` is recomputed from :math:`x_n` and pulled back,
    batch by batch under :func:`torch.func.vmap`:
    :math:`\lambda_n = \lambda_{n+1}^\top \partial_x\Phi_n`,
    :math:`g \mathrel{+}= \lambda_{n+1}^\top \partial_\theta\Phi_n`, from
    :math:`\lambda_N = u`.  That is backpropagation through the whole solve, term by term
    (the same gradient up to summation order), holding one step's activations instead of
    all of them, for one more forward pass.
    """
    grid = time_grid(steps)

    def advance(x, p, t, h, index):
        velocity = adapter.bind(with_parameters(model, p), rows=index, device=device)
        return step(velocity, x, t, h, solver=solver)

    def adjoint(states, index, u):
        lams = [u[p].to(dtype=states[0].dtype) for p in range(u.shape[0])]
        grads = [{k: torch.zeros_like(v) for k, v in params.items()} for _ in lams]
        for (t, h), x in zip(reversed(grid), reversed(states)):
            _, pull = torch.func.vjp(lambda x_, p_: advance(x_, p_, t, h, index), x, params)
            for j, lam in enumerate(lams):
                lams[j], g = pull(lam)
                for k, v in g.items():
                    grads[j][k] = grads[j][k] + v
            del pull  # this step's activations go before the next step's are made
        return {k: torch.stack([g[k] for g in grads]) for k in params}

    def run(x0, index, u):
        k, b = index.shape
        with torch.no_grad():  # the states of all k batches, one ordinary batch
            states = [x0.reshape(k * b, *x0.shape[2:])]
            for t, h in grid[:-1]:
                states.append(advance(states[-1], params, t, h, index.reshape(-1)))
        return torch.func.vmap(adjoint)([x.reshape(x0.shape) for x in states], index, u)

    return run
