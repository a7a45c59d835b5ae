"""``fmq_theory.results.compensation``: the probes read as written, and drawn."""

import json
from pathlib import Path

import matplotlib
import pytest

from fmq_theory.results.compensation import plot_compensation, read_compensation_probes

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
