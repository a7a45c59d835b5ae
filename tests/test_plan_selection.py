"""The plan's bit floors and code families: one knapsack per variant, the variants ranked by their sampled law's shift.

The model is built so that the additive model and the samples disagree: the output is scaled by
the mean of :math:`\\cos W` with every entry of ``W`` a multiple of :math:`\\pi`, where the
derivative of the output with respect to ``W`` vanishes.  The additive model therefore prices
every code of ``W`` at (nearly) zero and spends the bytes that a 1-bit ``W`` saves on ``B``;
but a 1-bit ``W`` (two levels for four distinct values) moves entries by about :math:`\\pi/2`
and turns the scale from ``1/2`` to about 0, whereas 2 bits store ``W`` exactly.
"""

import copy
import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fmq_theory.flow.solvers import sample
from fmq_theory.plan import fit_candidates, load_plan, plan_quantization, solve_mckp, weight_sensitivity
from fmq_theory.plan.candidates import CODE_FAMILIES, KEPT_METHODS
from fmq_theory.plan.core import variant_option_sets, variant_options
from fmq_theory.plan.selection import VariantScore, choose_variant, diagonal_w2, distribution_shift, shift_difference

D, ROWS, STEPS, SOLVER = 32, 16, 2, "euler"


class CosineScaled(torch.nn.Module):
    """``v(x, t) = mean(cos W) * B x``: ``W`` enters only through a stationary point at multiples of pi."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.B = torch.nn.Linear(D, D, bias=False)
        with torch.no_grad():
            self.B.weight.copy_(torch.randn(D, D, generator=gen) / math.sqrt(D))
        # values 0, pi, 2 pi, 3 pi (cos = 1, -1, 1, -1); three of each four entries at 0 or 2 pi: mean cos 1/2
        k = torch.tensor([0, 2, 1, 2])[torch.randint(0, 4, (ROWS, D), generator=gen)]
        k[:, :4] = torch.tensor([0, 1, 2, 3])  # every row holds all four values
        self.W = torch.nn.Parameter(math.pi * k.float())

    def forward(self, x, t):
        return torch.cos(self.W).mean() * self.B(x)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = CosineScaled()
    noise = torch.randn(32, D, generator=torch.Generator().manual_seed(1))
    sens = weight_sensitivity(model, noise, solver=SOLVER, steps=STEPS, replicates=4, batch_size=8)
    fitted = fit_candidates(model, sensitivity=sens, progress=False)
    return model, noise, fitted


def _plan(setup, **kwargs):
    """The plan of ``setup``; one code family unless told (the floor tests compare floors alone)."""
    model, noise, fitted = setup
    kwargs.setdefault("budget_bits", 3.0)
    kwargs.setdefault("families", ("optimal",))
    kwargs.setdefault("groupings", ("any",))
    return plan_quantization(model, noise=noise, fitted=fitted, progress=False, **kwargs)


def _samples(model, state_dict, noise):
    other = copy.deepcopy(model)
    other.load_state_dict(state_dict)
    return sample(other, noise, solver=SOLVER, steps=STEPS).x


def test_one_floor_is_the_plain_knapsack(setup):
    """bit_floors=(1,): the exact knapsack over every option (the behaviour before floors), nothing sampled."""
    model, _, fitted = setup
    plan = _plan(setup, bit_floors=(1,))
    n = sum(model.state_dict()[k].numel() for k in fitted.names)
    solution = solve_mckp(list(fitted.costs), list(fitted.values), budget=math.floor(3.0 * n / 8))
    expected = [fits[j] for fits, j in zip(fitted.fitted, solution.choice)]
    assert [(c.method, c.bits, c.granularity, c.storage) for c in plan.choices] == [
        (f.candidate.method, f.candidate.bits, f.candidate.granularity, f.candidate.storage) for f in expected]
    assert [c.nbytes for c in plan.choices] == [f.nbytes for f in expected]
    assert plan.total_bytes == solution.cost and plan.dual_bound == solution.dual_bound
    assert plan.variants == () and plan.settings["bit_floor"] == 1 and plan.settings["bit_floors"] == [1]
    assert "variants by code family and bit floor" not in plan.report()


@pytest.mark.parametrize("budget", [2.5, 3.0, 4.0])
def test_every_variant_respects_its_floor_and_the_budget(setup, budget):
    model, _, fitted = setup
    n = sum(model.state_dict()[k].numel() for k in fitted.names)
    plan = _plan(setup, budget_bits=budget, bit_floors=(1, 2, 3))
    feasible = []
    for f in (1, 2, 3):
        try:
            feasible.append(_plan(setup, budget_bits=budget, bit_floors=(f,)))
        except ValueError as exc:
            assert "below the cheapest plan" in str(exc)
    assert [v.floor for v in plan.variants] == [a.settings["bit_floor"] for a in feasible] and feasible
    for v, alone in zip(plan.variants, feasible):
        assert all(c.bits >= v.floor or c.method in KEPT_METHODS for c in alone.choices)
        assert alone.total_bytes <= math.floor(budget * n / 8)
        assert v.bits_per_weight == alone.bits_per_weight <= budget
        assert v.additive == pytest.approx(alone.predicted_delta.value, rel=1e-12)
        if v.floor == plan.settings["bit_floor"]:
            assert plan.choices == alone.choices and plan.predicted_delta == alone.predicted_delta


def test_the_chosen_variant_has_the_least_shift_recomputed_by_sampling(setup):
    model, noise, _ = setup
    plan = _plan(setup)
    chosen = next(v for v in plan.variants if v.floor == plan.settings["bit_floor"])
    assert chosen == choose_variant(plan.variants)
    assert all(chosen.sampled_shift <= v.sampled_shift for v in plan.variants)
    reference = _samples(model, model.state_dict(), noise).double()
    x = _samples(model, plan.state_dict(), noise).double()
    d = ((x - reference) ** 2).mean(dim=1)
    assert chosen.sampled_msd == pytest.approx(float(d.mean()), rel=1e-6)
    assert chosen.sampled_low <= chosen.sampled_msd <= chosen.sampled_high
    assert chosen.sampled_shift == pytest.approx(_pot_shift(x.numpy(), reference.numpy()), rel=1e-6)
    assert chosen.shift_low <= chosen.sampled_shift <= chosen.shift_high
    assert plan.settings["selection_samples"] == noise.shape[0]


def test_the_samples_overrule_the_additive_model(setup):
    """The additive model prefers 1-bit W (it sees no sensitivity there); the samples prefer floor 2."""
    plan = _plan(setup)
    one, two = plan.variants
    w1 = next(c for c in _plan(setup, bit_floors=(1,)).choices if c.name == "W")
    assert w1.bits == 1 and w1.predicted < 1e-6 * one.additive
    assert one.additive < two.additive
    assert two.sampled_high < one.sampled_low and two.shift_high < one.shift_low
    assert plan.settings["bit_floor"] == 2
    assert next(c for c in plan.choices if c.name == "W").bits >= 2


def _score(floor, *, shift, msd=0.5, family="optimal"):
    return VariantScore(floor=floor, bits_per_weight=3.0, additive=1.0, sampled_msd=msd, sampled_low=msd,
                        sampled_high=msd, family=family, sampled_shift=shift, shift_low=shift, shift_high=shift)


def test_ties_go_to_the_lower_floor_then_the_first_family():
    assert choose_variant((_score(2, shift=0.5), _score(1, shift=0.5))).floor == 1
    a, b = _score(2, shift=0.5, family="minmax"), _score(2, shift=0.5, family="half_quadratic")
    assert choose_variant((a, b)) is a and choose_variant((b, a)) is b


def test_the_shift_not_the_displacement_chooses():
    """The GPU's DiT at 2 bits per weight: least displacement, yet the larger shift and the larger FID change."""
    displaced_less = _score(1, shift=76.9, msd=0.29, family="half_quadratic")
    shifted_less = _score(1, shift=71.8, msd=0.53, family="optimal")
    assert choose_variant((displaced_less, shifted_less)) is shifted_less


@pytest.mark.parametrize("scores", [(), (VariantScore(1, 3.0, 1.0, 0.5, 0.4, 0.6),)])
def test_choosing_needs_the_shift(scores):
    with pytest.raises(ValueError, match="scores"):
        choose_variant(scores)


def test_an_infeasible_floor_is_skipped_and_all_infeasible_is_refused(setup):
    model, _, fitted = setup
    n = sum(model.state_dict()[k].numel() for k in fitted.names)
    cheapest = {f: _plan(setup, budget_bits=32.0, bit_floors=(f,)) for f in (1, 4)}
    assert cheapest[1].total_bytes < cheapest[4].total_bytes
    plan = _plan(setup, budget_bits=1.5, bit_floors=(1, 8))
    assert [v.floor for v in plan.variants] == [1] and plan.settings["bit_floor"] == 1
    with pytest.raises(ValueError, match="budget_bits=0.5 is below the cheapest plan"):
        _plan(setup, budget_bits=0.5, bit_floors=(1, 2))
    assert n > 0


@pytest.mark.parametrize("bad", [(), [], (0,), (17,), (1.5,), "12", (True,), (1, 1), None, 2])
def test_bad_bit_floors_are_named(setup, bad):
    with pytest.raises(ValueError, match="bit_floors"):
        _plan(setup, bit_floors=bad)


def test_save_and_load_keep_the_variants(setup, tmp_path):
    plan = _plan(setup)
    path = tmp_path / "plan.safetensors"
    plan.save(path)
    back = load_plan(path)
    assert back.variants == plan.variants and all(isinstance(v, VariantScore) for v in back.variants)
    for field in ("choices", "budget_bits", "bits_per_weight", "total_bytes", "n_weights", "predicted_delta",
                  "dual_bound", "settings", "data_free"):
        assert getattr(back, field) == getattr(plan, field), field
    for name, value in plan.state_dict().items():
        assert torch.equal(back.state_dict()[name], value)
    report = back.report()
    assert report == plan.report()
    for v in plan.variants:
        line = next(x for x in report.splitlines()
                    if x.strip().startswith(f"floor {v.floor:>2} bits {v.family:<14} {v.grouping:<6}:"))
        assert f"sampled {v.sampled_msd:.4e}" in line and f"additive {v.additive:.4e}" in line
        assert f"shift {v.sampled_shift:.4e} ({v.shift_low:.4e}..{v.shift_high:.4e})" in line
        assert line.endswith("<- chosen") == (v.floor == plan.settings["bit_floor"])
    assert np.isfinite([[v.sampled_msd, v.sampled_shift, v.shift_low, v.shift_high] for v in back.variants]).all()


# --- code families: each floor planned once per family ------------------------------------------

def test_the_optimal_family_alone_never_uses_min_max_grids(setup):
    """``families=("optimal",)`` is the plan before min-max grids were offered."""
    for plan in (_plan(setup, families=("optimal",)), _plan(setup, bit_floors=(1,), families=("optimal",)),
                 _plan(setup, budget_bits=2.0, bit_floors=(1, 2), families=("optimal",))):
        assert all(c.method != "uniform_minmax" for c in plan.choices)
        assert plan.settings["families"] == ["optimal"] and plan.settings["family"] == "optimal"
        assert all(v.family == "optimal" for v in plan.variants)


def test_the_default_samples_every_family_at_floors_one_to_three(setup):
    """The defaults: every feasible (family, floor) of the three families and floors 1-3, every
    granularity, the least shifted kept."""
    model, noise, fitted = setup
    families, groupings = ("optimal", "minmax", "half_quadratic"), ("any",)
    plan = plan_quantization(model, budget_bits=3.0, noise=noise, fitted=fitted, progress=False)
    assert plan.settings["families"] == list(families) and plan.settings["bit_floors"] == [1, 2, 3]
    assert plan.settings["groupings"] == list(groupings)
    explicit = _plan(setup, bit_floors=(1, 2, 3), families=families, groupings=groupings)
    assert plan.choices == explicit.choices and plan.variants == explicit.variants
    assert {(v.family, v.floor, v.grouping) for v in plan.variants} <= {
        (f, b, g) for f in families for b in (1, 2, 3) for g in groupings}
    assert {v.family for v in plan.variants} == set(families) and {v.grouping for v in plan.variants} == set(groupings)
    best = choose_variant(plan.variants)
    assert (plan.settings["family"], plan.settings["bit_floor"], plan.settings["grouping"]) == (
        best.family, best.floor, best.grouping)


@pytest.mark.parametrize("budget", [2.5, 3.0, 4.0])
def test_every_family_variant_is_its_own_knapsack(setup, budget):
    """Every family: variants family by family, each equal to the plan of that one (family, floor)."""
    model, _, fitted = setup
    n = sum(model.state_dict()[k].numel() for k in fitted.names)
    families = ("optimal", "minmax", "half_quadratic")
    plan = _plan(setup, budget_bits=budget, bit_floors=(1, 2), families=families)
    alone = {}
    for family in families:
        for f in (1, 2):
            try:
                alone[family, f] = _plan(setup, budget_bits=budget, bit_floors=(f,), families=(family,))
            except ValueError as exc:
                assert "below the cheapest plan" in str(exc)
    assert [(v.family, v.floor) for v in plan.variants] == list(alone)
    for v in plan.variants:
        one = alone[v.family, v.floor]
        methods = {"optimal": {"lloyd_max", "weighted_lloyd", "uniform_mse", "normal_float"},
                   "minmax": {"uniform_minmax"}, "half_quadratic": {"half_quadratic"}}[v.family]
        assert all(c.method in methods | set(KEPT_METHODS) for c in one.choices)
        assert all(c.bits >= v.floor or c.method in KEPT_METHODS for c in one.choices)
        assert one.total_bytes <= math.floor(budget * n / 8) and v.bits_per_weight == one.bits_per_weight
        assert v.additive == pytest.approx(one.predicted_delta.value, rel=1e-12)
    best = choose_variant(plan.variants)
    assert (plan.settings["family"], plan.settings["bit_floor"]) == (best.family, best.floor)
    assert plan.choices == alone[best.family, best.floor].choices


def test_a_min_max_plan_keeps_every_range(setup):
    """On ``W`` (multiples of pi, 0..3 pi in every row) a 2-bit min-max grid per channel is exact to float16."""
    plan = _plan(setup, budget_bits=4.0, bit_floors=(2,), families=("minmax",))
    model = setup[0]
    w = next(c for c in plan.choices if c.name == "W")
    assert w.method == "uniform_minmax" and w.bits == 2  # every group holds 0 and 3 pi: the grid is 0, pi, 2 pi, 3 pi
    back = plan.state_dict()["W"].double()
    assert float((back - model.W.detach().double()).abs().max()) <= 3 * math.pi * 2.0 ** -10


def test_the_report_marks_the_chosen_family_and_floor(setup, tmp_path):
    plan = _plan(setup, bit_floors=(1, 2), families=("optimal", "minmax"))
    path = tmp_path / "families.safetensors"
    plan.save(path)
    back = load_plan(path)
    assert back.variants == plan.variants and back.settings == plan.settings
    report = back.report()
    assert "variants by code family and bit floor" in report
    for v in plan.variants:
        line = next(x for x in report.splitlines()
                    if x.strip().startswith(f"floor {v.floor:>2} bits {v.family:<14} {v.grouping:<6}:"))
        assert line.endswith("<- chosen") == ((v.family, v.floor) == (plan.settings["family"], plan.settings["bit_floor"]))


def test_a_plan_saved_before_families_reads_as_optimal():
    old = {"floor": 2, "bits_per_weight": 3.0, "additive": 1.0, "sampled_msd": 0.1, "sampled_low": 0.0,
           "sampled_high": 0.2}
    back = VariantScore(**old)
    assert back.family == "optimal" and back.sampled_shift is None and back.shift_low is None
    assert back.grouping == "any"


@pytest.mark.parametrize("bad", [(), ["nope"], "optimal", ("optimal", "optimal"), None, ("minmax", 3)])
def test_bad_families_are_named(setup, bad):
    with pytest.raises(ValueError, match="families"):
        _plan(setup, families=bad)


# --- groupings: each (family, floor) planned with every granularity and with groups only -------

def _grouped(fits, j):
    return fits[j].candidate.granularity.startswith("group:")


@pytest.mark.parametrize("family", ["optimal", "minmax", "half_quadratic"])
def test_groups_keep_only_grouped_codes_where_a_tensor_has_them(setup, family):
    _, _, fitted = setup
    for fits in fitted.fitted:
        anywhere = set(variant_options(fits, floor=2, family=family).tolist())
        grouped = set(variant_options(fits, floor=2, family=family, grouping="groups").tolist())
        quantized = [j for j in anywhere if fits[j].candidate.method not in KEPT_METHODS]
        kept = anywhere - set(quantized)
        assert grouped <= anywhere and kept <= grouped
        if any(_grouped(fits, j) for j in quantized):  # W and B (512 and 1024 weights) have groups
            assert grouped == kept | {j for j in quantized if _grouped(fits, j)} and grouped != anywhere
        else:
            assert grouped == anywhere
    # a tensor offered no grouped code keeps all of its options under "groups"
    fits = tuple(f for f in fitted.fitted[0] if not f.candidate.granularity.startswith("group:"))
    assert np.array_equal(variant_options(fits, floor=1, family=family, grouping="groups"),
                          variant_options(fits, floor=1, family=family))


@pytest.mark.parametrize("budget", [2.5, 3.0])
def test_every_grouping_variant_is_its_own_knapsack(setup, budget):
    model, _, fitted = setup
    n = sum(model.state_dict()[k].numel() for k in fitted.names)
    families, groupings = ("minmax", "half_quadratic"), ("any", "groups")
    plan = _plan(setup, budget_bits=budget, bit_floors=(2,), families=families, groupings=groupings)
    assert [(v.family, v.grouping) for v in plan.variants] == [(f, g) for f in families for g in groupings]
    for v in plan.variants:
        alone = _plan(setup, budget_bits=budget, bit_floors=(2,), families=(v.family,), groupings=(v.grouping,))
        assert v.bits_per_weight == alone.bits_per_weight and alone.total_bytes <= math.floor(budget * n / 8)
        assert v.additive == pytest.approx(alone.predicted_delta.value, rel=1e-12)
        if v.grouping == "groups":
            assert all(c.granularity.startswith("group:") or c.method in KEPT_METHODS for c in alone.choices)
    best = choose_variant(plan.variants)
    assert (plan.settings["family"], plan.settings["grouping"]) == (best.family, best.grouping)
    assert plan.choices == _plan(setup, budget_bits=budget, bit_floors=(2,), families=(best.family,),
                                 groupings=(best.grouping,)).choices


def _flat_brute_force(fitted, *, family, floor, budget):
    """The least additive value over every pair of options of W and B that a "flat" plan allows,
    from the definition: each kept, or of the family, grouped, of at least ``floor`` bits, and
    the quantized ones of one code (method, bits, group size, storage)."""
    (w, b), (cw, cb), (vw, vb) = fitted.fitted, fitted.costs, fitted.values
    best = math.inf
    for i, fi in enumerate(w):
        for j, fj in enumerate(b):
            picked = [f.candidate for f in (fi, fj) if f.candidate.method not in KEPT_METHODS]
            allowed = all(c.method in CODE_FAMILIES[family] and c.bits >= floor and c.granularity.startswith("group:")
                          for c in picked) and len(set(picked)) <= 1
            if allowed and cw[i] + cb[j] <= budget:
                best = min(best, float(vw[i] + vb[j]))
    return best


@pytest.mark.parametrize("family", ["minmax", "half_quadratic"])
@pytest.mark.parametrize("budget", [2.5, 3.0, 4.5])
def test_flat_is_the_best_layout_of_one_shared_code(setup, family, budget):
    """grouping "flat" (one knapsack, no sampling): both matrices take one shared grouped code or
    full precision, and the plan's additive value is the least over every such pair of options,
    found by brute force from the definition (W and B both have grouped options)."""
    model, _, fitted = setup
    assert fitted.names == ("W", "B.weight")
    n = sum(model.state_dict()[k].numel() for k in fitted.names)
    plan = _plan(setup, budget_bits=budget, bit_floors=(1,), families=(family,), groupings=("flat",))
    assert plan.settings["grouping"] == "flat" and plan.total_bytes <= math.floor(budget * n / 8)
    codes = {(c.method, c.bits, c.granularity) for c in plan.choices if c.method not in KEPT_METHODS}
    assert len(codes) <= 1 and all(g.startswith("group:") for _, _, g in codes)
    brute = _flat_brute_force(fitted, family=family, floor=1, budget=math.floor(budget * n / 8))
    assert plan.predicted_delta.value == pytest.approx(brute, rel=1e-12)
    sets = variant_option_sets(fitted.fitted, floor=2, family=family, grouping="flat")
    assert len(sets) == len({f.candidate for fits in fitted.fitted for f in fits if f.candidate.bits >= 2
                             and f.candidate.method in CODE_FAMILIES[family]
                             and f.candidate.granularity.startswith("group:")})


def test_flat_variants_are_sampled_and_ranked_with_the_others(setup):
    """With groupings ("any", "flat") every (family, grouping) is a variant, ranked by the shift."""
    plan = _plan(setup, budget_bits=3.0, bit_floors=(2,), families=("minmax", "half_quadratic"),
                 groupings=("any", "flat"))
    assert [(v.family, v.grouping) for v in plan.variants] == [(f, g) for f in ("minmax", "half_quadratic")
                                                               for g in ("any", "flat")]
    best = choose_variant(plan.variants)
    assert (plan.settings["family"], plan.settings["grouping"]) == (best.family, best.grouping)


@pytest.mark.parametrize("bad", [(), ["nope"], "any", ("any", "any"), None, ("groups", 1)])
def test_bad_groupings_are_named(setup, bad):
    with pytest.raises(ValueError, match="groupings"):
        _plan(setup, groupings=bad)


# --- the distribution shift against POT's Bures-Wasserstein distance ------------------------------

def _pot_shift(x, y):
    """Squared W2 of the diagonal Gaussian fits per entry, by POT (unbiased variances, as the plan's)."""
    cx, cy = np.diag(x.var(axis=0, ddof=1)), np.diag(y.var(axis=0, ddof=1))
    return float(ot.gaussian.bures_wasserstein_distance(x.mean(0), y.mean(0), cx, cy)) ** 2 / x.shape[1]


pairs = st.integers(2, 12).flatmap(lambda n: st.integers(1, 6).flatmap(lambda d: st.tuples(
    *(hnp.arrays(np.float64, (n, d), elements=st.floats(-1e3, 1e3, allow_nan=False, width=32)) for _ in range(2)))))


@given(pairs)
@example((np.zeros((2, 1)), np.ones((2, 1))))
@example((np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]]), np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 3.0]])))
def test_the_shift_is_pots_diagonal_bures_wasserstein(xy):
    x, y = xy
    shift, low, high = distribution_shift(torch.from_numpy(x), torch.from_numpy(y))
    assert shift == pytest.approx(_pot_shift(x, y), rel=1e-6, abs=1e-9 * (1 + float(np.abs(np.r_[x, y]).max()) ** 2))
    assert 0 <= low <= shift <= high and np.isfinite(high)


@given(pairs)
@example((np.zeros((2, 1)), np.ones((2, 1))))
def test_diagonal_w2_is_pots_and_the_shifts_point_estimate(xy):
    """Any feature sets (numpy or torch, any trailing shape): POT's diagonal Bures-Wasserstein, and
    the point estimate of distribution_shift on the same draws."""
    x, y = xy
    tol = 1e-9 * (1 + float(np.abs(np.r_[x, y]).max()) ** 2)
    assert diagonal_w2(x, y) == pytest.approx(_pot_shift(x, y), rel=1e-6, abs=tol)
    assert diagonal_w2(torch.from_numpy(x[:, :, None]), y[:, :, None]) == pytest.approx(
        distribution_shift(torch.from_numpy(x), torch.from_numpy(y))[0], rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("a, b", [(np.zeros((4, 3)), np.zeros((4, 2))), (np.zeros((1, 3)), np.zeros((5, 3))),
                                  (np.array([[0.0], [np.nan]]), np.zeros((2, 1))),
                                  (np.zeros((2, 1)), np.array([[np.inf], [0.0]]))])
def test_diagonal_w2_names_bad_sets(a, b):
    with pytest.raises(ValueError, match="a .*b|finite"):
        diagonal_w2(a, b)


def test_the_shift_of_a_moved_copy_is_the_squared_move_and_of_a_permutation_zero():
    """A constant move c of every entry shifts the law by c^2 per entry; reordering the draws moves no law."""
    y = torch.randn(64, 3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert distribution_shift(y + 0.25, y)[0] == pytest.approx(0.0625, rel=1e-12)
    assert distribution_shift(y.flip(0), y)[0] == pytest.approx(0.0, abs=1e-28)


def test_the_shift_interval_covers_the_population_value_of_paired_samples():
    """x = 0.3 + 1.2 y + 0.1 e from the same draws y (as the plan's samples share noise), 20 entries:
    the laws' W2^2 per entry is 0.3^2 + (sqrt(1.45) - 1)^2.  Over 40 replicates the 95% percentile
    interval covers it at least 80% of the time (nominal 95%; the bootstrap undercovers by a few
    points at n = 200, and the plug-in estimate is biased up by about var(x - y) / n)."""
    population = 0.09 + (math.sqrt(1.45) - 1) ** 2
    covered = 0
    for seed in range(40):
        gen = torch.Generator().manual_seed(seed)
        y = torch.randn(200, 20, generator=gen, dtype=torch.float64)
        x = 0.3 + 1.2 * y + 0.1 * torch.randn(200, 20, generator=gen, dtype=torch.float64)
        shift, low, high = distribution_shift(x, y)
        assert abs(shift - population) < 0.02
        covered += low < population < high
    assert covered >= 32


@pytest.mark.parametrize("shapes", [((4, 3), (4, 2)), ((1, 3), (1, 3)), ((3, 2), (2, 2))])
def test_bad_sample_shapes_are_named(shapes):
    with pytest.raises(ValueError, match="samples"):
        distribution_shift(torch.zeros(shapes[0]), torch.zeros(shapes[1]))


def _oracle_w2(x: np.ndarray, y: np.ndarray) -> float:
    """Squared W2 of diagonal Gaussian fits per entry, written out entry by entry."""
    total = 0.0
    for j in range(x.shape[1]):
        total += (x[:, j].mean() - y[:, j].mean()) ** 2 + (x[:, j].std(ddof=1) - y[:, j].std(ddof=1)) ** 2
    return total / x.shape[1]


@settings(deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(3, 40), d=st.integers(1, 5))
def test_the_shift_difference_is_the_oracles_and_lies_in_its_interval(seed, n, d):
    """scripts/shift_draws_cpu.py's paired difference of two variants' shifts."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n, d))
    x, y = ref + 0.3 * rng.normal(size=(n, d)), ref + 0.1 * rng.normal(size=(n, d))
    x, y, ref = (torch.from_numpy(v) for v in (x, y, ref))
    value, low, high = shift_difference(x, y, ref, resamples=1000)
    assert value == pytest.approx(_oracle_w2(x.numpy(), ref.numpy()) - _oracle_w2(y.numpy(), ref.numpy()),
                                  rel=1e-10, abs=1e-12)
    assert low <= value <= high
    back = shift_difference(y, x, ref, resamples=1000)
    assert back[0] == pytest.approx(-value, rel=1e-12, abs=1e-15)


def test_a_variant_against_itself_differs_by_exactly_zero():
    rng = np.random.default_rng(0)
    ref = torch.from_numpy(rng.normal(size=(50, 4)))
    x = ref + torch.from_numpy(rng.normal(size=(50, 4)))
    assert shift_difference(x, x, ref, resamples=1000) == (0.0, 0.0, 0.0)


def test_pairing_resolves_a_difference_that_the_two_intervals_do_not():
    """Two variants sharing most of their error: each shift alone is noisy, their difference is not."""
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(400, 8))
    common = rng.normal(size=(400, 8))
    x, y = ref + 0.5 * common + 0.05, ref + 0.5 * common
    x, y, ref = (torch.from_numpy(v) for v in (x, y, ref))
    value, low, high = shift_difference(x, y, ref, resamples=1000)
    assert value == pytest.approx(0.05**2 + 0.05 * 2 * (0.5 * common).mean(0).mean(), rel=1e-9)  # same spreads
    _, x_low, x_high = distribution_shift(x, ref)
    _, y_low, y_high = distribution_shift(y, ref)
    assert x_low < y_high and y_low < x_high  # the two intervals overlap
    assert low > 0  # the paired one does not hold 0


@pytest.mark.parametrize("other, resamples, match", [
    (torch.zeros(5, 3), 10, "samples \\(4, 3\\) and other \\(5, 3\\) and reference \\(4, 3\\) must have one shape"),
    (torch.zeros(4, 3), 0, "resamples must be a positive int, got 0")])
def test_shift_difference_names_bad_sets_and_resamples(other, resamples, match):
    with pytest.raises(ValueError, match=match):
        shift_difference(torch.zeros(4, 3), other, torch.zeros(4, 3), resamples=resamples)
