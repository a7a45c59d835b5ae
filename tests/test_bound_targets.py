"""Tests of :mod:`fmq_theory.results.targets` on hand-made rows and on the committed tables."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fmq_theory.results.schema import BOUND_CHECK
from fmq_theory.results.targets import summarize_bound_check

ROOT = Path(__file__).resolve().parents[1]


def _row(method, bits, dfid, low, high, **cols):
    base = {"dataset": "d", "method": method, "bits": str(bits), "measured_dfid": str(dfid), "dfid_low": str(low),
            "dfid_high": str(high), "certified_dfid": "nan", "certified_dfid_fits": "nan",
            "predicted_dfid": "nan", "predicted_dfid_actual": "nan", "dither_dfid": "nan"}
    return base | {k: str(v) for k, v in cols.items()}


def test_classification_and_targets():
    rows = [
        _row("a", 2, 10.0, 8.0, 12.0, certified_dfid=50, certified_dfid_fits=20, predicted_dfid=31,
             predicted_dfid_actual=4, dither_dfid=3.4),
        _row("a", 4, 1.0, 0.5, 1.5, certified_dfid=10, certified_dfid_fits=2, predicted_dfid=1 / 3,
             predicted_dfid_actual=3.0, dither_dfid=-1),
        _row("a", 6, -0.5, -0.7, -0.2, certified_dfid=3, certified_dfid_fits=1, predicted_dfid=0.2,
             predicted_dfid_actual=-0.6, dither_dfid=-2),
        _row("a", 8, 0.01, -0.1, 0.1, certified_dfid=1, certified_dfid_fits=1, predicted_dfid=0.01,
             predicted_dfid_actual=0.01, dither_dfid=0.01),
    ]
    s = summarize_bound_check(rows)
    assert s.resolved_positive == ("d a b=2", "d a b=4")
    assert s.resolved_negative == ("d a b=6",)
    assert s.inside_noise == ("d a b=8",)
    cert = s.targets["certified_dfid"]
    assert cert.judged == ("d a b=2", "d a b=4") and cert.ratios == (5.0, 10.0)  # 10 is met: <= 10
    assert cert.met == ("d a b=2", "d a b=4") and cert.missed == ()
    pred = s.targets["predicted_dfid"]  # judged on the negative cell too: a positive prediction misses it
    assert pred.judged == ("d a b=2", "d a b=4", "d a b=6")
    assert pred.met == ("d a b=4",) and pred.missed == ("d a b=2", "d a b=6")
    assert s.targets["predicted_dfid_actual"].met == ("d a b=2", "d a b=4", "d a b=6")
    assert s.targets["dither_dfid"].missed == ("d a b=4", "d a b=6")  # wrong sign at b=4; 4 x at b=6


@pytest.mark.parametrize("kwargs, match", [
    ({"certified_max": 1.0}, "certified_max"),
    ({"predicted_band": (0.0, 3.0)}, "predicted_band"),
    ({"predicted_band": (2.0, 3.0)}, "predicted_band"),
])
def test_bad_targets_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        summarize_bound_check([_row("a", 2, 1, 0.5, 1.5)], **kwargs)


def test_bad_rows():
    with pytest.raises(ValueError, match="rows is empty"):
        summarize_bound_check([])
    with pytest.raises(ValueError, match="finite"):
        summarize_bound_check([_row("a", 2, "nan", 0.5, 1.5)])


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_committed_tables_are_complete(dataset):
    # The grid: equal_mass, lloyd_max and uniform_minmax at b = 2..8, every column filled in.
    rows = BOUND_CHECK.read(ROOT / "results" / f"bound_check_{dataset}.csv")
    assert tuple(rows[0]) == BOUND_CHECK.names
    assert {(r["method"], int(r["bits"])) for r in rows} == {
        (m, b) for m in ("equal_mass", "lloyd_max", "uniform_minmax") for b in range(2, 9)}
    for r in rows:
        assert int(r["samples"]) >= 5000 and r["device"].startswith("NVIDIA")
        assert r["trajectory_samples"] in (0, 32)
        for key in ("measured_dfid", "certified_dfid", "certified_dfid_fits", "predicted_dfid",
                    "predicted_dfid_actual", "dither_dfid", "estimated_naive_dfid", "switch_rate", "certified_w2",
                    "certified_sqrt_fid_change", "certified_sqrt_fid_change_fits"):
            assert math.isfinite(float(r[key])), (r["method"], r["bits"], key)
        # the certified FID bound is a bound on this very measurement (triangle + Gelbrich)
        assert float(r["certified_dfid"]) >= float(r["measured_dfid"])
        assert float(r["fd_paired"]) >= float(r["fd_between"])
        assert abs(r["measured_sqrt_fid_change"]) <= r["certified_sqrt_fid_change_fits"] + 1e-9
        assert r["certified_w2"] >= max(r["measured_w2_paired_clipped"], r["certified_w2_floor"])
        assert (r["certified_w2_n"], r["certified_w2_delta"]) == (r["samples"], pytest.approx(0.05))
        if r["trajectory_samples"] > 0:
            assert r["estimated_w2_trajectory"] >= r["measured_w2_paired_trajectory"]
        else:
            assert r["estimated_w2_trajectory"] is None
    s = summarize_bound_check(rows)
    assert len(s.resolved_positive) + len(s.resolved_negative) + len(s.inside_noise) == 21
