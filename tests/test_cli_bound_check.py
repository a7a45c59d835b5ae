"""End-to-end ``fmq bound-check`` on the CPU with the committed MNIST checkpoint (tiny settings).

The GPU run behind ``results/bound_check_*.csv`` uses 5000 paired samples; here 24 samples
and 4 Euler-midpoint steps check the plumbing and the inequalities that hold at any sample
count: the certified FID bound is above the measured FID of the quantized samples (triangle
inequality + Gelbrich on the empirical moments), the trajectory certificate is above the
paired distance it certifies, and the csv holds every documented column.
"""

from __future__ import annotations

import csv

import pytest

from fmq_theory.cli import main
from fmq_theory.results.schema import BOUND_CHECK


@pytest.mark.slow
def test_bound_check_cpu_end_to_end(tmp_path, capsys):
    out, fig = tmp_path / "bc.csv", tmp_path / "bc.png"
    rc = main(["bound-check", "--dataset", "mnist", "--samples", "24", "--cert-samples", "4", "--pred-samples", "6",
               "--gain-samples", "2", "--draws", "1", "--steps", "4", "--bits", "6", "--methods", "uniform_minmax",
               "--n-boot", "10", "--batch-size", "24", "--out", str(out), "--figure", str(fig),
               "--scheduler", "none"])
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1 and tuple(rows[0]) == BOUND_CHECK.names
    r = {k: (float(v) if k not in ("dataset", "method", "solver", "feature_net", "device", "inside_noise",
                                    "dominant_tensors") else v) for k, v in rows[0].items()}
    assert (r["method"], r["bits"], r["samples"], r["cert_samples"]) == ("uniform_minmax", 6, 24, 4)
    # certified FID bound: fid_fp + certified_bound >= fid_q (holds for the empirical moments at any n)
    assert r["fid_fp"] + r["certified_bound"] >= r["fid_q"] - 1e-9
    assert r["fid_fp"] + r["certified_bound_fits"] >= r["fid_q"] - 1e-9
    assert r["certified_bound"] >= r["certified_bound_fits"] - 1e-9  # Gelbrich: fd_paired >= fd_between
    assert r["certified_w2"] >= r["measured_w2_paired_cert"]
    assert r["fd_paired"] >= r["fd_between"] - 1e-9
    for key in ("predicted_dfid", "predicted_dfid_actual", "dither_dfid", "predicted_sample_msd_actual"):
        assert r[key] == r[key], key  # computed, not nan
    assert fig.stat().st_size > 10_000
    assert "uniform_minmax b=6" in capsys.readouterr().out


@pytest.mark.parametrize("argv, flag", [
    (["--samples", "1"], "--samples"),
    (["--cert-samples", "1"], "--cert-samples"),
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
