"""``fmq_theory.results.goal_bounds``: the missed items of goals 1 and 2 against every measured row.

Oracles: the items are exactly the failed verdicts of ``judge_plan_goals`` (same thresholds),
and ``best``/``first`` equal a brute-force scan of the rows, on random models.
"""

import numpy as np
import pytest

from fmq_theory.results.goal_bounds import goal_bounds, goal_bounds_table, plot_goal_bounds
from fmq_theory.results.plan_report import Change, ModelResults, PlanCell, judge_plan_goals


def cell(model, budget, method, bpw, fid, *, fid_fp):
    return PlanCell(model=model, budget=budget, method=method, setting=f"{bpw:g}", bits_per_weight=bpw, fid=fid,
                    change=Change(features="classifier", value=fid - fid_fp, low=None, high=None))


def model(name, fid_fp, cells):
    return ModelResults(model=name, dataset="d", architecture="unet", features="classifier", net="clf",
                        fid_fp=fid_fp, protocol={}, cells=tuple(cell(name, *c, fid_fp=fid_fp) for c in cells))


def test_a_miss_no_row_at_its_bits_meets_and_the_frontier_beyond():
    m = model("m", 10.0, [(3.0, "plan", 3.0, 12.0), (3.0, "hqq", 3.4, 10.9), (4.0, "plan", 4.0, 10.5),
                          (3.0, "nf4", 2.9, 14.0)])
    (b,) = goal_bounds([m])
    assert (b.goal, b.quantity, b.limit, b.budget) == (1, "dFID", 1.0, 3.0)
    assert b.best.method == "plan" and not b.within_reach  # nf4 spends less but does worse
    assert (b.first.method, b.first.bits_per_weight) == ("hqq", 3.4)  # 0.9 <= 1 with the fewest bits
    assert b.value(b.first) == pytest.approx(0.9)


def test_a_peer_within_the_plans_bits_meets_the_goal():
    m = model("m", 10.0, [(2.0, "plan", 2.0, 25.0), (2.0, "gguf", 1.9, 18.0), (2.0, "nf4", 2.0, 19.0)])
    (b,) = goal_bounds([m])
    assert (b.goal, b.quantity, b.limit) == (2, "FID", 20.0)
    assert b.within_reach and b.best.method == "gguf" and b.first.method == "gguf"
    assert "gguf/1.9: 18 (1.900)" in goal_bounds_table([b])


def test_met_goals_and_other_budgets_give_no_item():
    m = model("m", 10.0, [(3.0, "plan", 3.0, 10.5), (2.5, "plan", 2.5, 19.0), (4.0, "plan", 4.0, 30.0)])
    assert goal_bounds([m]) == ()


def test_no_row_meets_the_goal():
    m = model("m", 1.0, [(3.0, "plan", 3.0, 5.0), (4.0, "hqq", 4.2, 3.0)])
    (b,) = goal_bounds([m])
    assert b.first is None and "none measured" in goal_bounds_table([b])


@pytest.mark.parametrize("seed", range(20))
def test_items_are_the_judges_misses_and_the_scans_agree(seed):
    """Random models: the items are judge_plan_goals' failed verdicts of goals 1 and 2 (those with a
    plan row), and best/first are a brute-force scan."""
    rng = np.random.default_rng(seed)
    models = []
    for k in range(3):
        fid_fp = float(rng.uniform(1, 10))
        cells = [(b, "plan", b, float(fid_fp * rng.uniform(0.95, 4))) for b in (2.0, 2.5, 3.0, 4.0) if rng.random() < 0.9]
        cells += [(b, f"peer{j}", float(b + rng.uniform(-0.2, 0.8)), float(fid_fp * rng.uniform(0.95, 4)))
                  for b in (2.0, 2.5, 3.0, 4.0) for j in range(2)]
        models.append(model(f"m{k}", fid_fp, cells))
    bounds = goal_bounds(models)
    g1, g2, _, _ = judge_plan_goals(models)
    want = [v.label for v in g1.failed if v.value is not None] + [v.label for v in g2.failed]
    assert [b.model if b.goal == 1 else f"{b.model} {b.budget:g}" for b in bounds] == want
    for b in bounds:
        m = next(x for x in models if x.model == b.model)
        cheaper = [c for c in m.cells if c.bits_per_weight <= b.plan.bits_per_weight]
        assert b.value(b.best) == min(b.value(c) for c in cheaper)
        meeting = sorted((c.bits_per_weight, b.value(c)) for c in m.cells if b.value(c) <= b.limit)
        assert (None if b.first is None else (b.first.bits_per_weight, b.value(b.first))) == \
            (meeting[0] if meeting else None)


def test_no_models_is_an_error_naming_models():
    with pytest.raises(ValueError, match="models"):
        goal_bounds([])


def test_the_figure_draws_each_missed_goals_limit_in_fid():
    m = model("m", 10.0, [(2.0, "plan", 2.0, 25.0), (3.0, "plan", 3.0, 12.0), (3.0, "hqq", 3.4, 10.9)])
    ok = model("ok", 10.0, [(3.0, "plan", 3.0, 10.5)])
    bounds = goal_bounds([m, ok])
    fig = plot_goal_bounds([m, ok], bounds)
    (ax,) = [a for a in fig.axes if a.get_visible()]  # only the model with a miss
    limits = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--")
    assert limits == pytest.approx([11.0, 20.0])  # goal 1: 10 + 0.1 x 10; goal 2: 2 x 10
    with pytest.raises(ValueError, match="bounds"):
        plot_goal_bounds([ok], bounds)
