"""``fmq_theory.results.sampled_bias``: the sampled prediction's bias against the number of pairs.

Oracles: numpy means and standard deviations of the run's own lists, and the committed CPU run
(``results/sampled_bias_dit_cpu.json``, from ``scripts/sampled_bias_dit_cpu.py``).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from fmq_theory.results.sampled_bias import bias_points, plot_sampled_bias

RUN = Path(__file__).resolve().parents[1] / "results" / "sampled_bias_dit_cpu.json"


def test_points_are_the_means_of_each_size_in_numeric_order():
    rng = np.random.default_rng(0)
    sizes = {str(m): {"value": list(rng.uniform(1, 9, k)), "debiased": list(rng.uniform(1, 9, k))}
             for m, k in ((128, 2), (32, 8), (64, 4))}
    run = {"feature_dim": 64, "rows": [{"method": "a", "setting": "b3", "dfid": 2.5, "by_size": sizes}]}
    points = bias_points(run)
    assert [p.pairs for p in points] == [32, 64, 128] and [p.pairs_per_dim for p in points] == [0.5, 1.0, 2.0]
    for p in points:
        preds = sizes[str(p.pairs)]
        assert p.sets == len(preds["value"])
        assert p.plain == pytest.approx(np.mean(preds["value"])) and p.plain_sd == pytest.approx(np.std(preds["value"]))
        assert p.debiased_ratio == pytest.approx(np.mean(preds["debiased"]) / 2.5)
        assert p.label == "a/b3"
    by = {p.pairs: p for p in points}
    assert by[32].extrapolated is None and by[32].extrapolated_ratio is None
    for m in (64, 128):
        assert by[m].extrapolated == pytest.approx(2 * np.mean(sizes[str(m)]["value"]) - np.mean(sizes[str(m // 2)]["value"]))
        assert by[m].extrapolated_ratio == pytest.approx(by[m].extrapolated / 2.5)


def test_extrapolation_removes_a_bias_in_one_over_m_exactly():
    """Means of the form v + c/M: the two-point extrapolation returns v at every size."""
    run = {"feature_dim": 8, "rows": [{"method": "m", "setting": "s", "dfid": 3.0,
                                       "by_size": {str(m): {"value": [3.0 + 40.0 / m], "debiased": [3.0]}
                                                   for m in (4, 8, 16, 24)}}]}
    extra = {p.pairs: p.extrapolated for p in bias_points(run)}
    assert extra[4] is None and extra[24] is None  # no 2 in the run; 12 not in it
    assert extra[8] == pytest.approx(3.0) and extra[16] == pytest.approx(3.0)


@pytest.mark.parametrize("row, match", [
    ({"dfid": 0.0, "by_size": {"2": {"value": [1.0], "debiased": [1.0]}}}, "must be > 0"),
    ({"dfid": 1.0, "by_size": {"2": {"value": [], "debiased": []}}}, "size 2"),
    ({"dfid": 1.0, "by_size": {"2": {"value": [1.0], "debiased": [1.0, 2.0]}}}, "size 2"),
])
def test_bad_rows_are_named(row, match):
    with pytest.raises(ValueError, match=match):
        bias_points({"feature_dim": 4, "rows": [{"method": "m", "setting": "s"} | row]})


def test_committed_run_the_correction_moves_every_mean_toward_the_measurement():
    """On the DiT in the classifier's features: the plain prediction's excess falls as the pairs
    grow, and at every number of pairs the debiased mean is nearer the measured change."""
    points = bias_points(json.loads(RUN.read_text()))
    for label in {p.label for p in points}:
        mine = [p for p in points if p.label == label]
        excess = [p.plain_ratio - 1 for p in mine]
        assert all(a > b > 0 for a, b in zip(excess, excess[1:]))
        assert all(abs(p.debiased_ratio - 1) < abs(p.plain_ratio - 1) for p in mine)


def test_committed_run_the_extrapolation_is_nearer_than_the_plain_mean():
    """Wherever the run holds M/2, the extrapolation from M/2 and M is nearer the measured change
    than the plain mean at M."""
    points = [p for p in bias_points(json.loads(RUN.read_text())) if p.extrapolated is not None]
    assert points
    assert all(abs(p.extrapolated_ratio - 1) < abs(p.plain_ratio - 1) for p in points)


def test_plot_draws_every_estimate_per_setting():
    points = bias_points(json.loads(RUN.read_text()))
    fig = plot_sampled_bias(points)
    # one legend entry per setting (its colour) and one per estimate drawn (its marker)
    kinds = 2 + any(p.paired is not None for p in points) + any(p.extrapolated is not None for p in points)
    assert len(fig.legends[0].get_texts()) == len({p.label for p in points}) + kinds
    # every estimate of every setting is drawn: a line of markers per setting and estimate
    lines = [ln for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) and ln.get_marker() not in ("None", "_")]
    assert len(lines) >= len({p.label for p in points}) * kinds
    with pytest.raises(ValueError, match="points"):
        plot_sampled_bias(())


def test_paired_means_and_their_extrapolation():
    """The paired difference's mean and spread over the sets, and 2 P_M - P_{M/2} of its means; a
    run without it (the committed classifier run before it) leaves them None; a size whose paired
    list does not match its plain one is refused."""
    run = {"feature_dim": 8, "rows": [{"method": "m", "setting": "b4", "dfid": 2.0, "by_size": {
        "4": {"value": [6.0, 4.0], "debiased": [5.0, 3.0], "paired": [3.0, 2.0]},
        "8": {"value": [4.0], "debiased": [3.0], "paired": [2.2]}}}]}
    small, big = bias_points(run)
    assert (small.paired, small.paired_sd, small.paired_extrapolated) == (2.5, 0.5, None)
    assert big.paired == 2.2 and big.paired_extrapolated == pytest.approx(2 * 2.2 - 2.5)
    assert big.paired_ratio == pytest.approx(1.1) and big.paired_extrapolated_ratio == pytest.approx(0.95)
    del run["rows"][0]["by_size"]["4"]["paired"]
    assert bias_points(run)[1].paired_extrapolated is None
    run["rows"][0]["by_size"]["8"]["paired"] = [1.0, 2.0]
    with pytest.raises(ValueError, match="paired"):
        bias_points(run)
