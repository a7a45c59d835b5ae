"""Bad input, second audit: the bounds, the flow, the two checkpoint readers, the plan's candidates
and the symbolic Student-t constants.

Every case asserts the error type and a message fragment naming the argument (or the file), or
the value that came back in its place; each comment says what the code did before (a NaN or a
silently wrong result, a raw error that named no argument, or a hang).
"""

from __future__ import annotations

import json
import math
import struct
import time

import mpmath as mp
import numpy as np
import pytest
import torch
from _safetensors_files import rewrite_document

from fmq_theory.bounds.certificate import certify_fid, certify_w2, estimate_w2_trajectory
from fmq_theory.bounds.constants import (layer_norm_upper, lip_features_upper, lipschitz_theta_lower,
                                         lipschitz_x_lower, trajectory_constants, trajectory_points)
from fmq_theory.bounds.prediction import Prediction, dither_state_dict, noise_gains, predict, row_variances
from fmq_theory.bounds.spectral import jacobian_spectral_norm
from fmq_theory.cli import main
from fmq_theory.flow.path import cond_ot_path, flow_matching_loss
from fmq_theory.flow.solvers import balanced_labels, integrate, make_noise, sample, time_grid
from fmq_theory.flow.velocity import ClassConditional
from fmq_theory.io.float_checkpoint import load_state_dict_file
from fmq_theory.io.quantized_file import inspect_quantized, load_quantized, save_quantized
from fmq_theory.plan.candidates import Candidate, fit_candidate
from fmq_theory.quantizers import quantize_state_dict
from fmq_theory.theory import symbolic
from fmq_theory.theory.distortion import law_quantizer
from fmq_theory.theory.laws import make_law


class Field(torch.nn.Module):
    """``v(x, t) = W x`` with a 2 x 2 ``W``."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[-1.0, 0.5], [0.0, -0.5]]))

    def forward(self, x, t):
        return self.lin(x)


def _decay(x, t):
    return -x


# ----------------------------------------------------------------------------- flow: solvers, path, velocity


def test_time_grid_and_integrate_refuse_a_non_finite_interval_or_tolerance():
    with pytest.raises(ValueError, match="t_start=nan"):
        time_grid(2, t_start=math.nan)  # ((nan, nan), (nan, nan))
    with pytest.raises(ValueError, match="t_end=inf"):
        integrate(lambda t, x: -x, torch.ones(1, 1), solver="euler", t_end=math.inf)  # tensor([[nan]])
    with pytest.raises(ValueError, match="rtol=nan"):
        integrate(lambda t, x: -x, torch.ones(1, 1), solver="dopri5", rtol=math.nan)  # AssertionError: underflow in dt
    with pytest.raises(ValueError, match="atol=-1.0"):
        integrate(lambda t, x: -x, torch.ones(1, 1), solver="dopri5", atol=-1.0)  # a result
    with pytest.raises(ValueError, match="t_end=inf"):
        integrate(lambda t, x: -x, torch.ones(1, 1), solver="dopri5", t_end=math.inf)  # never returned


def test_make_noise_and_balanced_labels_name_their_arguments():
    with pytest.raises(ValueError, match="n must be a positive int, got True"):
        make_noise(True, (2,), seed=0)  # TypeError from torch.randn
    with pytest.raises(ValueError, match=r"shape must be a sequence of ints >= 0, got \(-1,\)"):
        make_noise(2, (-1,), seed=0)  # RuntimeError: negative dimension
    for seed in (1.5, 2**70):  # 1.5 drew seed 1's noise; 2**70: "Overflow when unpacking long long"
        with pytest.raises(ValueError, match=r"seed must be an integer in \[-2\*\*63, 2\*\*64\)"):
            make_noise(2, (2,), seed=seed)
    assert torch.equal(make_noise(2, (2,), seed=-1), make_noise(2, (2,), seed=-1))  # negative seeds stay valid
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        balanced_labels(4, 0)  # RuntimeError: ZeroDivisionError
    for n in (-1, 2.5):  # a RuntimeError; two labels for n = 2.5
        with pytest.raises(ValueError, match="n must be an int >= 0"):
            balanced_labels(n, 3)


def test_sample_refuses_empty_or_non_finite_noise_and_an_empty_clip():
    with pytest.raises(ValueError, match=r"clip=\(1.0, -1.0\) must be None or a pair"):
        sample(_decay, torch.ones(2, 2), solver="euler", steps=2, clip=(1.0, -1.0))  # every sample -1.0
    with pytest.raises(ValueError, match=r"noise of shape \(0, 2\) holds no samples"):
        sample(_decay, torch.ones(0, 2), solver="euler", steps=2)  # torch.cat(): expected a non-empty list
    with pytest.raises(ValueError, match=r"noise must be a floating tensor of shape \(n, \*event\), got shape \(3,\)"):
        sample(_decay, torch.ones(3), solver="euler", steps=2)  # a scalar event is (n, 1), as for every probe
    with pytest.raises(ValueError, match=r"got shape \(3, 2\), dtype torch.int64"):
        sample(_decay, torch.ones(3, 2, dtype=torch.long), solver="euler", steps=2)
    with pytest.raises(ValueError, match="noise holds NaN or infinite entries"):
        sample(_decay, torch.full((2, 2), math.nan), solver="euler", steps=2)  # NaN samples


def test_class_conditional_refuses_infinite_guidance_and_a_fractional_null_class():
    with pytest.raises(ValueError, match="cfg_scale must be a finite number >= 0, got inf"):
        ClassConditional(labels=torch.tensor([0, 1]), cfg_scale=math.inf, null_class=2)  # NaN velocities
    with pytest.raises(ValueError, match="null_class must be an int, got 1.5"):
        ClassConditional(labels=torch.tensor([0, 1]), cfg_scale=1.0, null_class=1.5)  # class 1 used as null


def test_flow_matching_path_and_loss_need_a_non_empty_batch():
    with pytest.raises(ValueError, match="x0 and x1 must have a batch axis"):
        cond_ot_path(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(0.5))  # IndexError
    for x1 in (torch.zeros(0, 3), torch.tensor(1.0)):  # tensor(nan); IndexError
        with pytest.raises(ValueError, match="x1 must be a non-empty batch"):
            flow_matching_loss(lambda x, t, y: x, x1, y=None)


# ----------------------------------------------------------------------------- bounds: spectral norms, constants


def test_jacobian_spectral_norm_refuses_empty_or_non_finite_input():
    with pytest.raises(ValueError, match=r"point must be a floating tensor of shape \(n >= 1, \.\.\.\)"):
        jacobian_spectral_norm(lambda x: 2 * x, torch.zeros(0, 3))  # IndexError
    with pytest.raises(ValueError, match="point holds NaN or infinite entries"):
        jacobian_spectral_norm(lambda x: x * x, torch.tensor([[math.nan, 1.0]]))  # tensor([nan])
    with pytest.raises(ValueError, match="start holds NaN or infinite entries"):
        jacobian_spectral_norm(lambda x: 2 * x, torch.ones(2, 2), start=torch.full((2, 2), math.nan))
    with pytest.raises(ValueError, match="step_map: its Jacobian products at point are not finite"):
        jacobian_spectral_norm(lambda x: x * 1e38 * 1e38, torch.ones(2, 2))  # tensor([nan, nan])
    with pytest.raises(ValueError, match="iterations must be a positive int, got True"):
        jacobian_spectral_norm(lambda x: 2 * x, torch.ones(2, 2), iterations=True)  # ran one iteration
    est = jacobian_spectral_norm(lambda x: 2 * x, torch.ones(2, 2), iterations=2)
    assert torch.allclose(est.norm, torch.full((2,), 2.0))


def test_lipschitz_estimates_refuse_what_gave_zero_nan_or_a_raw_error():
    params = {"w": torch.tensor([[3.0, 0.0], [0.0, 1.0]])}

    def velocity_of(p):
        return lambda t, x: x @ p["w"].T

    point = [(0.0, torch.ones(1, 2))]  # d(W x)/dW maps dW to dW x: norm |x| = sqrt(2)
    assert lipschitz_theta_lower(velocity_of, params, point, iterations=3)[0] == pytest.approx(math.sqrt(2), rel=1e-6)
    for iterations in (0, -1):  # array([0.])
        with pytest.raises(ValueError, match=f"iterations must be a positive int, got {iterations}"):
            lipschitz_theta_lower(velocity_of, params, point, iterations=iterations)
    with pytest.raises(ValueError, match="points is empty"):
        lipschitz_theta_lower(velocity_of, params, [])  # array([]): its max raised later
    with pytest.raises(ValueError, match=r"points\[0\]: \|\|d v / d theta\|\| is not finite"):
        lipschitz_theta_lower(velocity_of, params, [(0.0, torch.full((1, 2), math.nan))])  # array([nan])
    with pytest.raises(ValueError, match="points is empty"):
        lipschitz_x_lower(velocity_of(params), [])  # "need at least one array to stack"
    with pytest.raises(ValueError, match="x0 holds NaN or infinite entries"):
        trajectory_points(velocity_of(params), torch.full((2, 2), math.nan), solver="euler", steps=2)  # NaN states


def test_trajectory_constants_names_noise_and_theta_samples():
    with pytest.raises(ValueError, match="noise holds NaN or infinite entries"):
        trajectory_constants(Field(), torch.full((2, 2), math.nan), solver="euler", steps=2)  # L_x = nan
    with pytest.raises(ValueError, match="noise must be a floating tensor"):
        trajectory_constants(Field(), torch.tensor(1.0), solver="euler", steps=2)  # IndexError
    for theta_samples in (1.5, True):  # TypeError; True ran as 1
        with pytest.raises(ValueError, match=f"theta_samples={theta_samples!r} must be an int in"):
            trajectory_constants(Field(), torch.ones(2, 2), solver="euler", steps=2, theta_samples=theta_samples)


def test_layer_norms_name_the_layer_its_shape_and_the_net():
    bad = torch.nn.Linear(2, 2)
    with torch.no_grad():
        bad.weight[0, 0] = math.nan
    with pytest.raises(ValueError, match="layer .*: its weight holds NaN or infinite entries"):
        layer_norm_upper(bad, (2,))  # LinAlgError (and nan for a convolution)
    with pytest.raises(ValueError, match=r"in_shape=\(5, 5\) must be \(c, h, w\) for a Conv2d"):
        layer_norm_upper(torch.nn.Conv2d(1, 1, 3), (5, 5))  # IndexError
    with pytest.raises(ValueError, match="net .* has no parameters"):
        lip_features_upper(lambda x: x, torch.nn.ReLU(), input_shape=(2,))  # StopIteration


# ----------------------------------------------------------------------------- bounds: certificates


def test_certify_w2_names_samples_and_the_box():
    x = torch.rand(10, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="samples_fp and samples_q must be paired .* with at least one coordinate"):
        certify_w2(torch.zeros(4, 0), torch.zeros(4, 0))  # "upper=0.0 must be finite": an inner name
    with pytest.raises(ValueError, match=r"low=-1e\+200, high=1e\+200: the squared diameter .* overflows"):
        certify_w2(x, x, low=-1e200, high=1e200)  # OverflowError
    with pytest.raises(ValueError, match=r"low=-1e\+308, high=1e\+308"):
        certify_w2(x, x, low=-1e308, high=1e308)  # "upper=inf must be finite"
    with pytest.raises(ValueError, match="samples_fp and samples_q must be real"):
        certify_w2(x + 0j, x)  # a certificate, the imaginary part dropped


def test_estimate_w2_trajectory_names_noise_batch_size_and_lanczos_iterations():
    field = Field()
    with pytest.raises(ValueError, match="noise holds NaN or infinite entries"):
        estimate_w2_trajectory(field, field, torch.full((4, 2), math.nan), steps=2)  # "upper=nan": an inner name
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        estimate_w2_trajectory(field, field, torch.ones(4, 2), steps=2, batch_size=0)  # range() arg 3 must not be zero
    with pytest.raises(ValueError, match="lanczos_iterations must be a positive int, got 0"):
        estimate_w2_trajectory(field, field, torch.ones(4, 2), steps=2, lanczos_iterations=0)  # named iterations=


def test_certify_fid_names_features_reference_moments_and_labels():
    rng = np.random.default_rng(0)
    fa = rng.normal(size=(20, 3))
    fb = fa + 0.1
    ref = {"reference_mean": np.zeros(3), "reference_cov": np.eye(3), "n_boot": 2}
    with pytest.raises(ValueError, match="features_q holds NaN or infinite entries"):
        certify_fid(fa, fb * np.nan, **ref)  # "features contains NaN": no such argument
    with pytest.raises(ValueError, match=r"reference_mean must be a finite array of shape \(3,\), got shape \(4,\)"):
        certify_fid(fa, fb, **{**ref, "reference_mean": np.zeros(4)})  # "mu2 must have shape"
    with pytest.raises(ValueError, match="reference_cov must be a finite array"):
        certify_fid(fa, fb, **{**ref, "reference_cov": np.full((3, 3), np.inf)})
    with pytest.raises(ValueError, match="labels_fp and labels_q must be given together"):
        certify_fid(fa, fb, labels_fp=np.zeros(20), **ref)  # switch_rate=None, the labels ignored


# ----------------------------------------------------------------------------- bounds: prediction


def test_row_variances_and_dither_refuse_non_finite_errors():
    params = {"w": torch.zeros(2, 3)}
    for bad in (math.nan, math.inf):  # array([nan, nan]); array([inf, inf])
        with pytest.raises(ValueError, match=r"quantized\['w'\]: its error variances are not finite"):
            row_variances(params, {"w": torch.full((2, 3), bad)})
    with pytest.raises(ValueError, match=r"quantized\['w'\]: its error variances are not finite"):
        row_variances(params, {"w": torch.full((2, 3), 1e200, dtype=torch.float64)})  # the square overflows
    with pytest.raises(ValueError, match=r"quantized\['w'\]: its error variances are not finite"):
        dither_state_dict(params, {"w": torch.full((2, 3), math.nan)})  # NaN weights
    with pytest.raises(ValueError, match=r"quantized\['w'\]: the dithered weights are not finite"):
        dither_state_dict(params, {"w": 1e308})  # +-inf weights
    out = dither_state_dict(params, {"w": 0.25})
    assert out["w"].abs().max() <= math.sqrt(3 * 0.25)


def test_noise_gains_and_predict_name_noise_batch_size_clip_and_the_reference():
    field, noise = Field(), torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    common = {"feature_fn": lambda x: x, "solver": "euler", "steps": 2}
    with pytest.raises(ValueError, match=r"noise of shape \(0, 2\) holds no samples"):
        noise_gains(field, torch.zeros(0, 2), **common)  # gains of NaN
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        noise_gains(field, noise, batch_size=0, **common)  # range() arg 3 must not be zero
    with pytest.raises(ValueError, match="clip=3 must be None or a pair"):
        noise_gains(field, noise, clip=3, **common)  # TypeError: object of type 'int' has no len()
    gains = noise_gains(field, noise, **common)
    ref = {"reference_mean": np.zeros(2), "reference_cov": np.eye(2), "gains": gains}
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        predict(field, {"lin.weight": 0.01}, noise=noise, batch_size=0, **ref, **common)
    with pytest.raises(ValueError, match="reference_mean contains NaN or infinite values"):
        predict(field, {"lin.weight": 0.01}, noise=noise, **{**ref, "reference_mean": np.full(2, np.nan)},
                **common)  # "mu2 contains NaN": no such argument
    with pytest.raises(ValueError, match=r"reference_mean and reference_cov must have shapes \(D,\) and \(D, D\)"):
        predict(field, {"lin.weight": 0.01}, noise=noise, **{**ref, "reference_cov": np.eye(3)}, **common)
    assert math.isfinite(predict(field, {"lin.weight": 0.01}, noise=noise, **ref, **common).dfid)


def test_prediction_dominant_names_k():
    pred = Prediction(names=("a", "b"), tensor_mse=np.zeros(2), step_terms=np.array([1.0, 3.0]),
                      sample_terms=np.zeros(2), feature_terms=np.zeros(2), step_mse=4.0, sample_msd=0.0,
                      feature_msd=0.0, fid_fp=0.0, fid_draws=np.zeros((1, 2)), dfid=0.0, dfid_linear_rms=0.0,
                      sample_msd_mc=np.zeros(1), feature_msd_mc=np.zeros(1), dfid_actual=0.0,
                      sample_msd_actual=0.0, feature_msd_actual=0.0, n=2)
    assert pred.dominant("step", k=1) == [("b", 0.75)]
    for k in (-1, 0, 1.5):  # every tensor but the last; []; TypeError: slice indices must be integers
        with pytest.raises(ValueError, match=f"k must be a positive int, got {k!r}"):
            pred.dominant("step", k=k)


# ----------------------------------------------------------------------------- plan: candidates


def test_fit_candidate_needs_one_sensitivity_per_weight_and_a_non_empty_tensor():
    w = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    cand = Candidate("weighted_lloyd", 2, "tensor")
    for s in (np.ones(10), np.ones(100)):  # fitted with 54 zero sensitivities; a numpy broadcast error
        with pytest.raises(ValueError, match=r"needs the tensor's sensitivity, one value per weight of w"):
            fit_candidate(w, cand, sensitivity=s)
    flat, shaped = (fit_candidate(w, cand, sensitivity=s).mse for s in (np.ones(64), np.ones((4, 16))))
    assert flat == shaped
    with pytest.raises(ValueError, match=r"w is empty \(shape \(0,\)\)"):
        fit_candidate(torch.zeros(0), Candidate("float16", 16, "tensor", "float16"), sensitivity=None)  # mse=nan


# ----------------------------------------------------------------------------- files: untrusted headers


def _raw_safetensors(path, header) -> str:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text)
    return str(path)


def test_a_header_whose_metadata_is_not_a_mapping_names_the_file(tmp_path):
    path = _raw_safetensors(tmp_path / "m.safetensors", {"__metadata__": 5})
    for reader in (load_quantized, inspect_quantized, load_state_dict_file):  # TypeError: 'int' is not iterable
        with pytest.raises(ValueError, match=f"{path!r} has a corrupt safetensors header: '__metadata__' is not"):
            reader(path)


def _rewritten(tmp_path, change) -> str:
    """A valid quantized file with its layout document edited by ``change`` (no data touched)."""
    good = tmp_path / "good.safetensors"
    save_quantized(good, quantize_state_dict({"w": torch.randn(4, 16, generator=torch.Generator().manual_seed(0))},
                                             method="equal_mass", bits=2))
    out = tmp_path / "edited.safetensors"
    rewrite_document(good, out, change)
    return str(out)


def test_a_quantized_layout_with_the_wrong_kinds_of_values_names_the_file(tmp_path):
    path = _rewritten(tmp_path, lambda doc: doc["tensors"]["w"].__setitem__("report", [1]))
    with pytest.raises(ValueError, match=f"{path!r}: invalid tensor layout"):
        load_quantized(path)  # AttributeError: 'list' object has no attribute 'items'
    path = _rewritten(tmp_path, lambda doc: doc.__setitem__("metadata", "x"))
    with pytest.raises(ValueError, match=f"{path!r}: the caller's metadata is not a mapping"):
        inspect_quantized(path)  # metadata='x' where a dict is documented
    with pytest.raises(ValueError, match="device='nope' is not a device name"):
        load_quantized(tmp_path / "good.safetensors", device="nope")  # accepted; dequantize() failed later


# ----------------------------------------------------------------------------- theory: symbolic Student-t


def test_symbolic_student_t_takes_nu_in_steps_of_one_half_and_refuses_the_rest_at_once(capsys):
    start = time.perf_counter()
    for nu in (3.14159, 3.2):  # 3.14159: asymptotic_form(equal_mass) ran past 60 s, the others returned
        with pytest.raises(ValueError, match=rf"nu={nu} is not an integer or a half-integer.*law_quantizer"):
            symbolic.panter_dite_constant("student-t", nu=nu)
    for nu, limit in ((127, "125"), (83.5, "82.5")):  # ValueError: Exceeds the limit (4300 digits) for integer ...
        with pytest.raises(ValueError, match=rf"nu={nu} is above {limit} for an odd or half-integer nu"):
            symbolic.asymptotic_table("student-t", nu=nu)
    with pytest.raises(ValueError, match=r"nu=999.5 is above 82.5"):
        symbolic.pareto_tail_sum(999.5)  # asymptotic_table ran past 60 s
    assert time.perf_counter() - start < 1
    status = main(["asymptotics", "--law", "student-t", "--nu", "3.14159"])
    assert status == 2 and "nu=3.14159 is not an integer or a half-integer" in capsys.readouterr().err
    # the numeric path answers for that nu; the symbolic one still for the largest accepted odd nu
    assert math.isfinite(law_quantizer(make_law("student-t", nu=3.14159), method="equal_mass", bits=2).distortion)
    nu = mp.mpf(125)
    c = mp.gamma((nu + 1) / 2) / (mp.sqrt(nu * mp.pi) * mp.gamma(nu / 2)) / mp.sqrt((nu - 2) / nu)  # p(0)
    cube = 2 * c ** (mp.mpf(1) / 3) * mp.quad(lambda x: (1 + x * x / (nu - 2)) ** (-(nu + 1) / 6), [0, mp.inf])
    assert symbolic.panter_dite_constant("student-t", nu=125).value == pytest.approx(float(cube**3 / 12), rel=1e-12)
