"""plan_quantization on a tiny model: budget, file size, exact round trip, packed loading."""

import dataclasses
import math
import time
import tracemalloc

import numpy as np
import pytest
import torch

from fmq_theory.flow.solvers import sample
from fmq_theory.io.quantized_file import inspect_quantized, load_quantized
from fmq_theory.plan import (
    Candidate,
    WeightSensitivity,
    fit_candidates,
    load_plan,
    load_quantized_model,
    plan_quantization,
    resident_bytes,
    sensitivity_memory,
    weight_sensitivity,
)
from fmq_theory.plan.candidates import dequantized, fit_candidate
from fmq_theory.plan.core import load_fitted
from fmq_theory.plan.sensitivity import probe_gradients
from fmq_theory.plan.runtime import unpack_codes_torch
from fmq_theory.io.packing import pack_codes


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.norm = torch.nn.GroupNorm(4, 16)
        self.c2 = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.out = torch.nn.Conv2d(16, 1, 3, padding=1)
        self.register_buffer("scale", torch.ones(1))

    def forward(self, x, t):
        h = torch.nn.functional.silu(self.norm(self.c1(x)))
        return self.out(self.c2(h)) * self.scale * (1 + t[:, None, None, None])


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = Net()
    noise = torch.randn(8, 1, 8, 8)
    sens = weight_sensitivity(model, noise, solver="midpoint", steps=2, replicates=4, batch_size=2)
    return model, noise, sens


@pytest.mark.parametrize("budget", [3.0, 4.5, 9.0])
def test_budget_file_size_round_trip_and_packed_model(setup, budget, tmp_path):
    model, noise, sens = setup
    plan = plan_quantization(model, budget_bits=budget, noise=noise, steps=2, sensitivity=sens, progress=False)
    n = sum(v.numel() for v in model.state_dict().values())
    assert plan.n_weights == n and plan.data_free
    assert plan.bits_per_weight <= budget
    assert plan.total_bytes == sum(c.nbytes for c in plan.choices) <= budget * n / 8
    assert {c.name for c in plan.choices} == set(model.state_dict())
    path = tmp_path / "plan.safetensors"
    info = plan.save(path)
    # every code, side array and kept tensor, and nothing else, is in the file's data
    assert info.data_bytes == plan.total_bytes
    assert info.tensor_bytes == {c.name: c.nbytes for c in plan.choices}
    back = load_plan(path)
    assert back.choices == plan.choices
    assert back.predicted_delta == plan.predicted_delta
    assert (back.budget_bits, back.bits_per_weight, back.total_bytes, back.dual_bound) == (
        plan.budget_bits, plan.bits_per_weight, plan.total_bytes, plan.dual_bound)
    for name, qt in plan.quantized.quantized.items():
        other = back.quantized.quantized[name]
        assert (other.method, other.bits, other.granularity, other.shape) == (qt.method, qt.bits, qt.granularity,
                                                                            qt.shape)
        np.testing.assert_array_equal(other.codes, qt.codes)
        np.testing.assert_array_equal(other.levels, qt.levels)
        assert other.levels.dtype == qt.levels.dtype
    for name, value in plan.state_dict().items():
        assert torch.equal(back.state_dict()[name], value) and value.dtype == model.state_dict()[name].dtype
    # predicted contributions recomputed from the weights, with the held-out (scoring) half
    _, score = sens.split()
    for c in plan.choices:
        e2 = ((plan.state_dict()[c.name].double() - model.state_dict()[c.name].double()) ** 2).numpy()
        if c.name in score.diag:
            assert c.predicted == pytest.approx(float(np.sum(score.diag[c.name] * e2)), rel=1e-9, abs=1e-300)
        assert c.mse == pytest.approx(float(e2.mean()), rel=1e-9, abs=1e-300)
    assert plan.predicted_delta.value == pytest.approx(sum(c.predicted for c in plan.choices), rel=1e-9)
    assert plan.dual_bound <= plan.predicted_delta.value * (1 + 1e-9)
    # the interval from the options' kept replicate sums is the one from the squared errors themselves
    errors = {c.name: ((plan.state_dict()[c.name].double() - model.state_dict()[c.name].double()) ** 2).numpy()
              for c in plan.choices if c.name in score.diag}
    d = plan.predicted_delta
    assert (d.value, d.low, d.high) == score.interval(errors, level=d.level)
    # packed inference equals the dequantized model, bit for bit, and holds fewer bytes
    reference = Net()
    reference.load_state_dict(plan.state_dict())
    packed = load_quantized_model(Net(), path)
    z = torch.randn(4, 1, 8, 8)
    assert torch.equal(sample(packed, z, steps=3).x, sample(reference, z, steps=3).x)
    assert resident_bytes(packed) < resident_bytes(model)


def test_budget_below_cheapest_plan_is_refused(setup):
    model, noise, sens = setup
    with pytest.raises(ValueError, match="budget_bits=0.5 is below the cheapest plan"):
        plan_quantization(model, budget_bits=0.5, noise=noise, sensitivity=sens, progress=False)


@pytest.mark.parametrize("kwargs,match", [
    ({"budget_bits": -1.0}, "budget_bits"),
    ({"budget_bits": 3.0, "noise": None}, "event_shape"),
    ({"budget_bits": 3.0, "level": 1.5}, "level"),
])
def test_bad_arguments_are_named(setup, kwargs, match):
    model, noise, _ = setup
    kwargs.setdefault("noise", noise)
    with pytest.raises(ValueError, match=match):
        plan_quantization(model, progress=False, **kwargs)


@pytest.mark.parametrize("noise,match", [
    (torch.full((8, 1, 8, 8), float("nan")), "noise holds NaN or infinite entries"),
    (torch.full((8, 1, 8, 8), float("inf")), "noise holds NaN or infinite entries"),
    (torch.zeros(0, 1, 8, 8), "noise of shape \\(0, 1, 8, 8\\) holds no samples"),
    (torch.zeros(8), "noise must be a floating tensor"),
    (torch.zeros(8, 1, 8, 8, dtype=torch.long), "noise must be a floating tensor"),
])
def test_bad_noise_is_refused_by_name(setup, noise, match):
    """Found on 2026-12-05: NaN or infinite noise gave a NaN sensitivity estimate, and noise of one
    dimension failed inside the model. The sensitivity, its probes and the plan refuse them, naming
    ``noise``, before any work."""
    model = setup[0]
    for call in (lambda: weight_sensitivity(model, noise, solver="euler", steps=2, replicates=2),
                 lambda: list(probe_gradients(model, noise, solver="euler", steps=2)),
                 lambda: plan_quantization(model, budget_bits=4.0, noise=noise, steps=2, progress=False)):
        with pytest.raises(ValueError, match=match):
            call()


def test_a_model_that_is_not_finite_is_refused_by_name(setup):
    """A NaN parameter is named before the pass; a finite model whose samples overflow is named
    after it (its probes are not finite): never a NaN estimate."""
    broken = Net()
    broken.load_state_dict(setup[0].state_dict())
    with torch.no_grad():
        broken.c2.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="model parameter 'c2.weight' holds NaN or infinite entries"):
        weight_sensitivity(broken, setup[1], solver="euler", steps=2, replicates=2)
    with torch.no_grad():
        broken.c2.weight.fill_(1e30)
        broken.out.weight.fill_(1e30)
    with pytest.raises(ValueError, match="the probes of model parameter '.*' are not finite"):
        weight_sensitivity(broken, setup[1], solver="euler", steps=2, replicates=2)


def test_a_model_without_parameters_is_refused(setup):
    """Nothing to probe: a clear error, where autograd failed inside the pass."""
    class Field(torch.nn.Module):
        def forward(self, x, t):
            return -x

    with pytest.raises(ValueError, match="model has no parameters"):
        weight_sensitivity(Field(), setup[1], solver="euler", steps=2, replicates=2)


def test_held_out_replicates_are_checked_before_the_pass(setup, monkeypatch):
    """Too few replicates for held-out scoring is refused before the sensitivity pass runs."""
    import fmq_theory.plan.core as core

    def never(*args, **kwargs):
        raise AssertionError("the sensitivity pass ran")

    monkeypatch.setattr(core, "weight_sensitivity", never)
    with pytest.raises(ValueError, match="replicates=2: held-out scoring needs at least 4"):
        plan_quantization(setup[0], budget_bits=4.0, noise=setup[1], replicates=2, steps=2, progress=False)


def test_candidate_costs_match_the_file(setup, tmp_path):
    """Each option's counted bytes are its bytes in the quantized file (fp16 and fp32 side info)."""
    from fmq_theory.io.quantized_file import save_quantized

    model, _, sens = setup
    w = model.c2.weight.detach()
    for cand in (Candidate("uniform_mse", 3, "group:64", "float16"), Candidate("normal_float", 2, "group:256"),
                 Candidate("weighted_lloyd", 2, "channel", "float16"), Candidate("lloyd_max", 1, "tensor"),
                 Candidate("uniform_mse", 5, "channel", "float32")):
        fit = fit_candidate(w, cand, sensitivity=sens.diag["c2.weight"])
        info = save_quantized(tmp_path / f"{cand.method}{cand.bits}.safetensors", {"w": fit.stored})
        assert info.tensor_bytes["w"] == fit.nbytes == info.data_bytes
        loaded = load_quantized(tmp_path / f"{cand.method}{cand.bits}.safetensors").quantized["w"]
        assert torch.equal(dequantized(loaded), dequantized(fit.stored))


def test_fp16_side_information_never_worse_than_rounding_the_fp32_fit(setup):
    """Re-assigning codes to the rounded levels can only lower the error of the rounded fit."""
    model, _, _ = setup
    w = model.c2.weight.detach()
    fp16 = fit_candidate(w, Candidate("lloyd_max", 3, "channel", "float16"), sensitivity=None)
    fp32 = fit_candidate(w, Candidate("lloyd_max", 3, "channel", "float32"), sensitivity=None)
    rounded = fp32.stored.levels.astype(np.float16).astype(np.float64)
    naive = np.take_along_axis(rounded, fp32.stored.codes.astype(np.intp), axis=1).reshape(w.shape)
    assert fp16.mse <= float(((naive - w.double().numpy()) ** 2).mean()) + 1e-18
    assert fp16.nbytes < fp32.nbytes


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
def test_torch_unpack_matches_the_packing(bits):
    codes = np.random.default_rng(bits).integers(0, 1 << bits, size=37).astype(np.uint8)
    packed = torch.from_numpy(pack_codes(codes, bits))
    assert unpack_codes_torch(packed, bits=bits, count=37).tolist() == codes.tolist()


def test_sensitivity_row_sums_agree_with_noise_gains():
    """Summed over a row, the per-weight diagonal is the sample-level noise gain (same estimand)."""
    from fmq_theory.bounds.prediction import noise_gains

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3)

        def forward(self, x, t):
            return torch.tanh(self.lin(x)) * (1 - t[:, None])

    torch.manual_seed(1)
    field, noise = Field(), torch.randn(512, 3)
    sens = weight_sensitivity(field, noise, solver="euler", steps=3, projections=4, replicates=4, batch_size=4)
    gains = noise_gains(field, noise, feature_fn=lambda x: x, solver="euler", steps=3, projections=4, batch_size=4,
                        seed=7)
    rows = sens.diag["lin.weight"].sum(axis=1)
    ours_se = np.sqrt(np.var(sens.replicates["lin.weight"].sum(axis=2), axis=0, ddof=1) / 4)
    theirs = gains.sample[gains.names.index("lin.weight")]
    # both unbiased for the same quantity: agree within 5 standard errors of ours, doubled for theirs
    assert np.all(np.abs(rows - theirs) <= 5 * 2 * ours_se + 0.05 * theirs)


def test_bfloat16_probes_estimate_the_same_sensitivity(setup, tmp_path):
    """Probes under bfloat16 autocast (same noise and projections) give each tensor's total
    sensitivity within 5% of the float32 probes', far inside the replicates' spread here; the
    setting is recorded, kept by a saved fit, and shown in the plan's settings."""
    model, noise, sens = setup
    low = weight_sensitivity(model, noise, solver="midpoint", steps=2, replicates=4, batch_size=2, autocast=True)
    assert low.autocast and not sens.autocast
    for name, s in sens.diag.items():
        assert abs(low.diag[name].sum() - s.sum()) <= 0.05 * s.sum(), name
    fitted = fit_candidates(model, sensitivity=low, progress=False)
    fitted.save(tmp_path / "fitted.npz", model=model)
    loaded, _ = load_fitted(tmp_path / "fitted.npz", model=model)
    assert loaded.sensitivity.autocast
    plan = plan_quantization(model, budget_bits=4.0, noise=noise, fitted=loaded, progress=False)
    assert plan.settings["autocast"] is True


def test_split_halves_are_disjoint_replicate_means(setup):
    model, noise, _ = setup
    sens = weight_sensitivity(model, noise, solver="midpoint", steps=2, replicates=4, batch_size=2)
    fit, score = sens.split()
    for k, reps in sens.replicates.items():
        np.testing.assert_array_equal(fit.replicates[k], reps[:2])
        np.testing.assert_array_equal(score.replicates[k], reps[2:])
        # bit for bit the float64 means of the halves' replicates (the halves' stored diagonals until 2026-12-05)
        np.testing.assert_array_equal(fit.diag[k], reps[:2].astype(np.float64).mean(0))
        np.testing.assert_array_equal(score.diag[k], reps[2:].astype(np.float64).mean(0))
        # the halves average back to the whole estimate (float32 replicates: 1e-6 relative)
        np.testing.assert_allclose((fit.diag[k] + score.diag[k]) / 2, sens.diag[k], rtol=1e-6, atol=1e-30)
    assert list(fit.diag) == list(sens.diag) and len(score.diag) == len(sens.diag)
    assert "no such tensor" not in fit.diag and fit.diag.get("no such tensor") is None
    one = weight_sensitivity(model, noise, solver="midpoint", steps=2, replicates=1, batch_size=8)
    with pytest.raises(ValueError, match="at least 2 replicates"):
        one.split()


def test_split_halves_hold_no_copy():
    """Splitting allocates under 1% of the replicates' bytes: the halves' replicates are views and
    their diagonals are computed when read (a stored copy would be 16 bytes a weight)."""
    rng = np.random.default_rng(0)
    reps = {f"t{i}": rng.random((4, 1000, 250), dtype=np.float32) for i in range(4)}  # 4M weights, 16 MB
    sens = WeightSensitivity(diag={k: r.astype(np.float64).mean(0) for k, r in reps.items()}, replicates=reps,
                             n_samples=8, projections=1, solver="midpoint", steps=2, seed=0)
    whole = sum(r.nbytes for r in sens.replicates.values())
    tracemalloc.start()
    try:
        halves = sens.split()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 0.01 * whole, (held, whole)
    for half in halves:
        for k, reps in half.replicates.items():
            assert np.shares_memory(reps, sens.replicates[k])


@pytest.mark.parametrize("replicates", [1, 4])
def test_sensitivity_memory_is_what_the_estimate_holds(setup, replicates):
    """``sensitivity_memory(...).estimate`` is the estimate's arrays' bytes exactly, ``sums`` their
    float64 sums' (8 R a parameter) and ``device_sums`` one replicate's (8); a bad replicate count
    is refused, naming it."""
    model, noise, _ = setup
    sens = weight_sensitivity(model, noise, solver="midpoint", steps=2, replicates=replicates, batch_size=2)
    mem = sensitivity_memory(model, replicates=replicates)
    held = sum(a.nbytes for a in sens.diag.values()) + sum(a.nbytes for a in sens.replicates.values())
    n = sum(p.numel() for p in model.parameters())
    assert (mem.estimate, mem.sums, mem.device_sums) == (held, 8 * replicates * n, 8 * n)
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="replicates"):
            sensitivity_memory(model, replicates=bad)


def test_scorer_is_terms_against_plain_sums(setup):
    """``scorer(name)(e2)`` is ``terms(name, e2)``: the diagonal's and every replicate's weighted sum,
    against exactly rounded sums (1e-12 relative), on the whole estimate and on a split half."""
    model, noise, _ = setup
    sens = weight_sensitivity(model, noise, solver="midpoint", steps=2, replicates=4, batch_size=2)
    rng = np.random.default_rng(0)
    for est in (sens, sens.split()[1]):
        for k in est.replicates:
            e2 = rng.random(est.replicates[k].shape[1:])
            score = est.scorer(k)
            total, reps = score(e2)
            assert (total, reps.tolist()) == (est.terms(k, e2)[0], est.terms(k, e2)[1].tolist())
            assert total == pytest.approx(float(np.sum(np.asarray(est.diag[k], dtype=np.float64) * e2)), rel=1e-12)
            plain = [math.fsum((r.astype(np.float64) * e2).ravel()) for r in est.replicates[k]]  # exactly rounded
            np.testing.assert_allclose(reps, plain, rtol=1e-12, atol=1e-300)


def test_held_out_scores_with_the_other_half(setup):
    """Values and predicted interval come from the scoring half; held_out=False uses the whole estimate."""
    model, noise, _ = setup
    sens = weight_sensitivity(model, noise, solver="midpoint", steps=2, replicates=4, batch_size=2)
    _, score = sens.split()
    for held_out, scorer in ((True, score), (False, sens)):
        plan = plan_quantization(model, budget_bits=4.0, noise=noise, steps=2, sensitivity=sens,
                                 held_out=held_out, progress=False)
        assert plan.settings["held_out"] is held_out
        for c in plan.choices:
            if c.name in scorer.diag:
                assert c.gain == pytest.approx(float(np.mean(scorer.diag[c.name])), rel=1e-12)


def test_fitted_once_serves_every_budget(setup):
    """plan_quantization(fitted=fit_candidates(...)) equals the plan that fits its own options."""
    model, noise, sens = setup
    fitted = fit_candidates(model, sensitivity=sens, progress=False)
    for budget in (3.0, 4.5):
        direct = plan_quantization(model, budget_bits=budget, noise=noise, steps=2, sensitivity=sens, progress=False)
        reused = plan_quantization(model, budget_bits=budget, noise=noise, fitted=fitted, progress=False)
        assert reused.choices == direct.choices and reused.predicted_delta == direct.predicted_delta


def test_held_out_needs_four_replicates(setup):
    model, noise, _ = setup
    two = weight_sensitivity(model, noise, solver="midpoint", steps=2, replicates=2, batch_size=4)
    with pytest.raises(ValueError, match="replicates=2"):
        plan_quantization(model, budget_bits=4.0, noise=noise, sensitivity=two, progress=False)
    plan = plan_quantization(model, budget_bits=4.0, noise=noise, sensitivity=two, held_out=False, progress=False)
    assert plan.bits_per_weight <= 4.0


def test_fitting_threads_give_the_same_options(setup):
    model, _, sens = setup
    one = fit_candidates(model, sensitivity=sens, progress=False)
    two = fit_candidates(model, sensitivity=sens, workers=3, progress=False)
    assert one.names == two.names
    for a, b in zip(one.values, two.values):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(one.costs, two.costs):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="workers"):
        fit_candidates(model, sensitivity=sens, workers=0, progress=False)



def _same_fit(a, b) -> None:
    """Two fits equal option for option: candidates, costs, scores, prices and their replicates, codes, levels,
    side arrays."""
    assert a.names == b.names and a.held_out == b.held_out and a.seconds == b.seconds
    for fits_a, fits_b, ca, cb, va, vb in zip(a.fitted, b.fitted, a.costs, b.costs, a.values, b.values):
        np.testing.assert_array_equal(ca, cb)
        np.testing.assert_array_equal(va, vb)
        assert [f.candidate for f in fits_a] == [f.candidate for f in fits_b]
        for fa, fb in zip(fits_a, fits_b):
            assert fa.nbytes == fb.nbytes and fa.mse == fb.mse
            assert fa.predicted == fb.predicted
            np.testing.assert_array_equal(fa.predicted_replicates, fb.predicted_replicates)
            if torch.is_tensor(fa.stored):
                assert fa.stored.dtype == fb.stored.dtype and torch.equal(fa.stored, fb.stored)
                continue
            qa, qb = fa.stored, fb.stored
            assert (qa.method, qa.bits, qa.granularity, qa.shape, qa.dtype) == (qb.method, qb.bits, qb.granularity,
                                                                                 qb.shape, qb.dtype)
            for x, y in [(qa.codes, qb.codes), (qa.levels, qb.levels)] + [(qa.stored[k], qb.stored[k]) for k in qa.stored]:
                assert x.dtype == y.dtype
                np.testing.assert_array_equal(x, y)
    for ea, eb in [(a.sensitivity, b.sensitivity), (a.fit_sensitivity, b.fit_sensitivity),
                   (a.score_sensitivity, b.score_sensitivity)]:
        assert list(ea.diag) == list(eb.diag)
        assert (ea.n_samples, ea.seed, ea.solver, ea.autocast) == (eb.n_samples, eb.seed, eb.solver, eb.autocast)
        for name in ea.diag:
            np.testing.assert_array_equal(ea.diag[name], eb.diag[name])
            np.testing.assert_array_equal(ea.replicates[name], eb.replicates[name])


def test_a_fit_of_prices_only_plans_the_same_bit_for_bit(setup):
    """keep_codes=False keeps no option's codes, and each option fitted again by FittedCandidates.option
    is the kept fit's, codes, levels and side arrays; so a plan of every floor and family (variants
    sampled from their states) is the same plan, weights and all."""
    model, noise, sens = setup
    full = fit_candidates(model, sensitivity=sens, progress=False)
    lean = fit_candidates(model, sensitivity=sens, keep_codes=False, progress=False)
    assert full.keep_codes and not lean.keep_codes
    assert all(f.stored is None for fits in lean.fitted for f in fits)
    state = model.state_dict()
    again = dataclasses.replace(lean, fitted=tuple(tuple(lean.option(t, j, state=state) for j in range(len(fits)))
                                                   for t, fits in enumerate(lean.fitted)), seconds=full.seconds)
    _same_fit(full, again)
    a = plan_quantization(model, budget_bits=3.0, noise=noise, fitted=full, progress=False)
    b = plan_quantization(model, budget_bits=3.0, noise=noise, fitted=lean, progress=False)
    assert len(a.variants) > 1 and a.variants == b.variants
    assert a.choices == b.choices and a.predicted_delta == b.predicted_delta
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ValueError, match="keep_codes=False"):
        lean.save("unused.npz", model=model)
    with pytest.raises(ValueError, match="FittedCandidates.option"):
        lean.fitted[0][0].restored(torch.float32)
    t = lean.names.index("c2.weight")  # other weights, twice as many: the option fitted again costs more
    j = next(j for j, f in enumerate(lean.fitted[t]) if f.candidate.method == "uniform_mse")
    with pytest.raises(ValueError, match="priced at"):
        lean.option(t, j, state={**state, "c2.weight": state["c2.weight"].repeat(2, 1, 1, 1)})


@pytest.mark.parametrize("held_out", [True, False])
def test_saved_fit_loads_equal_and_plans_alike(setup, tmp_path, held_out):
    """A fit written by FittedCandidates.save and read by load_fitted is the same fit (errors
    computed again from the model), plans the same, and the file is refused for other weights."""
    model, noise, sens = setup
    fitted = fit_candidates(model, sensitivity=sens, held_out=held_out, progress=False)
    path = tmp_path / "fitted.npz"
    fitted.save(path, model=model, metadata={"sensitivity_seconds": 1.5})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fitted.npz"]
    loaded, metadata = load_fitted(path, model=model, workers=2)
    assert metadata == {"sensitivity_seconds": 1.5}
    _same_fit(fitted, loaded)
    a = plan_quantization(model, budget_bits=4.0, noise=noise, fitted=fitted, held_out=held_out, progress=False)
    b = plan_quantization(model, budget_bits=4.0, noise=noise, fitted=loaded, held_out=held_out, progress=False)
    assert a.choices == b.choices and a.predicted_delta == b.predicted_delta
    other = Net()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.c2.weight[0, 0, 0, 0] += 1e-3
    with pytest.raises(ValueError, match="other weights"):
        load_fitted(path, model=other)
    with pytest.raises(ValueError, match="workers"):
        load_fitted(path, model=model, workers=0)


def test_plan_seconds_count_the_fitting_once(setup, monkeypatch):
    """settings["seconds"] is the call's own wall time (a fit made inside it counted once), plus the time
    of a fit made before the call and passed in.  The fit is made 2 s slower, so counting it twice
    would exceed the measured wall time by far more than the rest of the call takes."""
    model, noise, sens = setup
    real_fit = fit_candidates

    def slow_fit(*args, **kwargs):
        start = time.perf_counter()
        fitted = real_fit(*args, **kwargs)
        time.sleep(2.0)
        return dataclasses.replace(fitted, seconds=time.perf_counter() - start)

    monkeypatch.setattr("fmq_theory.plan.core.fit_candidates", slow_fit)
    start = time.perf_counter()
    direct = plan_quantization(model, budget_bits=4.0, noise=noise, steps=2, sensitivity=sens, bit_floors=(1,),
                               progress=False)
    assert 2.0 <= direct.settings["seconds"] <= time.perf_counter() - start
    fitted = slow_fit(model, sensitivity=sens, progress=False)
    start = time.perf_counter()
    reused = plan_quantization(model, budget_bits=4.0, noise=noise, fitted=fitted, bit_floors=(1,), progress=False)
    assert fitted.seconds <= reused.settings["seconds"] <= time.perf_counter() - start + fitted.seconds
