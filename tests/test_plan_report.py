"""Tests of :mod:`fmq_theory.results.plan_report` on synthetic plan tables, and of the page
``notebooks/plan.md`` executed against them (the real tables come from a GPU run).

The synthetic tables are written through :data:`~fmq_theory.results.schema.PLAN` and
:data:`~fmq_theory.results.schema.PLAN_CHOICES` into a temporary folder, never into ``results/``.
Their numbers are chosen so that every goal's outcome is known by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jupytext
import nbclient
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fmq_theory.results.plan_report import (
    CLASSIFIER, CLASSIFIER_PAIRED, INCEPTION, Change, goal_statement, headline_table, judge_plan_goals, model_results, pareto_front, plan_table, plot_plan_bitmap,
    plot_plan_pareto, plot_predicted_vs_measured, plot_whole_form_run, read_plan_choices, read_plan_results,
    summarize_choices,
)
from fmq_theory.results.schema import PLAN, PLAN_CHOICES

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = (2.0, 2.5, 3.0, 4.0)


def _row(model, budget, method, setting, bpw, fid, low, high, *, fid_fp, samples=1000, **extra):
    """A PLAN row in classifier features: dFID = fid - fid_fp with the interval [low, high]."""
    return {"model": model, "dataset": "fashion_mnist", "architecture": "unet", "budget": budget, "method": method,
            "setting": setting, "bits_per_weight": bpw, "samples": samples, "solver": "midpoint", "steps": 10,
            "nfe": 20, "seed": 0, "feature_net": "clf", "fid": fid, "fid_fp": fid_fp, "dfid": fid - fid_fp,
            "dfid_low": low, "dfid_high": high, "fid_real_test_samples": 500, "checkpoint_sha256": "ab"} | extra


def _model_rows(model, fid_fp, plan_fids, *, inception=False):
    """FP, the plan at every budget (fids ``plan_fids``, dFID interval +-0.1, predicted 1.5 x its
    dFID at 3 bits and 4 x elsewhere) and two peers per budget: dFID 10 in [5, 15] and 20 in [19, 21]."""
    rows = [_row(model, 32.0, "none", "fp32", 32.0, fid_fp, 0.0, 0.0, fid_fp=fid_fp)]
    for b, fid in zip(BUDGETS, plan_fids):
        d = fid - fid_fp
        rows.append(_row(model, b, "plan", f"budget {b:g}", b, fid, d - 0.1, d + 0.1, fid_fp=fid_fp,
                         predicted_dfid=(1.5 if b == 3.0 else 4.0) * d, predicted_dfid_low=0.0,
                         predicted_dfid_high=6 * d))
        rows.append(_row(model, b, "rule:lloyd_max", f"b{int(b)}", b + 0.9, fid_fp + 10, 5.0, 15.0, fid_fp=fid_fp))
        rows.append(_row(model, b, "hqq:g64", f"b{int(b)}", b + 0.5, fid_fp + 20, 19.0, 21.0, fid_fp=fid_fp))
    if inception:  # Inception FIDs twice the classifier's, intervals too
        for r in rows:
            r |= {"inception_net": "inc", "fid_inception": 2 * r["fid"], "fid_inception_fp": 2 * fid_fp,
                  "dfid_inception": 2 * r["dfid"], "dfid_inception_low": 2 * r["dfid_low"],
                  "dfid_inception_high": 2 * r["dfid_high"]}
    return rows


def _choices(n=24):
    """A plan's choices for ``n`` tensors: small ones in float16, the rest at 2-3 bits."""
    names = [f"{blk}.{i}.w" for blk in ("down", "mid", "up") for i in range(n // 3)]
    rows = []
    for i, name in enumerate(names):
        small = i % 5 == 0
        rows.append({"name": name, "method": "float16" if small else ("lloyd_max" if i % 2 else "uniform_mse"),
                     "bits": 16 if small else 2 + i % 2, "granularity": "tensor" if small else "channel",
                     "storage": "float16", "n_weights": 64 if small else 4096, "nbytes": 128 if small else 1200,
                     "bits_per_weight": 16.0 if small else 2.0 + i % 2 + 0.3, "mse": 0.0 if small else 1e-4,
                     "gain": 1.0, "predicted": 0.0 if small else 1e-3})
    return rows


@pytest.fixture
def results_dir(tmp_path):
    """Synthetic ``plan_<model>.csv`` for two models and plan choices for one (budgets 2 and 3)."""
    out = tmp_path / "results"
    out.mkdir()
    # mnist: plan dFID 0.3 at 3 bits (<= 10% of 5), FID 9.0 at 2 bits (<= 2 x 5), 10.0 at 2.5 (= 2 x 5)
    PLAN.write(out / "plan_mnist.csv", _model_rows("mnist", 5.0, (9.0, 10.0, 5.3, 5.1)))
    # dit: plan dFID 2.0 at 3 bits (> 10% of 10), FID 25 at 2 bits (> 2 x 10), and loses to lloyd_max there
    PLAN.write(out / "plan_dit.csv", _model_rows("dit", 10.0, (25.0, 19.0, 12.0, 10.5)))
    for b in (2, 3):
        PLAN_CHOICES.write(out / f"plan_choices_mnist_{b}.csv", _choices())
    return out


def test_read_plan_results_finds_models_and_not_choices(results_dir):
    res = read_plan_results(results_dir)
    assert list(res) == ["dit", "mnist"]
    assert list(read_plan_results(results_dir, models=["mnist", "paper_arch", "dit"])) == ["mnist", "dit"]
    with pytest.raises(FileNotFoundError, match="results_dir"):
        read_plan_results(results_dir, models=["paper_arch"])
    choices = read_plan_choices(results_dir, model="mnist")
    assert list(choices) == [2.0, 3.0] and len(choices[3.0]) == 24
    assert read_plan_choices(results_dir, model="dit") == {}


def test_model_results_cells(results_dir):
    m = read_plan_results(results_dir)["mnist"]
    assert (m.features, m.net, m.fid_fp, m.budgets) == ("classifier", "clf", 5.0, BUDGETS)
    assert m.protocol["samples"] == 1000 and m.unmeasured == () and m.dropped_protocols == ()
    assert len(m.cells) == 12
    plan3 = next(c for c in m.at(3.0) if c.method == "plan")
    assert plan3.change.value == pytest.approx(0.3) and plan3.change.resolved
    assert plan3.predicted == pytest.approx(0.45) and plan3.measured.features == "classifier"
    assert all(c.predicted is None for c in m.cells if c.method != "plan")


def test_model_results_prefers_inception_and_keeps_the_largest_protocol():
    rows = _model_rows("m", 4.0, (8.0, 6.0, 4.2, 4.1), inception=True)
    rows += [r | {"samples": 64} for r in _model_rows("m", 3.0, (9.0, 9.0, 9.0, 9.0))]
    m = model_results(rows)
    assert (m.features, m.net, m.fid_fp, m.dropped_protocols) == ("Inception", "inc", 8.0, (64,))
    plan3 = next(c for c in m.at(3.0) if c.method == "plan")
    assert plan3.fid == pytest.approx(8.4) and plan3.change.value == pytest.approx(0.4)
    assert (plan3.change.low, plan3.change.high) == pytest.approx((0.2, 0.6))
    # no predicted_dfid_inception: the prediction stays with the classifier's measured change
    assert plan3.measured.features == "classifier" and plan3.measured.value == pytest.approx(0.2)
    # with an Inception prediction on every predicted row, it is compared in Inception features
    rows = [r | ({"predicted_dfid_inception": 1.0} if r["method"] == "plan" else {}) for r in rows]
    m = model_results(rows)
    plan3 = next(c for c in m.at(3.0) if c.method == "plan")
    assert plan3.predicted == 1.0 and plan3.measured.features == "Inception"
    assert m.prediction == "Inception, plain"


def test_model_results_prefers_the_paired_prediction_where_every_row_has_it():
    rows = _model_rows("m", 4.0, (8.0, 6.0, 4.2, 4.1), inception=True)
    paired = {"predicted_dfid_inception": 5.0, "predicted_dfid_inception_paired": 0.5,
              "predicted_dfid_inception_paired_low": 0.3, "predicted_dfid_inception_paired_high": 0.7}
    rows = [r | (paired if r["method"] == "plan" else {}) for r in rows]
    m = model_results(rows)
    plan3 = next(c for c in m.at(3.0) if c.method == "plan")
    assert m.prediction == "Inception, paired"
    assert (plan3.predicted, plan3.predicted_low, plan3.predicted_high) == (0.5, 0.3, 0.7)
    assert plan3.measured.value == pytest.approx(0.4)  # the measured change, Inception features
    # goal 4 judges the paired value (0.5 / 0.4), where the plain one (5.0 / 0.4) would miss
    g4 = judge_plan_goals([m])[3]
    v = next(v for v in g4.verdicts if v.label == "m 3 plan/budget 3")
    assert v.ok and v.value == pytest.approx(1.25) and "(Inception, paired)" in v.text
    # one predicted row without it: every row falls back to the plain estimate
    rows[-3] = {k: v for k, v in rows[-3].items() if k != "predicted_dfid_inception_paired"}
    assert rows[-3]["method"] == "plan" and model_results(rows).prediction == "Inception, plain"
    # classifier features: the paired classifier columns are preferred there too
    cls = [r | ({"predicted_dfid_paired": 0.2} if r["method"] == "plan" else {})
           for r in _model_rows("c", 5.0, (9.0, 10.0, 5.3, 5.1))]
    c = model_results(cls)
    assert c.prediction == "classifier, paired"
    assert next(x for x in c.at(3.0) if x.method == "plan").predicted == 0.2


def test_model_results_bad_rows():
    rows = _model_rows("m", 4.0, (8.0, 6.0, 4.2, 4.1))
    with pytest.raises(ValueError, match="rows is empty"):
        model_results([])
    with pytest.raises(ValueError, match="models"):
        model_results(rows + [rows[1] | {"model": "other"}])
    with pytest.raises(ValueError, match="full-precision"):
        model_results(rows[1:])
    with pytest.raises(ValueError, match="two rows"):
        model_results(rows + [rows[1]])
    m = model_results(rows[:1] + [rows[1] | {"fid": None}] + rows[2:])
    assert m.unmeasured == ("2 plan/budget 2",)


def test_goals_on_known_tables(results_dir):
    res = read_plan_results(results_dir)
    g1, g2, g3, g4 = judge_plan_goals([res["mnist"], res["dit"]])
    assert [v.status for v in g1.verdicts] == ["met", "missed"] and not g1.met
    assert [v.value for v in g1.verdicts] == pytest.approx([0.3 / 5, 2.0 / 10])
    # mnist 2.0 (9 <= 10), mnist 2.5 (10 <= 10, the boundary is met), dit 2.0 (25 > 20), dit 2.5 (19 <= 20)
    assert [(v.label, v.ok) for v in g2.verdicts] == [
        ("mnist 2", True), ("mnist 2.5", True), ("dit 2", False), ("dit 2.5", True)]
    status = {v.label: v.status for v in g3.verdicts}
    assert len(status) == 16
    assert status["mnist 3 rule:lloyd_max/b3"] == "resolved win"
    assert status["dit 2 rule:lloyd_max/b2"] == "loss, not resolved"  # 25 > 20, but [14.9, 15.1] meets [5, 15]
    assert status["dit 2 hqq:g64/b2"] == "resolved win"  # [14.9, 15.1] below [19, 21]
    assert status["dit 2.5 rule:lloyd_max/b2"] == "win, not resolved"  # 19 < 20, but [8.9, 9.1] meets [5, 15]
    assert status["mnist 2.5 rule:lloyd_max/b2"] == "win, not resolved"  # [4.9, 5.1] meets [5, 15]
    assert sum(s == "resolved win" for s in status.values()) == 13
    # the peers' extra bits over the plan: 0.9 for rule:lloyd_max, 0.5 for hqq:g64 (the rows' bpw); goal 3 only
    extra = {v.label: v.peer_extra_bits for v in g3.verdicts}
    assert extra["dit 2 rule:lloyd_max/b2"] == pytest.approx(0.9) and extra["mnist 4 hqq:g64/b4"] == pytest.approx(0.5)
    assert all(v.peer_extra_bits is None for g in (g1, g2, g4) for v in g.verdicts)
    # predicted = 1.5 x measured at 3 bits (met), 4 x elsewhere (missed); judged on the 7 resolved
    # plan cells (mnist at 4 bits, dFID 0.1 in [0.1 - 0.1, 0.2], is not resolved)
    assert sorted(v.label for v in g4.verdicts if v.ok) == ["dit 3 plan/budget 3", "mnist 3 plan/budget 3"]
    assert len(g4.verdicts) == 7 and "mnist 4 plan/budget 4" not in {v.label for v in g4.verdicts}
    assert sorted(v.value for v in g4.verdicts) == pytest.approx([1.5, 1.5, 4, 4, 4, 4, 4])
    # 4 x a dFID whose interval is +-0.1 around it: no value of the interval is within 2x
    assert {v.status for v in g4.verdicts if not v.ok} == {"missed, resolved"}
    text = goal_statement((g1, g2, g3, g4))
    assert text.count("**not met**") == 4 and "2 of 7 pass" in text.splitlines()[3]


@pytest.mark.parametrize("low, high, predicted, want", [
    (0.0583, 0.759, 0.0876, True),   # 2 x 0.0876 = 0.175 lies in the interval
    (0.2, 0.759, 0.0876, False),     # the whole interval is above 2 x the prediction
    (0.58, 1.59, 2.58, True),        # 2.58 / 2 = 1.29 lies in the interval
    (0.58, 1.2, 2.58, False),        # the whole interval is below half the prediction
    (-1.0, -0.5, -1.5, True),        # negative: -1.5 / 2 = -0.75 lies in the interval
    (-1.0, -0.5, 0.6, False),        # opposite signs: no value has a positive ratio
    (-0.1, 0.1, 0.15, True),         # an interval holding 0 meets [0.075, 0.3]
    (0.1, 0.2, 0.0, False),          # a zero prediction has ratio 0 to everything
    (None, None, 0.1, False),        # no interval
])
def test_change_admits_a_factor_of_the_prediction(low, high, predicted, want):
    # brute force: some value m of a fine grid of the interval with 1/2 <= predicted / m <= 2
    change = Change("classifier", 0.0 if low is None else (low + high) / 2, low, high)
    assert change.admits(predicted, band=2.0) is want
    if low is not None:
        grid = np.linspace(low, high, 100001)
        ratio = np.divide(predicted, grid, out=np.full_like(grid, np.inf), where=grid != 0)
        assert bool(np.any((ratio >= 0.5) & (ratio <= 2.0))) is want


def test_goal_with_nothing_to_judge_is_not_met(results_dir):
    m = read_plan_results(results_dir)["mnist"]
    g1, g2, _, _ = judge_plan_goals([m], budget=3.5, low_budgets=(1.0, 1.5))
    assert not g1.met and g1.verdicts[0].text == "mnist: no plan row at 3.5 bits" and g1.verdicts[0].value is None
    assert g2.verdicts == () and not g2.met and "not judged" in goal_statement((g2,))


@pytest.mark.parametrize("kwargs, match", [
    ({"dfid_fraction": 0.0}, "dfid_fraction"), ({"fid_ratio": 1.0}, "fid_ratio"), ({"band": 1.0}, "band"),
    ({"low_budgets": (2.5, 2.0)}, "low_budgets")])
def test_bad_goal_arguments_name_the_argument(results_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        judge_plan_goals(list(read_plan_results(results_dir).values()), **kwargs)
    with pytest.raises(ValueError, match="models"):
        judge_plan_goals([])


def test_change_resolution():
    assert Change("c", 1.0, 0.5, 1.5).resolved and Change("c", -1.0, -1.5, -0.5).resolved
    assert not Change("c", 0.1, -0.1, 0.3).resolved and not Change("c", 1.0, None, None).resolved


@given(st.lists(st.tuples(st.integers(1, 40).map(lambda k: k / 8), st.integers(1, 60).map(float)),
                min_size=1, max_size=12))
@example([(2.0, 5.0), (2.0, 3.0), (3.0, 3.0)])
def test_pareto_front_against_brute_force(points):
    # brute force: a point is on the front unless another has fewer or equal bits and a lower
    # FID, or the same bits and FID (then the first of equals is kept)
    unique = sorted(set(points))
    front = [p for p in unique if not any(q[0] <= p[0] and q[1] < p[1] for q in unique)
             and not any(q[0] < p[0] and q[1] == p[1] for q in unique)]
    assert pareto_front(points) == tuple(front)


def test_model_results_reads_the_feature_net_asked_for():
    """Rows in both nets are read in Inception's by default and in either when asked; Inception is
    refused where a row lacks it, and anything but the two nets is refused by name."""
    both = _model_rows("dit", 10.0, (25.0, 19.0, 12.0, 10.5), inception=True)
    auto, clf, inc = (model_results(both, features=f) for f in (None, CLASSIFIER, INCEPTION))
    assert (auto.features, clf.features, inc.features) == ("Inception", "classifier", "Inception")
    assert [(c.fid, c.change) for c in auto.cells] == [(c.fid, c.change) for c in inc.cells]
    assert (clf.fid_fp, inc.fid_fp) == (10.0, 20.0)
    # the rows hold the classifier's prediction only: the default judges by it, Inception's view has none
    assert auto.prediction == "classifier, plain" and inc.prediction == ""
    assert {c.predicted for c in inc.cells} == {None}
    assert [c.fid for c in clf.cells] == [c.fid / 2 for c in inc.cells]
    assert [c.change.high for c in clf.cells] == [c.change.high / 2 for c in inc.cells]
    # the classifier's prediction stays with the classifier's view
    assert [c.predicted for c in clf.cells] == [c.predicted for c in model_results(_model_rows(
        "dit", 10.0, (25.0, 19.0, 12.0, 10.5))).cells]
    with pytest.raises(ValueError, match="features=INCEPTION"):
        model_results(_model_rows("dit", 10.0, (25.0, 19.0, 12.0, 10.5)), features=INCEPTION)
    with pytest.raises(ValueError, match="features="):
        model_results(both, features=CLASSIFIER_PAIRED)


def test_losses_are_resolved_only_when_the_plans_interval_lies_above(tmp_path):
    """A loss mirrors a win: resolved when the plan's dFID interval lies entirely above the peer's;
    an equal FID is a loss, and within the noise when the intervals meet."""
    # the plan at 2 bits: FID 30, dFID 20 in [19.9, 20.1]; the peers: 20 in [5, 15] and 30 in [19, 21]
    PLAN.write(tmp_path / "plan_dit.csv", _model_rows("dit", 10.0, (30.0, 19.0, 12.0, 10.5)))
    status = {v.label: (v.status, v.ok) for v in judge_plan_goals(list(read_plan_results(tmp_path).values()))[2].verdicts}
    assert status["dit 2 rule:lloyd_max/b2"] == ("resolved loss", False)  # [19.9, 20.1] above [5, 15]
    assert status["dit 2 hqq:g64/b2"] == ("loss, not resolved", False)  # 30 = 30, [19.9, 20.1] within [19, 21]
    assert status["dit 2.5 rule:lloyd_max/b2"] == ("win, not resolved", False)


def test_headline_table(results_dir):
    lines = headline_table(list(read_plan_results(results_dir).values())).splitlines()
    assert len(lines) == 2 + 8
    # dit at 2 bits: plan FID 25 against the best peer, rule:lloyd_max at 15 + 10 = 20
    assert lines[2] == "| dit | 2 | 25 (2.000) | rule:lloyd\\_max/b2: 20 (2.900) | loss, not resolved |"
    assert lines[-1] == "| mnist | 4 | 5.1 (4.000) | rule:lloyd\\_max/b4: 15 (4.900) | resolved win |"


def test_plan_table(results_dir):
    text = plan_table(read_plan_results(results_dir)["mnist"])
    lines = text.splitlines()
    assert len(lines) == 2 + 12 and "FID (classifier)" in lines[0]
    plan3 = next(line for line in lines if "**plan/budget 3**" in line)
    assert "| 3.000 | 5.3 | 0.3 [0.2, 0.4] | 0.45 [0, 1.8] |" in plan3


def test_small_numbers_are_typeset_as_math():
    rows = _model_rows("m", 4.0, (4.00002, 6.0, 4.2, 4.1))
    m = model_results(rows)
    line = plan_table(m).splitlines()[2]
    assert "**plan/budget 2**" in line and "$2 \\times 10^{-5}$" in line
    g1, *_ = judge_plan_goals([m], budget=2.0, dfid_fraction=1e-6)
    assert "2e-05" in g1.verdicts[0].text  # plain text in the verdict, math on the page
    assert "$2 \\times 10^{-5}$" in goal_statement((g1,)) and "2e-05" not in goal_statement((g1,))


def test_summarize_choices_by_hand():
    s = summarize_choices(_choices())
    # 24 tensors: i % 5 == 0 (5 of them, 64 weights, 16 bits) kept; 19 of 4096 weights at 2.3 or 3.3 bits
    assert (s.tensors, s.kept_tensors, s.n_weights) == (24, 5, 5 * 64 + 19 * 4096)
    odd = sum(1 for i in range(24) if i % 5 and i % 2)  # lloyd_max at 3.3 bits
    bits = 5 * 64 * 16 + odd * 4096 * 3.3 + (19 - odd) * 4096 * 2.3
    assert s.bits_per_weight == pytest.approx(bits / s.n_weights, rel=1e-12)
    assert s.kept_weight_share == pytest.approx(320 / s.n_weights, rel=1e-12)
    assert s.kept_bit_share == pytest.approx(5 * 64 * 16 / bits, rel=1e-12)
    assert list(s.method_weight_share) == ["lloyd_max", "uniform_mse", "float16"]
    assert sum(s.method_weight_share.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rows is empty"):
        summarize_choices([])


def test_pareto_figure(results_dir):
    res = read_plan_results(results_dir)
    fig = plot_plan_pareto(list(res.values()))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2
    plan_line = next(line for line in axes[1].lines if line.get_marker() == "*")
    assert list(plan_line.get_xdata()) == list(BUDGETS)
    assert list(plan_line.get_ydata()) == [9.0, 10.0, 5.3, 5.1]
    assert any(list(line.get_ydata()) == [5.0, 5.0] for line in axes[1].lines)  # full precision
    with pytest.raises(ValueError, match="models"):
        plot_plan_pareto([])


def test_bitmap_figure(results_dir):
    choices = read_plan_choices(results_dir, model="mnist")
    fig = plot_plan_bitmap(choices, title="mnist")
    assert len(fig.axes) == 3
    heights = sorted((p.get_x() + p.get_width() / 2, p.get_height()) for p in fig.axes[1].patches)
    assert [h for _, h in heights] == pytest.approx([r["bits_per_weight"] for r in choices[3.0]])
    assert fig.axes[2].get_xticklabels()[1].get_text() == "mid"
    with pytest.raises(ValueError, match="other tensors"):
        plot_plan_bitmap({2.0: choices[2.0], 3.0: choices[3.0][1:]}, title="x")
    with pytest.raises(ValueError, match="choices is empty"):
        plot_plan_bitmap({}, title="x")


def test_predicted_vs_measured_figure(results_dir):
    res = read_plan_results(results_dir)
    fig = plot_predicted_vs_measured(list(res.values()))
    ax = fig.axes[0]
    assert ax.get_title().startswith("8 of 8 cells")
    x = sorted(float(np.asarray(c[0].get_xdata())[0]) for c in ax.containers)
    assert x == pytest.approx(sorted([0.3, 2.0, 4.0, 5.0, 0.1, 0.5, 9.0, 15.0]))
    with pytest.raises(ValueError, match="band"):
        plot_predicted_vs_measured(list(res.values()), band=0.5)


def test_predicted_vs_measured_figure_draws_any_number_of_budgets():
    """Matched budgets add many (a peer's bits per weight): every budget gets a marker and a legend key."""
    budgets = [2.0 + 0.125 * i for i in range(15)]
    rows = [_row("m", 0.0, "none", "fp32", 32.0, 5.0, None, None, fid_fp=5.0)]
    rows += [_row("m", b, "plan", f"budget {b:g}", b, 5.0 + 1 / b, 0.5 / b, 2 / b, fid_fp=5.0,
                  predicted_dfid=1 / b, predicted_dfid_low=0.5 / b, predicted_dfid_high=2 / b) for b in budgets]
    ax = plot_predicted_vs_measured([model_results(rows)]).axes[0]
    assert ax.get_title().startswith(f"{len(budgets)} of {len(budgets)} cells")
    keys = [t.get_text() for t in ax.get_legend().get_texts() if t.get_text().startswith("budget")]
    assert keys == [f"budget {b:g}" for b in budgets]


def test_whole_form_figure():
    """One point per plan at its sampled displacement, coloured by how it was allocated; the peer a line."""
    def row(label, m):
        return {"variant": label, "bits_per_weight": 2.3, "sampled_msd": m, "sampled_low": m - 0.01,
                "sampled_high": m + 0.02}
    rows = [row("hqq:g128 b2", 0.13), row("knapsack: optimal, floor 1", 0.32),
            row("whole form, optimal options, from floor 1", 0.42), row("whole form, every option, from optimal floor 1", 0.39)]
    ax = plot_whole_form_run(rows).axes[0]
    points = [(float(np.asarray(c[0].get_ydata())[0]), c[0].get_color()) for c in ax.containers]
    assert points == [(0.32, "tab:blue"), (0.42, "tab:orange"), (0.39, "tab:red")]
    assert [float(y) for y in ax.lines[-4].get_ydata()] == [0.13, 0.13]  # the peer's line, before the legend keys
    with pytest.raises(ValueError, match="rows must hold the peer"):
        plot_whole_form_run(rows[:1])


@pytest.mark.slow
def test_page_executes_on_synthetic_tables(results_dir, tmp_path):
    """notebooks/plan.md runs start to end on the synthetic tables (as the book would on the real ones)."""
    root = results_dir.parent
    (root / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "plan.md", root / "notebooks" / "plan.md")
    nb = jupytext.read(root / "notebooks" / "plan.md")
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(root / "notebooks")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    glued = {o["metadata"]["scrapbook"]["name"] for o in outputs if "scrapbook" in o.get("metadata", {})}
    assert {"plan_models", "plan_within_band", "plan_resolved_predicted", "plan_goals_met", "plan_envelope_text"} <= glued


def test_peers_only_tables_are_drawn_and_judged():
    """A table without plan rows (``gpu_plan_eval.py --no-with-plan``): nothing met, nothing fails."""
    m = model_results([r for r in _model_rows("m", 4.0, (8.0, 6.0, 4.2, 4.1)) if r["method"] != "plan"])
    goals = judge_plan_goals([m])
    assert [len(g.verdicts) for g in goals] == [1, 0, 0, 0] and not any(g.met for g in goals)
    assert goal_statement(goals).count("**not judged** (no cell)") == 3
    assert plot_predicted_vs_measured([m]).axes[0].get_title().startswith("0 of 0 cells")
    assert not [line for line in plot_plan_pareto([m]).axes[0].lines if line.get_marker() == "*"]
