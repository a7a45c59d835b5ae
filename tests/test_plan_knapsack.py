"""The exact multiple-choice knapsack (fmq_theory.plan.knapsack) against brute force."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fmq_theory.plan.knapsack import _undominated, brute_force_mckp, solve_mckp

item = st.lists(st.tuples(st.integers(0, 12), st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.25, 7.0, 10.0])),
                min_size=1, max_size=4)


@given(st.lists(item, min_size=1, max_size=5), st.integers(0, 40))
@example([[(1, 9.0), (2, 4.0), (4, 1.0)], [(1, 5.0), (3, 0.0)]], 5)
@example([[(0, 1.0), (0, 1.0)], [(3, 0.0), (3, 0.0)]], 3)
def test_optimal_against_brute_force(items, slack):
    costs = [np.array([c for c, _ in it]) for it in items]
    values = [np.array([v for _, v in it]) for it in items]
    budget = sum(int(c.min()) for c in costs) + slack
    sol = solve_mckp(costs, values, budget=budget)
    _, _, best = brute_force_mckp(costs, values, budget=budget)
    assert sol.cost <= budget
    assert sol.cost == sum(int(c[j]) for c, j in zip(costs, sol.choice))
    assert sol.value == pytest.approx(sum(float(v[j]) for v, j in zip(values, sol.choice)), abs=1e-12)
    assert sol.value == pytest.approx(best, rel=1e-12, abs=1e-12)
    assert sol.dual_bound <= sol.value + 1e-9
    for c, v, j in zip(costs, values, sol.choice):  # never an option another one dominates
        assert not any(_dominates(c, v, k, j) for k in range(c.size))


def _dominates(c, v, k, j):
    """Option ``k`` dominates option ``j``: no dearer and no worse, and either better in one or equal
    in both with the smaller index (of equal options the first is kept)."""
    return k != j and c[k] <= c[j] and v[k] <= v[j] and ((c[k], v[k]) != (c[j], v[j]) or k < j)


@given(item)
@example([(3, 1.0), (3, 1.0), (2, 1.0), (5, 0.0)])
def test_undominated_options_against_their_definition(options):
    c = np.array([x for x, _ in options], dtype=np.int64)
    v = np.array([y for _, y in options])
    expected = [j for j in range(c.size) if not any(_dominates(c, v, k, j) for k in range(c.size))]
    kept = _undominated(c, v)
    assert sorted(kept.tolist()) == expected
    assert np.all(np.diff(c[kept]) > 0)  # ascending cost, one option per cost


def test_random_real_valued_instances():
    rng = np.random.default_rng(0)
    for _ in range(200):
        t = int(rng.integers(1, 6))
        costs = [rng.integers(0, 30, size=int(rng.integers(1, 5))) for _ in range(t)]
        values = [rng.random(c.size) * 10 ** rng.uniform(-3, 3) for c in costs]
        budget = int(rng.integers(sum(c.min() for c in costs), sum(c.max() for c in costs) + 2))
        assert solve_mckp(costs, values, budget=budget).value == pytest.approx(
            brute_force_mckp(costs, values, budget=budget)[2], rel=1e-12, abs=1e-15)


def test_budget_below_cheapest_is_refused():
    with pytest.raises(ValueError, match="budget=1 is below the cheapest choice, 2"):
        solve_mckp([np.array([2, 3])], [np.array([1.0, 0.0])], budget=1)


@pytest.mark.parametrize("costs,values,match", [
    ([np.array([1.5])], [np.array([1.0])], "non-negative integers"),
    ([np.array([1])], [np.array([-1.0])], "finite and >= 0"),
    ([np.array([1, 2])], [np.array([1.0])], "one length"),
])
def test_bad_input_is_refused(costs, values, match):
    with pytest.raises(ValueError, match=match):
        solve_mckp(costs, values, budget=5)
