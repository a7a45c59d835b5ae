"""``fmq_theory.results.plan_envelope``: the plan chosen across budgets by its sampled prediction.

Oracles: a brute-force scan of every plan row for each budget on random models (hypothesis),
``itertools.combinations`` for the inversion count, and the committed FashionMNIST results,
where the plan is not monotone in its budget.
"""

import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fmq_theory.results.plan_envelope import (
    budget_inversions, plan_envelope, plan_envelope_table, plot_plan_envelope, with_envelope,
)
from fmq_theory.results.plan_report import Change, ModelResults, PlanCell, judge_plan_goals, read_plan_results

RESULTS = Path(__file__).resolve().parents[1] / "results"


def cell(budget, fid, predicted, *, method="plan", bpw=None, low=None, high=None):
    return PlanCell(model="m", budget=budget, method=method, setting="s",
                    bits_per_weight=budget if bpw is None else bpw, fid=fid,
                    change=Change(features="classifier", value=fid - 1.0, low=low, high=high), predicted=predicted)


def model(cells):
    return ModelResults(model="m", dataset="d", architecture="unet", features="classifier", net="clf", fid_fp=1.0,
                        protocol={}, cells=tuple(cells))


rows = st.lists(st.tuples(st.sampled_from([2.0, 2.25, 2.5, 3.0, 3.5, 4.0]), st.floats(-0.3, 0.3),
                          st.floats(1.0, 100.0), st.one_of(st.none(), st.floats(-1.0, 100.0))),
                min_size=1, max_size=6, unique_by=lambda r: r[0])


@given(rows)
def test_the_pick_is_the_least_prediction_within_the_plans_bits(spec):
    """Against a scan of every plan row: the pick spends no more bits than the plan, has the least
    prediction among those rows, is the plan on a tie; peers and rows without a prediction are
    never picked, and every budget with a predicted plan has one cell."""
    cells = [cell(b, fid, pred, bpw=b + shift) for b, shift, fid, pred in spec]
    peers = [cell(b, 0.5, -5.0, method="hqq", bpw=b - 1) for b, *_ in spec]
    env = plan_envelope(model(cells + peers))
    predicted = [c for c in cells if c.predicted is not None]
    assert [e.budget for e in env] == sorted(c.budget for c in predicted)
    for e in env:
        within = [c for c in predicted if c.bits_per_weight <= e.plan.bits_per_weight]
        assert e.candidates == len(within)
        assert e.pick in within and e.pick.predicted == min(c.predicted for c in within)
        assert e.pick.bits_per_weight <= e.plan.bits_per_weight
        assert e.changed == (e.pick.predicted < e.plan.predicted)


@given(st.lists(st.floats(-10.0, 10.0), max_size=8))
def test_inversions_count_every_later_larger_pair(fids):
    assert budget_inversions(fids) == sum(b > a for a, b in itertools.combinations(fids, 2))


def test_the_envelope_is_monotone_in_the_prediction():
    """With plan bits increasing in the budget, the pick's prediction never rises with the budget."""
    env = plan_envelope(model([cell(2.0, 9.0, 8.0), cell(2.5, 15.0, 13.0), cell(3.0, 4.0, 3.0), cell(3.5, 5.0, 4.0),
                               cell(4.0, 1.1, 0.1)]))
    assert [e.pick.budget for e in env] == [2.0, 2.0, 3.0, 3.0, 4.0]
    assert all(a.pick.predicted >= b.pick.predicted for a, b in zip(env, env[1:]))
    assert budget_inversions([e.plan.fid for e in env]) == 2 and budget_inversions([e.pick.fid for e in env]) == 0


def test_resolved_needs_disjoint_intervals():
    worse = cell(2.5, 15.0, 13.0, low=13.0, high=15.0)
    env = plan_envelope(model([cell(2.0, 9.0, 8.0, low=7.0, high=9.0), worse]))
    assert env[1].changed and env[1].resolved and env[1].fid_change == pytest.approx(-6.0)
    env = plan_envelope(model([cell(2.0, 9.0, 8.0, low=7.0, high=13.5), worse]))
    assert env[1].changed and not env[1].resolved
    env = plan_envelope(model([cell(2.0, 9.0, 8.0), worse]))  # no intervals
    assert not env[1].resolved and not env[0].resolved


def test_no_prediction_no_cell():
    assert plan_envelope(model([cell(2.0, 9.0, None), cell(3.0, 4.0, None)])) == ()


def test_committed_fashion_mnist_plan_made_monotone():
    """The committed FashionMNIST plan rows, all 138 with Inception's FID and so read in its features:
    FID rises with the budget in one pair (3.6206 -> 3.8324), the envelope's in none; the pick at
    3.8324 is the plan made for 3.6206, a resolved improvement."""
    m = read_plan_results(RESULTS, models=["fashion_mnist"])["fashion_mnist"]
    env = plan_envelope(m)
    assert budget_inversions([e.plan.fid for e in env]) == 1
    assert budget_inversions([e.pick.fid for e in env]) == 0
    changed = {e.budget: e for e in env if e.changed}
    assert sorted(changed) == [3.8324]
    assert changed[3.8324].resolved and changed[3.8324].fid_change < 0
    assert changed[3.8324].pick.budget == 3.6206
    table = plan_envelope_table(env)
    assert table.count("\n") == 2 and "fashion\\_mnist | 3.8324 |" in table


def test_with_envelope_swaps_only_predicted_plan_rows_and_is_judged_so():
    """The pick's measurements replace the plan row at its budget; peers and a plan row without a
    prediction stay; judge_plan_goals then sets the pick against the peers of that budget."""
    peer = cell(2.5, 12.0, 11.0, method="hqq", bpw=2.5)
    m = model([cell(2.0, 9.0, 8.0), cell(2.5, 15.0, 13.0), peer, cell(3.0, 4.0, None)])
    swapped = with_envelope(m)
    assert [(c.method, c.budget, c.bits_per_weight, c.fid) for c in swapped.cells] == [
        ("plan", 2.0, 2.0, 9.0), ("plan", 2.5, 2.0, 9.0), ("hqq", 2.5, 2.5, 12.0), ("plan", 3.0, 3.0, 4.0)]
    before, after = (judge_plan_goals([x])[2].verdicts for x in (m, swapped))
    assert [v.status for v in before] == ["loss, not resolved"] and [v.status for v in after] == ["win, not resolved"]


def test_plot_draws_one_panel_per_model_and_checks_its_arguments():
    env = plan_envelope(model([cell(2.0, 9.0, 8.0), cell(2.5, 15.0, 13.0)]))
    fig = plot_plan_envelope([env, env, env], fid_fp=[1.0, 1.0, 1.0])
    assert sum(ax.get_visible() for ax in fig.axes) == 3
    with pytest.raises(ValueError, match="envelopes"):
        plot_plan_envelope([env, ()], fid_fp=[1.0, 1.0])
    with pytest.raises(ValueError, match="fid_fp"):
        plot_plan_envelope([env], fid_fp=[1.0, 2.0])
