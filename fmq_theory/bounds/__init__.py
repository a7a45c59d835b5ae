"""Bounds and predictions of the degradation caused by weight quantization, for any
flow-matching model.

Every function takes the model as a :class:`torch.nn.Module` (or, for :func:`certify`, any
callable) and an adapter of :mod:`fmq_theory.flow.velocity` that says how to call it:
``model(x, t)``, flow_matching's ``model(x=x, t=t, **extras)``, torchcfm's ``model(t, x)``, or
a class-conditional ``model(x, t, y)`` with guidance.  Device and dtype come from the model.

- :mod:`.certificate` — :func:`certify`, a rigorous a-posteriori bound from paired
  trajectories of the full-precision and quantized models, and :func:`certify_fid`.
- :mod:`.prediction` — :func:`predict`, a weights-only first-order prediction (noise gains)
  of the velocity, sample and FID change.
- :mod:`.spectral` — Lanczos estimates of the spectral norm of a one-step map's Jacobian.

The textbook chain of calculators is :mod:`fmq_theory.theory.fid_chain` (no torch).
"""

from fmq_theory.bounds.certificate import (
    Certificate,
    FIDCertificate,
    certify,
    certify_fid,
    empirical_bernstein_upper,
    one_step_map,
)
from fmq_theory.bounds.prediction import NoiseGains, Prediction, dither_state_dict, noise_gains, predict, row_variances
from fmq_theory.bounds.spectral import SpectralNormEstimate, jacobian_spectral_norm

__all__ = [
    "Certificate",
    "FIDCertificate",
    "NoiseGains",
    "Prediction",
    "SpectralNormEstimate",
    "certify",
    "certify_fid",
    "dither_state_dict",
    "empirical_bernstein_upper",
    "jacobian_spectral_norm",
    "noise_gains",
    "one_step_map",
    "predict",
    "row_variances",
]
