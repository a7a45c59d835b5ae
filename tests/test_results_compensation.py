"""``fmq_theory.results.compensation``: the probes read as written, and drawn."""

import json
from pathlib import Path

import matplotlib
import pytest

from fmq_theory.results.compensation import plot_compensation, plot_two_way, read_compensation_probes, two_way_cells
from fmq_theory.results.plan_report import CLASSIFIER, INCEPTION, model_results
from fmq_theory.results.schema import PLAN

matplotlib.use("Agg")
PROBES = Path(__file__).resolve().parent.parent / "results" / "probes"


def test_the_committed_probes_read_as_written():
    probes = read_compensation_probes(PROBES)
    files = sorted(PROBES.glob("plan_gptq_*.json"))
    assert len(probes) == len(files) >= 3
    for path in files:
        run = json.loads(path.read_text())
        p = next(p for p in probes if (p.model, p.budget) == (run["model"], float(run["budget"])))
        for name in ("rtn", "compensated"):
            arm, raw = getattr(p, name), run["arms"][name]
            assert (arm.dfid, arm.low, arm.high, arm.output_error) == (
                raw["dfid"], raw["dfid_low"], raw["dfid_high"], raw["output_weighted_error"])
        assert p.bits_per_weight == run["bits_per_weight"] and p.samples == run["samples"]
        assert p.error_ratio == raw["output_weighted_error"] / run["arms"]["rtn"]["output_weighted_error"]
        c, r = p.compensated, p.rtn
        assert (c.shift, r.shift) == (raw.get("shift"), run["arms"]["rtn"].get("shift"))
        if c.shift is not None:
            assert p.shift_picks == ("compensated" if c.shift < r.shift else "rtn")
        assert p.verdict == ("lower" if c.high < r.low else "higher" if c.low > r.high else "unresolved")


def test_the_plot_draws_both_arms_of_every_probe():
    probes = read_compensation_probes(PROBES)
    fig = plot_compensation(probes, labels={"dit": "DiT"})
    ax = fig.axes[0]
    assert len(ax.containers) == 2 and len(ax.get_yticklabels()) == len(probes)
    assert any(t.get_text().startswith("DiT,") for t in ax.get_yticklabels())
    with pytest.raises(ValueError, match="probes"):
        plot_compensation([])


RESULTS = PROBES.parent


def _two_way(name, features):
    return (model_results(PLAN.read(RESULTS / f"plan_{name}_compensated.csv"), features=features),
            model_results(PLAN.read(RESULTS / f"plan_{name}.csv"), features=features))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("features", [CLASSIFIER, INCEPTION], ids=["classifier", "inception"])
def test_the_two_way_rows_pair_with_the_committed_plan_at_each_budget(name, features):
    two_way, committed = _two_way(name, features)
    cells = two_way_cells(two_way, committed)
    rows = {r["budget"]: r for r in PLAN.read(RESULTS / f"plan_{name}_compensated.csv") if r["method"] == "plan"}
    old = {r["budget"]: r for r in PLAN.read(RESULTS / f"plan_{name}.csv") if r["method"] == "plan"}
    assert [c.budget for c in cells] == sorted(rows) and len(cells) >= 1
    for c in cells:
        new_row, old_row = rows[c.budget], old[c.budget]
        assert (c.two_way.value, c.two_way.low, c.two_way.high) == (
            new_row[features.dfid], new_row[features.low], new_row[features.high])
        assert (c.committed.value, c.committed.low, c.committed.high) == (
            old_row[features.dfid], old_row[features.low], old_row[features.high])
        assert c.compensated == new_row["setting"].endswith("compensated codes")
        assert c.committed_setting == old_row["setting"] and not c.committed_setting.endswith("compensated codes")
        assert c.verdict == ("lower" if c.two_way.high < c.committed.low else
                             "higher" if c.two_way.low > c.committed.high else "unresolved")
    # the same noise: both runs' full-precision FIDs agree
    assert two_way.fid_fp == pytest.approx(committed.fid_fp, rel=1e-5)


def test_two_way_cells_refuse_what_does_not_compare():
    two_way, committed = _two_way("mnist", CLASSIFIER)
    with pytest.raises(ValueError, match="features"):
        two_way_cells(two_way, _two_way("mnist", INCEPTION)[1])
    with pytest.raises(ValueError, match="checkpoint_sha256"):
        two_way_cells(two_way, _two_way("fashion_mnist", CLASSIFIER)[1])


def test_the_two_way_plot_draws_both_plans_and_the_kept_codes():
    panels = [(name, two_way_cells(*_two_way(name, INCEPTION))) for name in ("mnist", "fashion_mnist")]
    fig = plot_two_way(panels + [("empty", ())])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    for ax, (_, cells) in zip(fig.axes, panels):
        assert len(ax.containers) == 2
        kept = [line for line in ax.lines if line.get_linestyle() == "None" and line.get_marker() == "o"
                and len(line.get_xdata()) == sum(c.compensated for c in cells)]
        assert kept or not any(c.compensated for c in cells)
    with pytest.raises(ValueError, match="panels"):
        plot_two_way([("empty", ())])
