"""End-to-end ``fmq bound-check`` on the CPU with the committed MNIST checkpoint (tiny settings).

The GPU run behind ``results/bound_check_*.csv`` uses 5000 paired samples; here 24 samples
and 4 Euler-midpoint steps check the plumbing and the inequalities that hold at any sample
count: the certified FID bounds are above the measured FID change and sqrt(FID) change of the
quantized samples (triangle inequality + Gelbrich on the empirical moments), the certified W2 is
above the paired distance and the floor, the trajectory estimate is above the paired distance
it is run on, skipped columns are empty (never NaN), and the csv holds every documented column.
"""

from __future__ import annotations

import csv
import math

import pytest

from fmq_theory.cli import main
from fmq_theory.results.schema import BOUND_CHECK


@pytest.mark.slow
def test_bound_check_cpu_end_to_end(tmp_path, capsys):
    out, fig = tmp_path / "bc.csv", tmp_path / "bc.png"
    rc = main(["bound-check", "--dataset", "mnist", "--samples", "24", "--trajectory-samples", "4", "--pred-samples",
               "6", "--gain-samples", "2", "--draws", "1", "--steps", "4", "--bits", "6,8", "--methods",
               "uniform_minmax", "--trajectory-bits", "6", "--n-boot", "10", "--batch-size", "24", "--out", str(out),
               "--figure", str(fig), "--scheduler", "none"])
    assert rc == 0
    text = list(csv.DictReader(out.open()))
    assert len(text) == 2 and tuple(text[0]) == BOUND_CHECK.names
    assert not any(v.lower() == "nan" for row in text for v in row.values())  # skipped columns are empty
    rows = {r["bits"]: r for r in BOUND_CHECK.read(out)}
    r, skipped = rows[6], rows[8]
    assert (r["method"], r["bits"], r["samples"], r["trajectory_samples"]) == ("uniform_minmax", 6, 24, 4)
    # the trajectory estimate runs on --trajectory-bits only; elsewhere its columns are empty
    assert skipped["trajectory_samples"] == 0 and skipped["estimated_w2_trajectory"] is None
    assert r["estimated_w2_trajectory"] >= r["measured_w2_paired_trajectory"]
    for row in (r, skipped):
        # certified FID bounds: hold for the empirical moments at any n (triangle inequality + Gelbrich)
        assert row["fid_fp"] + row["certified_dfid"] >= row["fid_q"] - 1e-9
        assert row["fid_fp"] + row["certified_dfid_fits"] >= row["fid_q"] - 1e-9
        assert row["certified_dfid"] >= row["certified_dfid_fits"] - 1e-9  # Gelbrich: fd_paired >= fd_between
        assert abs(row["measured_sqrt_fid_change"]) <= row["certified_sqrt_fid_change_fits"] + 1e-9
        assert row["certified_sqrt_fid_change_fits"] <= row["certified_sqrt_fid_change"] + 1e-9
        assert row["fd_paired"] >= row["fd_between"] - 1e-9
        # certified W2: above the paired cost of the clipped samples, never below the floor, with its level
        assert row["certified_w2"] >= max(row["measured_w2_paired_clipped"], row["certified_w2_floor"])
        assert row["measured_w2_paired_clipped"] <= row["measured_w2_paired"] + 1e-9  # clipping is 1-Lipschitz
        assert (row["certified_w2_delta"], row["certified_w2_n"], row["certified_w2_range_sq"]) == (
            pytest.approx(0.05), 24, 28 * 28 * 4.0)
        for key in ("predicted_dfid", "predicted_dfid_actual", "dither_dfid", "predicted_sample_msd_actual",
                    "lip_features_upper", "lipschitz_x_lower", "lipschitz_theta_lower"):
            assert row[key] is not None and math.isfinite(row[key]), key
    assert fig.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "uniform_minmax b=6" in printed and "uniform_minmax b=8" in printed


@pytest.mark.parametrize("argv, flag", [
    (["--samples", "1"], "--samples"),
    (["--trajectory-samples", "1"], "--trajectory-samples"),
    (["--methods", "equal_mass,nope"], "--methods"),
    (["--steps", "0"], "--steps"),
])
def test_bad_arguments_are_refused_naming_the_flag(argv, flag, tmp_path, capsys):
    """Refused before any work starts, with one line that names the flag (no file is written)."""
    out = tmp_path / "bc.csv"
    assert main(["bound-check", "--dataset", "mnist", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fmq bound-check: error: ") and flag in err, err
    assert not out.exists()
