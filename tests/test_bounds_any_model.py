"""The bounds on flow-matching models that are not the package's UNet.

Three toy velocity models on 2-D data, each with the call signature of a common library:

* ``MLPField``: a plain MLP, ``forward(x, t)``;
* ``FMWrapper``: facebookresearch/flow_matching's ``ModelWrapper`` convention,
  ``forward(x, t, **extras)`` with a per-sample ``label`` extra, holding the network as
  ``self.model`` (so its parameter names carry the prefix ``model.``);
* ``TXField``: torchcfm's ``forward(t, x)`` with a 0-d time, a field ``A x + W phi(t) + b``
  that is affine in its parameters ``(W, b)``, so any fixed-step end state is affine in them
  and the linearised prediction of the actual weight error is exact.

:func:`estimate_w2_trajectory`, :func:`noise_gains` and :func:`predict` run on each through the adapters of
:mod:`fmq_theory.flow.velocity`, with ``clip=None``; the docstring examples of the bounds run
as doctests.
"""

import copy
import doctest
import math

import numpy as np
import pytest
import torch

from fmq_theory.bounds import certificate, estimate_w2_trajectory, noise_gains, predict, prediction, row_variances
from fmq_theory.flow.frechet import fid_from_features
from fmq_theory.flow.solvers import integrate
from fmq_theory.flow.velocity import TX, XT, XTExtras
from fmq_theory.quantizers import quantize_state_dict
from fmq_theory.quantizers import state_dict as state_dict_module

N, STEPS = 24, 6


class MLPField(torch.nn.Module):
    """``forward(x, t)``, ``t`` of shape ``(n,)``."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)).double()

    def forward(self, x, t):
        return self.net(torch.cat([x, t[:, None]], 1))


class LabelNet(torch.nn.Module):
    """The network a flow_matching wrapper holds: ``net(x, t, label)``."""

    def __init__(self, seed: int = 1):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(3, 4).double()
        self.net = torch.nn.Sequential(torch.nn.Linear(7, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2)).double()

    def forward(self, x, t, label):
        return self.net(torch.cat([x, t[:, None], self.embed(label)], 1))


class FMWrapper(torch.nn.Module):
    """flow_matching's ``ModelWrapper`` convention: ``forward(x, t, **extras)``, ``t`` 0-d."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, t, **extras):
        return self.model(x, t.expand(x.shape[0]), extras["label"])


class TXField(torch.nn.Module):
    """torchcfm's ``forward(t, x)``, ``t`` 0-d: ``v = A x + W phi(t) + b``, affine in ``(W, b)``."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(2)
        self.register_buffer("a", -0.5 * torch.eye(2, dtype=torch.float64) + 0.3 * torch.randn(2, 2, generator=gen, dtype=torch.float64))
        self.w = torch.nn.Parameter(torch.randn(2, 3, generator=gen, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.randn(2, generator=gen, dtype=torch.float64))

    def forward(self, t, x):
        phi = torch.stack([torch.sin(2 * math.pi * t), torch.cos(2 * math.pi * t), t]).expand(x.shape[0], 3)
        return x @ self.a.T + phi @ self.w.T + self.b


LABELS = torch.arange(N) % 3


def _case(kind, n=N):
    """(full-precision model, adapter for the first ``n`` samples) of one toy model."""
    if kind == "x_t":
        return MLPField(), XT()
    if kind == "x_t_extras":
        return FMWrapper(LabelNet()), XTExtras(extras={"label": LABELS[:n]})
    return TXField(), TX()


def _quantized(model, bits):
    """A copy of ``model`` with its parameters quantized, and the quantized parameters."""
    params = dict(model.named_parameters())
    sd = quantize_state_dict({k: v.detach() for k, v in params.items()}, method="uniform_minmax", bits=bits).state_dict()
    q = copy.deepcopy(model)
    q.load_state_dict({**model.state_dict(), **sd})
    return q, sd


def _end(model, adapter, noise):
    with torch.no_grad():
        return integrate(adapter.bind(model), noise.double(), solver="midpoint", steps=STEPS).x


KINDS = ["x_t", "x_t_extras", "t_x"]


@pytest.fixture(scope="module")
def noise():
    return torch.randn(N, 2, generator=torch.Generator().manual_seed(0))  # float32: the models' float64 is used


@pytest.mark.parametrize("kind", KINDS)
def test_estimate_w2_trajectory_any_model(kind, noise):
    model, adapter = _case(kind)
    q, _ = _quantized(model, bits=4)
    cert = estimate_w2_trajectory(model, q, noise, adapter=adapter, solver="midpoint", steps=STEPS, lanczos_iterations=2,
                   batch_size=10, value_range=None)
    assert all(np.all(np.isfinite(a)) for a in (cert.per_sample, cert.paired_distance, cert.step_gains))
    # The measured distance is that of the two sampled end points (same adapter, same solver).
    measured = (_end(q, adapter, noise) - _end(model, adapter, noise)).norm(dim=1).numpy()
    np.testing.assert_allclose(cert.paired_distance, measured, rtol=1e-12)
    assert cert.paired_distance.min() > 0  # 4-bit weights move every sample
    assert np.all(cert.per_sample >= cert.paired_distance)
    assert cert.w2_paired <= cert.w2_rms <= cert.w2_estimate


@pytest.mark.parametrize("kind", KINDS)
def test_noise_gains_and_predict_any_model(kind, noise):
    model, adapter = _case(kind)
    gains = noise_gains(model, noise[:8], feature_fn=lambda x: x, adapter=_case(kind, 8)[1], solver="midpoint", steps=STEPS,
                        clip=None, projections=2, batch_size=4)
    assert gains.names == tuple(n for n, _ in model.named_parameters())
    for level in (gains.step, gains.sample, gains.feature):
        assert all(np.all(np.isfinite(g)) and np.all(g >= 0) for g in level)
        assert sum(float(g.sum()) for g in level) > 0
    q, sd_q = _quantized(model, bits=8)
    ref = 1.5 * noise.double().numpy() + 0.3
    pred = predict(model, sd_q, noise=noise, feature_fn=lambda x: x, reference_mean=ref.mean(0),
                   reference_cov=np.cov(ref.T), gains=gains, adapter=adapter, solver="midpoint", steps=STEPS,
                   clip=None, draws=2)
    x_fp, x_q = _end(model, adapter, noise), _end(q, adapter, noise)
    msd = float(((x_q - x_fp) ** 2).sum(1).mean())
    dfid = fid_from_features(x_q, ref) - fid_from_features(x_fp, ref)
    assert pred.fid_fp == pytest.approx(fid_from_features(x_fp, ref), rel=1e-9)
    assert pred.feature_msd_actual == pytest.approx(pred.sample_msd_actual, rel=1e-12)  # identity features
    assert np.all(np.isfinite(pred.fid_draws)) and pred.sample_msd > 0
    if kind == "t_x":
        # affine in the parameters: the linearised actual error is the quantized model's
        assert pred.sample_msd_actual == pytest.approx(msd, rel=1e-9)
        assert pred.dfid_actual == pytest.approx(dfid, rel=1e-9, abs=1e-12)
    else:
        # 8-bit error: the first-order term dominates the displacement
        assert pred.sample_msd_actual == pytest.approx(msd, rel=0.05)


def test_predict_matches_parameters_held_by_a_wrapper(noise):
    # flow_matching's wrapper holds the network as ``model``: quantizing the network itself
    # gives names without the ``model.`` prefix, and predict must match them all the same.
    wrapper, adapter = _case("x_t_extras", 8)
    gains = noise_gains(wrapper, noise[:8], feature_fn=lambda x: x, adapter=adapter, solver="euler", steps=STEPS,
                        projections=1, batch_size=4)
    inner = quantize_state_dict({k: v.detach() for k, v in wrapper.model.named_parameters()},
                                method="uniform_minmax", bits=6).state_dict()
    outer = {f"model.{k}": v for k, v in inner.items()}
    kw = dict(noise=noise[:8], feature_fn=lambda x: x, reference_mean=np.zeros(2), reference_cov=np.eye(2),
              gains=gains, adapter=adapter, solver="euler", steps=STEPS, draws=1)
    by_inner, by_outer = predict(wrapper, inner, **kw), predict(wrapper, outer, **kw)
    assert by_inner.names == by_outer.names == gains.names
    for field in ("tensor_mse", "sample_terms", "fid_draws"):
        assert np.array_equal(getattr(by_inner, field), getattr(by_outer, field))
    assert by_inner.dfid_actual == by_outer.dfid_actual and np.isfinite(by_inner.dfid_actual)
    with pytest.raises(ValueError, match="matches"):
        row_variances({"a.weight": torch.zeros(2), "b.weight": torch.zeros(2)}, {"weight": 0.1})


def test_device_and_dtype_come_from_the_models(noise):
    model, _ = _case("x_t")
    q, _ = _quantized(model, bits=4)
    with pytest.raises(ValueError, match="one device and dtype"):
        estimate_w2_trajectory(model, q.float(), noise, steps=2)
    # a plain function runs where the noise is
    cert = estimate_w2_trajectory(lambda x, t: -x, lambda x, t: -0.9 * x, noise, steps=2, lanczos_iterations=2)
    assert cert.per_sample.dtype == np.float64 and np.all(np.isfinite(cert.per_sample))


@pytest.mark.parametrize("function", [certificate.estimate_w2_trajectory, prediction.noise_gains, prediction.predict,
                                      state_dict_module.quantize_state_dict])
def test_docstring_examples(function):
    runner = doctest.DocTestRunner()
    module = {certificate.estimate_w2_trajectory: certificate, prediction.noise_gains: prediction, prediction.predict: prediction,
              state_dict_module.quantize_state_dict: state_dict_module}[function]
    tests = doctest.DocTestFinder().find(function, function.__name__, globs=vars(module).copy())
    assert sum(len(t.examples) for t in tests) > 0
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0
