"""Adapters from a model's own call signature to the solver's velocity ``v(t, x)``.

Every solver of :mod:`fmq_theory.flow.solvers`, and through them every bound of
:mod:`fmq_theory.bounds`, evaluates a velocity field as ``v(t, x)`` with ``t`` a Python float
and ``x`` a batch ``(n, *event)``.  Models are written with other signatures; an adapter
says how to call one:

==========================  ===========================================  =====================
adapter                     call                                         time ``t`` passed as
==========================  ===========================================  =====================
:class:`XT`                 ``model(x, t)``                              ``(n,)`` tensor
:class:`XTExtras`           ``model(x=x, t=t, **extras)``, as            0-d tensor
                            facebookresearch/flow_matching's
                            ``ModelWrapper`` under its ``ODESolver``
:class:`TX`                 ``model(t, x)``, as torchcfm / torchdyn      0-d tensor
:class:`ClassConditional`   ``model(x, t, y)`` with classifier-free      ``(n,)`` tensor
                            guidance (this package's UNet)
==========================  ===========================================  =====================

The time tensor has the dtype and device of ``x``; ``scalar_time`` switches between the two
forms.  Per-sample conditioning (labels, tensor extras) is held by the adapter for the whole
set of ``n`` samples; :meth:`Adapter.bind` cuts out the rows of one batch, so the bounds can
batch over samples without knowing what the conditioning is.

Classifier-free guidance (Ho & Salimans 2022) in the flow-matching example's convention:
``v = (1 + w) v(x, t, y) - w v(x, t, null)`` for guidance scale ``w`` (``w = 0``: plain
conditional field, one evaluation per NFE).
"""

from __future__ import annotations

import abc
import itertools
import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

__all__ = ["Adapter", "ClassConditional", "TX", "Velocity", "XT", "XTExtras", "placement", "with_parameters"]

#: ``v(t, x) -> dx/dt`` with ``t`` a float and ``x`` a batch ``(n, *event)``.
Velocity = Callable[[float, torch.Tensor], torch.Tensor]


def _time(t: float, x: torch.Tensor, *, scalar: bool) -> torch.Tensor:
    if scalar:
        return torch.tensor(t, dtype=x.dtype, device=x.device)
    return torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device)


def _rows(value, rows: slice, device):
    """``value[rows]`` on ``device`` for a per-sample tensor; anything else unchanged."""
    if torch.is_tensor(value) and value.ndim >= 1:
        value = value[rows]
        return value if device is None else value.to(device)
    return value


class Adapter(abc.ABC):
    """How to call a model: turns it into a :data:`Velocity` for one batch of samples."""

    @abc.abstractmethod
    def bind(self, model: Callable, *, rows: slice = slice(None), device: torch.device | None = None) -> Velocity:
        """The velocity ``v(t, x)`` of ``model`` for the samples ``rows`` of the conditioning.

        Parameters
        ----------
        model : callable
            The model (a :class:`torch.nn.Module` or any callable with this adapter's
            signature, e.g. a :func:`torch.func.functional_call` of one).
        rows : slice
            Which of the ``n`` samples the batch ``x`` holds (per-sample conditioning is cut
            to them).
        device : torch.device, optional
            Where to move that conditioning (``None``: leave it).

        Returns
        -------
        callable
            ``v(t, x)``.
        """

    def check(self, n: int) -> None:
        """Raise ``ValueError`` unless the per-sample conditioning has ``n`` rows."""


@dataclass(frozen=True, eq=False)
class XT(Adapter):
    """``model(x, t)``: a plain time-dependent velocity field.

    Attributes
    ----------
    scalar_time : bool
        Pass ``t`` as a 0-d tensor instead of one time per sample.

    Examples
    --------
    >>> v = XT().bind(lambda x, t: t[:, None] * x)
    >>> v(0.5, torch.ones(2, 3))
    tensor([[0.5000, 0.5000, 0.5000],
            [0.5000, 0.5000, 0.5000]])
    """

    scalar_time: bool = False

    def bind(self, model, *, rows=slice(None), device=None):
        def v(t, x):
            return model(x, _time(t, x, scalar=self.scalar_time))

        return v


@dataclass(frozen=True, eq=False)
class TX(Adapter):
    """``model(t, x)``: the torchcfm / torchdyn convention (time first, a 0-d tensor).

    Attributes
    ----------
    scalar_time : bool
        Pass ``t`` as a 0-d tensor (default, as torchdyn does) or one time per sample.

    Examples
    --------
    >>> v = TX().bind(lambda t, x: x - t)
    >>> v(1.0, torch.zeros(1, 2))
    tensor([[-1., -1.]])
    """

    scalar_time: bool = True

    def bind(self, model, *, rows=slice(None), device=None):
        def v(t, x):
            return model(_time(t, x, scalar=self.scalar_time), x)

        return v


@dataclass(frozen=True, eq=False)
class XTExtras(Adapter):
    """``model(x=x, t=t, **extras)``: facebookresearch/flow_matching's ``ModelWrapper``.

    Its ``ODESolver`` calls the wrapper with keyword arguments, a 0-d time tensor and the
    ``model_extras`` it was given; this adapter does the same.

    Attributes
    ----------
    extras : Mapping[str, object]
        Keyword arguments of every call.  A tensor with at least one dimension is per-sample
        (first axis the ``n`` samples, cut to the batch and moved to its device); any other
        value is passed as it is.
    scalar_time : bool
        Pass ``t`` as a 0-d tensor (default) or one time per sample.

    Examples
    --------
    >>> def model(x, t, shift, scale=1.0):
    ...     return scale * (x + shift[:, None])
    >>> a = XTExtras(extras={"shift": torch.tensor([0.0, 1.0, 2.0]), "scale": 2.0})
    >>> a.bind(model, rows=slice(1, 3))(0.0, torch.zeros(2, 1))
    tensor([[2.],
            [4.]])
    """

    extras: Mapping[str, object] = field(default_factory=dict)
    scalar_time: bool = True

    def bind(self, model, *, rows=slice(None), device=None):
        extras = {k: _rows(value, rows, device) for k, value in self.extras.items()}

        def v(t, x):
            return model(x=x, t=_time(t, x, scalar=self.scalar_time), **extras)

        return v

    def check(self, n):
        for k, value in self.extras.items():
            if torch.is_tensor(value) and value.ndim >= 1 and value.shape[0] != n:
                raise ValueError(f"extras[{k!r}] has {value.shape[0]} rows, expected one per sample ({n})")


@dataclass(frozen=True, eq=False)
class ClassConditional(Adapter):
    """``model(x, t, y)`` with classifier-free guidance (the package's UNet convention).

    With ``cfg_scale = w > 0`` the conditional and the null-label branch are evaluated in one
    doubled batch and combined as ``(1 + w) v(x, t, y) - w v(x, t, null)``; with ``w = 0`` (or
    no labels) the model is called once, ``model(x, t, labels)``.

    Attributes
    ----------
    labels : torch.Tensor, shape (n,), optional
        Class labels of the ``n`` samples (``None``: an unconditional call ``model(x, t, None)``).
    cfg_scale : float
        Guidance scale ``w >= 0``.
    null_class : int, optional
        The label of the unconditional branch (the UNet's is ``config.num_classes``); needed
        when ``cfg_scale > 0``.

    Raises
    ------
    ValueError
        ``cfg_scale`` is not a finite number ``>= 0`` (an infinite one gave NaN velocities),
        ``labels`` is not 1-D, ``null_class`` is not an int, or ``cfg_scale > 0`` without
        ``null_class``.

    Examples
    --------
    >>> def model(x, t, y):
    ...     return x * (y[:, None] + 1.0)
    >>> a = ClassConditional(labels=torch.tensor([0, 1]), cfg_scale=0.5, null_class=3)
    >>> a.bind(model)(0.0, torch.ones(2, 1))  # 1.5 (y + 1) - 0.5 * 4
    tensor([[-0.5000],
            [ 1.0000]])
    """

    labels: torch.Tensor | None = None
    cfg_scale: float = 0.0
    null_class: int | None = None

    def __post_init__(self):
        if not (math.isfinite(self.cfg_scale) and self.cfg_scale >= 0):
            raise ValueError(f"cfg_scale must be a finite number >= 0, got {self.cfg_scale!r}")
        if self.null_class is not None and (isinstance(self.null_class, bool)
                                            or not isinstance(self.null_class, numbers.Integral)):
            raise ValueError(f"null_class must be an int, got {self.null_class!r}")
        if self.labels is not None and self.labels.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {tuple(self.labels.shape)}")
        if self.cfg_scale > 0 and self.labels is not None and self.null_class is None:
            raise ValueError("cfg_scale > 0 needs null_class, the label of the unconditional branch")

    def bind(self, model, *, rows=slice(None), device=None):
        y = _rows(self.labels, rows, device)
        w = self.cfg_scale

        def v(t, x):
            tt = _time(t, x, scalar=False)
            if w == 0.0 or y is None:
                return model(x, tt, y)
            null = torch.full_like(y, self.null_class)
            vc, vu = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, null])).chunk(2)
            return (1 + w) * vc - w * vu

        return v

    def check(self, n):
        if self.labels is not None and self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(self.labels.shape)}")


def with_parameters(module: torch.nn.Module, params: Mapping[str, torch.Tensor]) -> Callable:
    """``module`` called with the tensors ``params`` in place of its own parameters.

    :func:`torch.func.functional_call`, so gradients and JVPs with respect to ``params`` flow
    through the call; bind the result with an :class:`Adapter` like the module itself.

    The module is put in eval mode, as :func:`fmq_theory.flow.solvers.sample` puts a module it
    samples: every caller (the plan's sensitivity and variants, the bounds' propagation) studies
    the deployed sampler, so dropout is off and batch norm uses its running statistics.  (A
    module in training mode gave dropout-noised sensitivities, and its vectorized probes failed
    under :func:`torch.func.vmap`, which refuses random operations.)

    Examples
    --------
    >>> lin = torch.nn.Linear(1, 1, bias=False)
    >>> with_parameters(lin, {"weight": torch.full((1, 1), 3.0)})(torch.ones(1, 1))
    tensor([[3.]])
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    >>> _ = with_parameters(net, dict(net.named_parameters()))
    >>> net.training
    False
    """
    module.eval()

    def call(*args, **kwargs):
        return torch.func.functional_call(module, params, args, kwargs)

    return call


def placement(model: Callable, *, like: torch.Tensor) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of a model: those of its first floating parameter or buffer.

    Parameters
    ----------
    model : torch.nn.Module or callable
    like : torch.Tensor
        Where a model without floating tensors (a plain function) runs: its device and dtype.

    Returns
    -------
    (torch.device, torch.dtype)

    Examples
    --------
    >>> placement(torch.nn.Linear(2, 2).double(), like=torch.zeros(1))
    (device(type='cpu'), torch.float64)
    >>> placement(lambda x, t: x, like=torch.zeros(1, dtype=torch.float16))
    (device(type='cpu'), torch.float16)
    """
    if isinstance(model, torch.nn.Module):
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
    return like.device, like.dtype
