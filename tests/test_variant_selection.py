"""Which score picks the plan's variant: the picks, ties and regrets against a brute-force reading."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fmq_theory.results.plan_report import CLASSIFIER, INCEPTION
from fmq_theory.results.schema import PLAN
from fmq_theory.results.variant_selection import (SCORES, grouping_picks, in_features, plot_grouping_picks,
                                                  plot_layout_run, plot_score_regrets, plot_variant_selection,
                                                  selection_cells)

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _row(model="m", budget=2.0, family="optimal", floor=1, additive=1.0, msd=0.1, shift=0.1, dfid=1.0):
    return {"model": model, "budget": budget, "family": family, "floor": floor, "additive": additive, "msd": msd,
            "shift": shift, "dfid": dfid}


values = st.floats(-1e3, 1e3, allow_nan=False)


@given(st.lists(st.tuples(st.sampled_from([2.0, 3.0]), st.integers(1, 3), values, values, values, values),
                min_size=1, max_size=12))
def test_each_pick_is_the_least_score_then_the_lowest_floor(spec):
    rows = [_row(budget=b, floor=f, additive=a, msd=m, shift=s, dfid=d) for b, f, a, m, s, d in spec]
    cells = selection_cells(rows)
    assert [c.budget for c in cells] == list(dict.fromkeys(r["budget"] for r in rows))
    for cell in cells:
        group = [r for r in rows if r["budget"] == cell.budget]
        assert list(cell.variants) == group and cell.best["dfid"] == min(r["dfid"] for r in group)
        for name, key in (("additive", "additive"), ("displacement", "msd"), ("shift", "shift")):
            least = min((r[key], r["floor"]) for r in group)
            assert (cell.picked[name][key], cell.picked[name]["floor"]) == least
            assert cell.regret(name) >= 0


def test_ties_go_to_the_lower_floor_and_the_first_given():
    a, b, c = _row(floor=2, shift=0.1, dfid=5.0), _row(floor=1, shift=0.1, dfid=7.0), _row(floor=1, shift=0.1)
    (cell,) = selection_cells([a, b, c])
    assert cell.picked["shift"] is b and cell.regret("shift") == 6.0


def test_the_first_runs_summed_shift_ranks_like_the_per_entry_one():
    rows = [{k: v for k, v in _row(floor=f, shift=s, dfid=d).items() if k != "shift"} | {"w2_diag": 784 * s}
            for f, s, d in ((1, 0.3, 9.0), (2, 0.1, 4.0))]
    (cell,) = selection_cells(rows)
    assert cell.picked["shift"]["floor"] == 2 and cell.regret("shift") == 0.0


@pytest.mark.parametrize("name", ["plan_variants_gpu.json", "plan_variants_groupings_gpu.json"])
def test_the_committed_runs_are_read_whole(name):
    rows = json.loads((RESULTS / name).read_text())["rows"]
    cells = selection_cells(rows)
    assert sum(len(c.variants) for c in cells) == len(rows)
    for cell in cells:
        assert set(cell.picked) == set(SCORES)
        assert len({(r["family"], r["floor"], r.get("grouping", "any")) for r in cell.variants}) == len(cell.variants)


@pytest.mark.parametrize("rows, match", [([], "rows"), ([{"model": "m", "budget": 2.0}], "rows\\[0\\]"),
                                         ([_row(shift=float("nan"))], "non-finite")])
def test_bad_rows_are_named(rows, match):
    with pytest.raises(ValueError, match=match):
        selection_cells(rows)


def test_the_figure_marks_every_pick():
    rows = [_row(budget=b, floor=f, shift=s, dfid=d) for b, (f, s, d) in itertools.product(
        (2.0, 3.0), ((1, 0.3, -0.5), (2, 0.1, 40.0)))]
    fig = plot_variant_selection(selection_cells(rows), title="t")
    ax = fig.axes[0]
    assert ax.get_yscale() == "symlog" and len(ax.get_xticks()) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"picked by the {name}" for name in SCORES] + ["every variant"]
    points = np.concatenate([line.get_ydata() for line in ax.get_lines() if len(line.get_ydata())])
    assert np.isfinite(points).all() and -0.5 in points and 40.0 in points
    with pytest.raises(ValueError, match="cells"):
        plot_variant_selection([])


def test_plot_score_regrets_draws_one_bar_per_score_and_set():
    summary = {"any": {"shift": {"total_regret": 2.0}, "fd": {"total_regret": 0.0}},
               "all": {"shift": {"total_regret": 5.0}, "fd": {"total_regret": 1.5}}}
    fig = plot_score_regrets(summary, labels={"shift": "the shift", "fd": "pixel FD"}, title="t")
    bars = [p.get_width() for p in fig.axes[0].patches]
    assert bars == [2.0, 0.0, 5.0, 1.5]


def test_plot_layout_run_draws_each_budgets_sets_in_order():
    """One panel per budget; each weight set's dFID at its place (plan, plan flat, layout, peer) with its interval."""
    def row(budget, method, dfid):
        return {"budget": budget, "method": method, "bits_per_weight": budget, "dfid": dfid, "dfid_low": dfid - 1,
                "dfid_high": dfid + 2, "shift": 0.1}
    rows = [row(2.3, "peer", 10.0), row(2.3, "plan", 30.0), row(3.5, "layout", 4.0), row(2.3, "plan flat", 11.0)]
    fig = plot_layout_run(rows)
    assert [ax.get_title() for ax in fig.axes] == ["2.3 bits per weight", "3.5 bits per weight"]
    points = fig.axes[0].lines[0].get_xydata()
    assert points.tolist() == [[30.0, 0.0], [11.0, 1.0], [10.0, 2.0]]
    with pytest.raises(ValueError, match="rows hold methods \\['other'\\]"):
        plot_layout_run([row(2.3, "other", 1.0)])
    with pytest.raises(ValueError, match="rows: give at least one"):
        plot_layout_run([])


def test_plot_score_regrets_names_a_missing_score():
    with pytest.raises(ValueError, match="lacks the scores"):
        plot_score_regrets({"any": {"shift": {"total_regret": 1.0}}}, labels={"fd": "pixel FD"})
    with pytest.raises(ValueError, match="summary and labels"):
        plot_score_regrets({}, labels={"fd": "pixel FD"})


@given(st.lists(st.tuples(st.sampled_from([2.0, 3.0]), st.sampled_from(["any", "flat", "groups"]), st.integers(1, 3),
                          values, values), min_size=1, max_size=14))
@example(spec=[(2.0, "flat", 1, 0.0, 0.0)]).via("no variant of the default set: no cell")
@example(spec=[(2.0, "groups", 1, 0.0, 0.0), (3.0, "any", 1, 0.0, 0.0), (2.0, "any", 1, 0.0, 0.0)]).via(
    "the order is that of the widened set's rows, not of every row")
def test_grouping_picks_are_the_least_shift_within_each_set(spec):
    """Oracle: brute force over the rows of each set of groupings, (shift, floor) then first given."""
    rows = [_row(budget=b, floor=f, shift=s, dfid=d) | {"grouping": g, "dfid_low": d - 1, "dfid_high": d + 1}
            for b, g, f, s, d in spec]
    picks = grouping_picks(rows)
    cells = [b for b in dict.fromkeys(r["budget"] for r in rows if r["grouping"] in ("any", "flat"))
             if any(r["budget"] == b and r["grouping"] == "any" for r in rows)]
    assert [p.budget for p in picks] == cells
    for pick in picks:
        def least(groupings):
            group = [r for r in rows if r["budget"] == pick.budget and r["grouping"] in groupings]
            return min(group, key=lambda r: (r["shift"], r["floor"]))
        assert pick.default is least(("any",)) and pick.widened is least(("any", "flat"))
        assert pick.best["dfid"] == min(r["dfid"] for r in rows if r["budget"] == pick.budget and r["grouping"] != "groups")
        assert pick.widened["shift"] <= pick.default["shift"]
        assert pick.changed == (pick.widened is not pick.default)


def test_grouping_picks_refuses_a_default_outside_the_widened_set():
    with pytest.raises(ValueError, match=r"default=\['groups'\] must be within widened"):
        grouping_picks([_row() | {"grouping": "any"}], default=("groups",))


def test_the_committed_flat_runs_change_a_pick_only_where_flat_moves_the_law_least():
    """The GPU runs of every model at HQQ g128's budgets (results/plan_variants_flat_*_gpu.json)."""
    rows = [r for name in ("plan_variants_flat_dit_gpu.json", "plan_variants_flat_unets_gpu.json")
            for r in json.loads((RESULTS / name).read_text())["rows"]]
    picks = grouping_picks(rows)
    assert {p.model for p in picks} == {"dit", "fashion_mnist", "mnist"}
    for pick in picks:
        assert pick.changed == (pick.widened["grouping"] == "flat")
        assert pick.best["dfid"] <= min(pick.default["dfid"], pick.widened["dfid"])
    fig = plot_grouping_picks(picks, peers={(picks[0].model, picks[0].budget): picks[0].best | {"method": "peer"}})
    assert len(fig.axes[0].get_xticks()) == len(picks)


def test_the_committed_budgets_flat_runs_keep_the_default_pick_in_all_but_one_cell():
    """The GPU runs at the committed rows' budgets (results/plan_variants_flat_budgets_*_gpu.json):
    the default grouping's pick is the committed plan row's variant (same dFID within 1e-3
    relative), and "flat" changes it only at the FashionMNIST UNet's 2.5 bits, for the worse."""
    rows = [r for m in ("dit", "fashion_mnist", "mnist")
            for r in json.loads((RESULTS / f"plan_variants_flat_budgets_{m}_gpu.json").read_text())["rows"]]
    picks = grouping_picks(rows)
    assert [(p.model, p.budget) for p in picks] == [("dit", b) for b in (2.0, 2.5, 3.0, 4.0)] + [
        ("fashion_mnist", b) for b in (2.0, 2.5, 3.0, 4.0)] + [("mnist", 2.0)]
    committed = {(m, float(r["budget"])): r for m in ("dit", "fashion_mnist", "mnist")
                 for r in PLAN.read(RESULTS / f"plan_{m}.csv") if r["method"] == "plan"}
    for pick in picks:
        plan_row = committed[(pick.model, pick.budget)]
        assert pick.default["dfid"] == pytest.approx(plan_row["dfid"], rel=1e-3)
    changed = [(p.model, p.budget) for p in picks if p.changed]
    assert changed == [("fashion_mnist", 2.5)]
    (worse,) = [p for p in picks if p.changed]
    assert worse.widened["grouping"] == "flat" and worse.widened["dfid_low"] > worse.default["dfid_high"]
    scored = json.loads((RESULTS / "plan_variants_flat_budgets_mnist_scores_cpu.json").read_text())["rows"]
    for budget in (2.5, 3.0, 4.0):  # the MNIST UNet's other budgets, scored on the CPU: flat moves the law more
        least = {g: min(r["shift"] for r in scored if r["budget"] == budget and r["grouping"] == g) for g in ("any", "flat")}
        assert least["flat"] > 2.5 * least["any"]


def test_in_features_moves_only_the_three_dfid_columns():
    row = _row(dfid=1.0) | {"dfid_low": 0.5, "dfid_high": 1.5, "fid": 7.0, "dfid_inception": 3.0,
                            "dfid_inception_low": 2.0, "dfid_inception_high": 4.0}
    (moved,) = in_features([row], features=INCEPTION)
    assert (moved["dfid"], moved["dfid_low"], moved["dfid_high"]) == (3.0, 2.0, 4.0)
    assert {k: v for k, v in moved.items() if not k.startswith("dfid")} == {
        k: v for k, v in row.items() if not k.startswith("dfid")}
    assert row["dfid"] == 1.0  # the input is not changed
    (same,) = in_features([row], features=CLASSIFIER)
    assert same == row and same is not row


@pytest.mark.parametrize("extra, match", [({}, r"rows\[0\] has no Inception column 'dfid_inception'"),
                                          ({"dfid_inception": None, "dfid_inception_low": None,
                                            "dfid_inception_high": None}, r"rows\[0\] has no Inception measurement")])
def test_in_features_names_a_row_without_the_features(extra, match):
    with pytest.raises(ValueError, match=match):
        in_features([_row() | {"dfid_low": 0.0, "dfid_high": 2.0} | extra], features=INCEPTION)
    with pytest.raises(ValueError, match="features=.* must be INCEPTION or CLASSIFIER"):
        in_features([_row()], features="inception")


def test_the_committed_inception_run_repeats_the_dit_plan_rows_and_finds_a_better_variant():
    """results/plan_variants_inception_dit_gpu.json (every DiT variant at HQQ g128's b4 and b2 bits, both
    feature nets, H100): the default grouping's pick is the committed plan row bit for bit; at 4.3242 bits the
    shift keeps it with "flat" offered, while a flat variant measures below HQQ g128's Inception interval."""
    rows = json.loads((RESULTS / "plan_variants_inception_dit_gpu.json").read_text())["rows"]
    picks = grouping_picks(in_features(rows, features=INCEPTION))
    assert [(p.model, p.budget) for p in picks] == [("dit", 4.3242), ("dit", 2.3369)]
    committed = {(float(r["budget"]), r["method"]): r for r in PLAN.read(RESULTS / "plan_dit.csv")}
    for pick in picks:
        plan_row = committed[(pick.budget, "plan")]
        for key in ("fid", "fid_inception", "bits_per_weight"):
            assert pick.default[key] == plan_row[key]  # bit for bit
    high = picks[0]
    hqq = committed[(4.3242, "hqq:g128")]
    assert not high.changed and high.best["grouping"] == "flat"
    assert high.default["dfid_low"] > hqq["dfid_inception_high"]  # the plan row's resolved loss
    assert high.best["dfid_high"] < hqq["dfid_inception_low"]  # a variant it could have kept wins


def test_the_committed_mnist_inception_run_repeats_the_plan_rows_and_finds_half_quadratic_below_hqq_g128():
    """results/plan_variants_inception_mnist_gpu.json (every MNIST variant at 4 and 4.3424 bits, both feature
    nets, H100; the call stopped before 4.5812): the default grouping's pick is the committed plan row bit for
    bit; the best variant, half_quadratic floor 1 of grouping any, measures below HQQ g128's Inception interval
    at both budgets but more than the pick in the classifier's features (beyond the intervals at 4.3424 bits
    only), and above HQQ g64's b4 row (4.5812 bits per weight), whose Inception FID is below full precision's."""
    run = json.loads((RESULTS / "plan_variants_inception_mnist_gpu.json").read_text())
    assert "--budgets 4,4.3424,4.5812" in run["command"] and len(run["rows"]) == 36
    picks = grouping_picks(in_features(run["rows"], features=INCEPTION))
    assert [(p.model, p.budget) for p in picks] == [("mnist", 4.0), ("mnist", 4.3424)]
    committed = {(float(r["budget"]), r["method"]): r for r in PLAN.read(RESULTS / "plan_mnist.csv")}
    classifier = {r["label"]: r for r in run["rows"] if not r.get("same_as")}
    hqq64 = committed[(4.5812, "hqq:g64")]
    for pick in picks:
        plan_row = committed[(pick.budget, "plan")]
        for key in ("fid", "fid_inception", "dfid_inception_low", "dfid_inception_high", "bits_per_weight"):
            assert pick.default[key] == plan_row[key]  # bit for bit
        hqq = committed[(pick.budget, "hqq:g128")]
        best = pick.best
        assert not pick.changed and (best["family"], best["floor"], best["grouping"]) == ("half_quadratic", 1, "any")
        assert best["dfid_high"] < hqq["dfid_inception_low"] and best["dfid_high"] < pick.default["dfid_low"]
        worse, pick_clf = classifier[best.get("same_as") or best["label"]], classifier[pick.default["label"]]
        assert worse["dfid"] > pick_clf["dfid"]
        assert (worse["dfid_low"] > pick_clf["dfid_high"]) == (pick.budget == 4.3424)  # resolved there only
        assert best["dfid_low"] > hqq64["dfid_inception_high"] and hqq64["dfid_inception_high"] < 0
        assert best["bits_per_weight"] < hqq64["bits_per_weight"]


def test_the_committed_mnist_inception_run_at_hqq_g64s_size_finds_no_variant_reaching_hqq_g64():
    """results/plan_variants_inception_mnist_4.5812_gpu.json (every MNIST variant at 4.5812 bits, HQQ g64's
    4-bit size; the second H100 lease of 2026-12-07): the default grouping's pick is the committed plan row bit
    for bit; the best variant in Inception's features, half_quadratic floor 3 of grouping any, is below HQQ
    g128's interval but above HQQ g64's, as the pick is; in the classifier's features the pick is below HQQ
    g64's interval."""
    run = json.loads((RESULTS / "plan_variants_inception_mnist_4.5812_gpu.json").read_text())
    assert "--budgets 4.5812 " in run["command"] and len(run["rows"]) == 18
    (pick,) = grouping_picks(in_features(run["rows"], features=INCEPTION))
    committed = {(float(r["budget"]), r["method"]): r for r in PLAN.read(RESULTS / "plan_mnist.csv")}
    plan_row, hqq128, hqq64 = (committed[(4.5812, m)] for m in ("plan", "hqq:g128", "hqq:g64"))
    for key in ("fid", "fid_inception", "dfid_inception_low", "dfid_inception_high", "bits_per_weight"):
        assert pick.default[key] == plan_row[key]  # bit for bit
    best = pick.best
    assert not pick.changed and (best["family"], best["floor"], best["grouping"]) == ("half_quadratic", 3, "any")
    assert best["dfid_high"] < hqq128["dfid_inception_low"]
    assert best["dfid_low"] > hqq64["dfid_inception_high"] and pick.default["dfid_low"] > hqq64["dfid_inception_high"]
    assert abs(best["bits_per_weight"] - hqq64["bits_per_weight"]) < 1e-3
    classifier = {r["label"]: r for r in run["rows"] if not r.get("same_as")}
    assert classifier[pick.default.get("same_as") or pick.default["label"]]["dfid_high"] < hqq64["dfid_low"]


def test_a_figure_within_1_of_0_keeps_a_linear_axis_with_inner_ticks():
    """Symmetric-log with linthresh 1 is linear within 1 of 0, and its locator would tick only the axis's ends."""
    small = grouping_picks([_row(shift=0.1, dfid=0.3) | {"grouping": "any", "dfid_low": 0.2, "dfid_high": 0.4},
                            _row(floor=2, shift=0.2, dfid=-0.4) | {"grouping": "flat", "dfid_low": -0.5,
                                                                   "dfid_high": -0.3}])
    ax = plot_grouping_picks(small).axes[0]
    lo, hi = ax.get_ylim()
    inner = [t for t in ax.get_yticks() if lo < t < hi]
    assert ax.get_yscale() == "linear" and len(inner) >= 3
    large = grouping_picks([_row(shift=0.1, dfid=30.0) | {"grouping": "any", "dfid_low": 20.0, "dfid_high": 40.0}])
    assert plot_grouping_picks(large).axes[0].get_yscale() == "symlog"


def test_plot_grouping_picks_draws_each_peer_of_a_cell_with_one_legend_entry_per_method():
    """A cell's peers may be one row or several: each is a band over its interval, and each method is
    named once in the legend, also where the first cell has no peer."""
    picks = grouping_picks([_row(shift=0.1, dfid=3.0) | {"grouping": "any", "dfid_low": 2.0, "dfid_high": 4.0},
                            _row(budget=3.0, shift=0.1, dfid=2.0) | {"grouping": "any", "dfid_low": 1.0,
                                                                     "dfid_high": 3.0}])
    band = {"dfid": 1.0, "dfid_low": 0.5, "dfid_high": 1.5}
    peers = {(picks[1].model, 3.0): [band | {"method": "hqq:g128"}, band | {"method": "hqq:g64", "dfid_low": -2.0}]}
    ax = plot_grouping_picks(picks, peers=peers).axes[0]
    bands = [c for c in ax.collections if c.get_label().endswith("(95% interval)")]
    assert [c.get_label() for c in bands] == ["hqq:g128 (95% interval)", "hqq:g64 (95% interval)"]
    assert bands[0].get_facecolor().tolist() != bands[1].get_facecolor().tolist()
    assert bands[1].get_paths()[0].vertices[:, 1].min() == -2.0
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend.count("hqq:g64 (95% interval)") == 1 and "hqq:g128 (95% interval)" in legend


def test_plot_grouping_picks_refuses_no_picks():
    with pytest.raises(ValueError, match="picks: give at least one"):
        plot_grouping_picks([])
