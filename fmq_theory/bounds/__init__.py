"""Bounds and predictions of the degradation caused by weight quantization, for any
flow-matching model.

Every function takes the model as a :class:`torch.nn.Module` (or, for
:func:`estimate_w2_trajectory`, any callable) and an adapter of :mod:`fmq_theory.flow.velocity`
that says how to call it: ``model(x, t)``, flow_matching's ``model(x=x, t=t, **extras)``,
torchcfm's ``model(t, x)``, or a class-conditional ``model(x, t, y)`` with guidance.  Device
and dtype come from the model.

One vocabulary: ``certified`` for a quantity with no estimated input, ``estimated`` for one
with an estimated input, ``predicted`` for a weights-only prediction.

- :mod:`.certificate` — :func:`certify_w2`, a certified bound on the law-level ``W2`` from
  paired samples (no Jacobians); :func:`certify_fid`, the certified change of the empirical
  FID and of its square root; :func:`estimate_w2_trajectory`, the per-step error recursion
  with Lanczos gains (an estimate that shows which steps make the error).
- :mod:`.prediction` — :func:`predict`, a weights-only first-order prediction (noise gains)
  of the velocity, sample and FID change.
- :mod:`.sampled` — :func:`sampled_dfid`, the FID change predicted from a few hundred paired
  samples and the full-precision moments (a control-variate estimate with a bootstrap interval).
- :mod:`.spectral` — Lanczos estimates of the spectral norm of a one-step map's Jacobian.

The textbook chain of calculators is :mod:`fmq_theory.theory.fid_chain` (no torch).
"""

from fmq_theory.bounds.certificate import (
    FIDCertificate,
    TrajectoryEstimate,
    W2Certificate,
    certify_fid,
    certify_w2,
    empirical_bernstein_upper,
    estimate_w2_trajectory,
    hoeffding_kl_upper,
    one_step_map,
)
from fmq_theory.bounds.prediction import NoiseGains, Prediction, dither_state_dict, noise_gains, predict, row_variances
from fmq_theory.bounds.sampled import SampledDFID, sampled_dfid
from fmq_theory.bounds.spectral import SpectralNormEstimate, jacobian_spectral_norm

__all__ = [
    "FIDCertificate",
    "NoiseGains",
    "Prediction",
    "SampledDFID",
    "SpectralNormEstimate",
    "TrajectoryEstimate",
    "W2Certificate",
    "certify_fid",
    "certify_w2",
    "dither_state_dict",
    "empirical_bernstein_upper",
    "estimate_w2_trajectory",
    "hoeffding_kl_upper",
    "jacobian_spectral_norm",
    "noise_gains",
    "one_step_map",
    "predict",
    "row_variances",
    "sampled_dfid",
]
