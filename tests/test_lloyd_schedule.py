"""``benchmarks/lloyd_schedule.py``: the windows it counts, and the file it writes.

The flattened schedule of the Triton DP kernel rests on one property of the divide and
conquer: the windows of one depth's m nodes overlap in at most one split, so laid end to end
they hold at most n + m candidates (n the row length).  Checked here on every layer and depth
of rows with and without ties, against the windows read back from the torch DP's own splits.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import lloyd_schedule  # noqa: E402


@pytest.mark.parametrize("n, bits, seed", [(50, 2, 0), (200, 4, 1), (1000, 4, 2), (333, 5, 3)])
def test_a_depths_windows_hold_at_most_n_plus_m_candidates(n, bits, seed):
    x = np.random.default_rng(seed).standard_normal(n)
    layers = lloyd_schedule.windows(x, 2**bits)
    assert len(layers) == 2**bits - 2
    for cells, layer in enumerate(layers, start=2):
        assert layer[0].tolist() == [n - cells + 1]  # node n searches every split cells - 1 .. n - 1
        for widths in layer:
            assert (widths >= 0).all()
            assert int(widths.sum()) <= n + widths.size


def test_the_counts_of_one_depth():
    widths = np.array([0, 3, 130, 1, 1, 7])
    assert lloyd_schedule.previous_steps(widths) == 130  # 6 nodes: one lane each, the widest window
    assert lloyd_schedule.previous_steps(widths[:4]) == 0 + 1 + 2 + 1  # 4 nodes: 128 candidates at a time
    assert lloyd_schedule.flat_steps(widths, 16) == (9 + 2, 9)  # 142 candidates in 9 steps, 1 + 1 for the nodes


def test_the_script_writes_its_rows(tmp_path):
    out = tmp_path / "schedule.json"
    assert lloyd_schedule.main(["--lengths", "300", "--tiles", "64", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["schedule"], r["lanes"]) for r in rows] == [("previous", 128), ("flattened", 64)]
    assert all(0 < r["lane_share"] <= 1 for r in rows)
    assert rows[1]["lane_share"] > rows[0]["lane_share"]
