"""Tests of the weights-only prediction (:mod:`fmq_theory.bounds.prediction`).

Oracles: a velocity field that is linear in its parameters, where the sample displacement is
exactly linear in the weight noise and its gain has a closed form; the dither test on a small
trained model (uniform weight noise of the predicted variance, measured by sampling).
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from _fields import TinyField, trained_tiny_field

from fmq_theory.bounds import NoiseGains, Prediction, dither_state_dict, noise_gains, predict, row_variances
from fmq_theory.flow.frechet import frechet_distance
from fmq_theory.flow.solvers import integrate
from fmq_theory.quantizers import quantize_state_dict

D, M, STEPS = 4, 3, 6


class ParamLinearField(torch.nn.Module):
    """``v(x, t) = A x + W s + b`` with fixed ``A, s``: the end state is affine in ``(W, b)``."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("a", -0.4 * torch.eye(D, dtype=torch.float64) + 0.2 * torch.randn(D, D, generator=gen, dtype=torch.float64))
        self.register_buffer("s", torch.randn(M, generator=gen, dtype=torch.float64))
        self.w = torch.nn.Parameter(torch.randn(D, M, generator=gen, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.randn(D, generator=gen, dtype=torch.float64))

    def forward(self, x, t, y=None):
        return x @ self.a.T + self.w @ self.s + self.b


def _exact_sample_gains(field: ParamLinearField):
    """Euler: ``x_N = P^N x_0 + h sum_k P^k (W s + b)``, ``P = I + h A``; ``S = h sum_k P^k``."""
    h = 1.0 / STEPS
    p = np.eye(D) + h * field.a.numpy()
    s_mat = h * sum(np.linalg.matrix_power(p, k) for k in range(STEPS))
    col = (s_mat**2).sum(0)  # |S e_r|^2
    return col * float((field.s.numpy() ** 2).sum()), np.array([(s_mat**2).sum()]), s_mat


@pytest.fixture(scope="module")
def linear_gains():
    field = ParamLinearField()
    noise = torch.randn(120, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    gains = noise_gains(field, noise, feature_fn=lambda x: x, solver="euler", steps=STEPS, clip=None,
                        projections=2, batch_size=1)
    return field, noise, gains


def test_gains_match_closed_form_on_parameter_linear_field(linear_gains):
    field, noise, gains = linear_gains
    assert isinstance(gains, NoiseGains)
    w_rows, b_rows, s_mat = _exact_sample_gains(field)
    est = dict(zip(gains.names, gains.sample))
    # Each estimate is a mean of n * projections = 240 independent |J^T u|^2, u ~ N(0, I_D),
    # whose relative standard deviation is sqrt(2 tr((J J^T)^2)) / tr(J J^T) <= sqrt(2);
    # a 30% tolerance is > 4.5 standard errors (sqrt(2 / 240) = 9.1%).
    np.testing.assert_allclose(est["w"], w_rows, rtol=0.3)
    np.testing.assert_allclose(est["b"], b_rows, rtol=0.3)
    # feature_fn is the identity and nothing is clipped: feature gains estimate the same thing.
    np.testing.assert_allclose(dict(zip(gains.names, gains.feature))["b"], b_rows, rtol=0.3)
    # Euler increments: d incr / d W_r = e_r s^T (norm^2 |s|^2), d incr / d b = I (norm^2 D).
    step = dict(zip(gains.names, gains.step))
    np.testing.assert_allclose(step["w"], np.full(D, float((field.s**2).sum())), rtol=0.3)
    np.testing.assert_allclose(step["b"], [D], rtol=0.3)


def test_fid_prediction_is_exact_mean_shift(linear_gains):
    field, noise, gains = linear_gains
    # The displacement S (eps_W s + eps_b) is the same for every sample, so with the FP moments as
    # reference FID(eps) = |S (eps_W s + eps_b)|^2 exactly and E FID = sum_l sigma_l^2 gain_l.
    x_fp = integrate(lambda t, x: field(x, t), noise[:8], solver="euler", steps=STEPS).x.detach()
    mse = {"w": 1e-2, "b": 4e-3}
    pred = predict(field, mse, noise=noise[:8], feature_fn=lambda x: x, reference_mean=x_fp.mean(0).numpy(),
                   reference_cov=np.cov(x_fp.numpy().T), gains=gains, solver="euler", steps=STEPS, clip=None,
                   draws=200, seed=2)
    assert isinstance(pred, Prediction)
    w_rows, b_rows, _ = _exact_sample_gains(field)
    exact = mse["w"] * w_rows.sum() + mse["b"] * b_rows.sum()
    # 200 draws of a chi-square-like variable with >= 1 degree of freedom: relative sd <= 10%.
    assert pred.dfid == pytest.approx(exact, rel=0.35)
    assert pred.fid_fp == pytest.approx(0.0, abs=1e-9)
    assert pred.dfid_linear_rms == pytest.approx(0.0, abs=1e-9)  # no odd part: mu_fp = mu_ref
    np.testing.assert_allclose(pred.sample_msd_mc, pred.feature_msd_mc, rtol=1e-9)
    assert np.mean(pred.sample_msd_mc) == pytest.approx(exact, rel=0.35)
    assert pred.tensor_mse.tolist() == [mse["w"], mse["b"]]
    assert pred.dominant("sample", k=1)[0][0] in ("w", "b")


def test_row_variances_and_dither_variance():
    gen = torch.Generator().manual_seed(0)
    sd = {"w": torch.randn(50, 400, generator=gen), "b": torch.randn(7, generator=gen)}
    q = {"w": sd["w"] + 0.1 * torch.randn(50, 400, generator=gen) * torch.linspace(0.5, 2, 50)[:, None], "b": 0.25}
    var = row_variances(sd, q)
    assert var["w"].shape == (50,) and var["b"].tolist() == [0.25]
    dithered = dither_state_dict(sd, q, seed=1)
    noise = (dithered["w"] - sd["w"]).double()
    bound = torch.as_tensor(np.sqrt(3 * var["w"]))[:, None]
    assert torch.all(noise.abs() <= bound * (1 + 1e-6))
    # 400 uniform draws per row: the sample variance is within 25% of sigma^2 (sd of the
    # estimate is sqrt(0.8 / 400) = 4.5% of sigma^2 for a uniform law).
    np.testing.assert_allclose(noise.pow(2).mean(1).numpy(), var["w"], rtol=0.25)
    with pytest.raises(ValueError, match="not a parameter"):
        row_variances(sd, {"zzz": 1.0})
    with pytest.raises(TypeError, match="tensor or a float"):
        row_variances(sd, {"b": "x"})


@pytest.mark.slow
def test_dither_matches_prediction_on_trained_model():
    model = trained_tiny_field()
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    q = quantize_state_dict(sd, method="uniform_minmax", bits=6).state_dict()
    noise = torch.randn(200, 2, generator=torch.Generator().manual_seed(5))
    gains = noise_gains(model, noise[:48], feature_fn=lambda x: x, solver="midpoint", steps=8, clip=None,
                        projections=2, batch_size=4)
    ref = noise.numpy() * 2
    pred = predict(model, q, noise=noise[:50], feature_fn=lambda x: x, reference_mean=ref.mean(0),
                   reference_cov=np.cov(ref.T), gains=gains, solver="midpoint", steps=8, clip=None, draws=3)

    def end(state):
        dithered = TinyField()
        dithered.load_state_dict(state)
        with torch.no_grad():
            return integrate(lambda t, x: dithered(x, torch.full((x.shape[0],), t)), noise, solver="midpoint", steps=8).x

    x_fp = end(sd)
    measured = np.mean([float(((end(dither_state_dict(sd, q, seed=s)) - x_fp) ** 2).sum(1).mean()) for s in range(4)])
    # The noise-gain prediction of E|x_q - x_fp|^2 against uniform weight noise of the same
    # row-wise variance: a first-order model, estimated from 48 samples x 2 projections, and
    # 4 dither draws; agreement within a factor 2 is required.
    assert 0.5 < pred.sample_msd / measured < 2.0
    assert 0.5 < np.mean(pred.sample_msd_mc) / measured < 2.0


def test_actual_error_prediction_is_exact_on_parameter_linear_field(linear_gains):
    field, noise, gains = linear_gains
    # With Euler steps the end state is affine in (W, b), so the linearised propagation of the
    # actual error Q(theta) - theta reproduces the quantized model's samples exactly: FID and
    # mean squared displacement agree with sampling that model to float64 rounding.
    gen = torch.Generator().manual_seed(3)
    q = {"w": field.w.detach() + 0.05 * torch.randn(D, M, generator=gen, dtype=torch.float64),
         "b": field.b.detach() + 0.02 * torch.randn(D, generator=gen, dtype=torch.float64)}
    ref = 1.5 * noise[:40].numpy() + 0.3

    def run(state):
        model = ParamLinearField()
        model.load_state_dict({**field.state_dict(), **state})
        return integrate(lambda t, x: model(x, t), noise[:40], solver="euler", steps=STEPS).x.detach()

    x_fp, x_q = run({}), run(q)
    pred = predict(field, q, noise=noise[:40], feature_fn=lambda x: x, reference_mean=ref.mean(0),
                   reference_cov=np.cov(ref.T), gains=gains, solver="euler", steps=STEPS, clip=None, draws=1)

    def fid(x):
        return frechet_distance(x.mean(0), torch.cov(x.T), torch.as_tensor(ref.mean(0)), torch.as_tensor(np.cov(ref.T)))

    assert pred.dfid_actual == pytest.approx(fid(x_q) - fid(x_fp), rel=1e-9, abs=1e-12)
    assert pred.sample_msd_actual == pytest.approx(float(((x_q - x_fp) ** 2).sum(1).mean()), rel=1e-9)
    assert pred.feature_msd_actual == pytest.approx(pred.sample_msd_actual, rel=1e-12)  # identity features
    # Per-tensor MSEs carry no actual error: the fields are nan, not a guess.
    by_mse = predict(field, {"w": 1e-3}, noise=noise[:8], feature_fn=lambda x: x, reference_mean=ref.mean(0),
                     reference_cov=np.cov(ref.T), gains=gains, solver="euler", steps=STEPS, clip=None, draws=1)
    assert np.isnan(by_mse.dfid_actual) and np.isnan(by_mse.sample_msd_actual)
