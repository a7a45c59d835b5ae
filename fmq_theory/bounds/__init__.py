"""Bounds on the generative degradation caused by weight quantization.

Three layers, each in its own module:

- :mod:`fmq_theory.bounds.chain` — the textbook chain (W2 of weights = MSE, parameter
  Lipschitz, Gronwall and its discrete versions, Gelbrich, feature Lipschitz) as
  calculators whose results carry their assumptions.
- :mod:`fmq_theory.bounds.certificate` — :func:`certify`, a rigorous a-posteriori bound
  from paired trajectories of the full-precision and quantized models.
- :mod:`fmq_theory.bounds.prediction` — :func:`predict`, a weights-only first-order
  prediction (noise gains) of the velocity, sample and FID change.

Names are resolved lazily so that the law-level calculators need no torch.
"""

import importlib

_SUBMODULES = ("chain", "certificate", "prediction")


def __getattr__(name):
    for sub in _SUBMODULES:
        try:
            module = importlib.import_module(f"fmq_theory.bounds.{sub}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fmq_theory.bounds.{sub}":
                continue
            raise
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module 'fmq_theory.bounds' has no attribute {name!r}")
