"""Tests of ``fmq asymptotics`` and ``fmq bound``."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from fmq_theory import __version__
from fmq_theory.theory import symbolic
from fmq_theory.theory import fid_chain as chain
from fmq_theory.cli import main
from fmq_theory.vocab import SYMBOLIC_METHODS


def _run(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("law,extra", [("gaussian", []), ("laplace", []), ("student-t", ["--nu", "3"]),
                                       ("gen-gaussian", ["--beta", "1.5"])])
def test_asymptotics_json(capsys, law, extra):
    rc, out, _ = _run(capsys, ["asymptotics", "--law", law, *extra, "--at-bits", "4,8", "--format", "json"])
    assert rc == 0
    doc = json.loads(out)
    assert doc["version"] == __version__ and doc["command"].startswith("fmq asymptotics")
    assert doc["parameters"]["law"] == law and doc["parameters"]["n_uniform_minmax"] == 2304
    rows = doc["result"]["asymptotics"]
    assert [r["method"] for r in rows] == list(SYMBOLIC_METHODS)
    kw = {"nu": 3.0} if law == "student-t" else {"beta": 1.5} if law == "gen-gaussian" else {}
    for r in rows:
        f = symbolic.asymptotic_form(law, r["method"], **kw)
        assert r["constant_value"] == pytest.approx(f.constant_value, rel=1e-15)
        assert r["exponent_limit"] == pytest.approx(f.exponent_limit, rel=1e-15)
        assert r["exponent_b8"] == pytest.approx(f.effective_exponent(8), rel=1e-15)
        assert r["assumptions"]
    assert doc["result"]["comparison"] == []


def test_asymptotics_table_csv_latex(capsys):
    rc, out, _ = _run(capsys, ["asymptotics", "--law", "laplace"])
    assert rc == 0 and __version__ in out.splitlines()[0] and "equal_mass" in out
    rc, out, _ = _run(capsys, ["asymptotics", "--law", "laplace", "--format", "csv"])
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO("".join(l for l in out.splitlines(keepends=True) if l[0] != "#"))))
    assert {r["method"] for r in rows} == set(SYMBOLIC_METHODS)
    lm = next(r for r in rows if r["method"] == "lloyd_max")
    assert float(lm["constant_value"]) == pytest.approx(4.5, rel=1e-15)
    rc, out, _ = _run(capsys, ["asymptotics", "--law", "laplace", "--format", "latex"])
    assert rc == 0 and r"\begin{tabular}" in out and r"uniform\_mse" in out
    assert r"\toprule" in out and "**" not in out  # booktabs, sympy.latex (no Python powers)


def test_asymptotics_compare_bits(capsys):
    rc, out, _ = _run(capsys, ["asymptotics", "--law", "laplace", "--compare-bits", "4,8", "--n", "500",
                               "--format", "json"])
    assert rc == 0
    comp = json.loads(out)["result"]["comparison"]
    em = {r["bits"]: r for r in comp if r["method"] == "equal_mass"}
    # Laplace: K D_EM = S - (tail of the series) so the ratio is 1 - O(1/K)
    assert em[8]["ratio"] == pytest.approx(1.0, abs=1e-3) and em[8]["how"] == "exact"
    mm = [r for r in comp if r["method"] == "uniform_minmax"]
    # finite-n min-max: exact quadrature, or quadrature with an error interval (distortion module)
    assert mm and all(r["n"] == 500 and r["how"] in ("finite-n exact", "finite-n quadrature") for r in mm)
    assert all((r["interval"] is None) == (r["how"] == "finite-n exact") for r in mm)
    for r in comp:
        assert r["ratio"] == pytest.approx(r["exact"] / r["leading"], rel=1e-14)


@pytest.mark.parametrize("argv,flag", [
    (["asymptotics", "--law", "student-t"], "--nu"),
    (["asymptotics", "--law", "student-t", "--nu", "2"], "--nu"),
    (["asymptotics", "--law", "gaussian", "--nu", "3"], "--nu"),
    (["asymptotics", "--law", "gen-gaussian"], "--beta"),
    (["asymptotics", "--law", "gen-gaussian", "--beta", "-1"], "--beta"),
    (["asymptotics", "--law", "gaussian", "--at-bits", "x"], "--at-bits"),
    (["asymptotics", "--law", "gaussian", "--at-bits", "1"], "--at-bits"),
    (["asymptotics", "--law", "gaussian", "--compare-bits", "2:13"], "--compare-bits"),
    (["asymptotics", "--law", "gaussian", "--n", "1"], "--n"),
])
def test_asymptotics_errors_name_the_argument(capsys, argv, flag):
    rc, out, err = _run(capsys, argv)
    assert rc == 2 and flag in err and out == ""


def test_asymptotics_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["asymptotics", "--law", "cauchy"])
    assert exc.value.code == 2 and "--law" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["asymptotics", "--law", "gaussian", "--format", "xml"])
    assert exc.value.code == 2 and "--format" in capsys.readouterr().err


BOUND = ["bound", "--L-theta", "0.01", "--L-x", "2", "--lip-features", "3", "--fid-fp", "0.671",
         "--n-params", "5000"]


def test_bound_weight_mse_json(capsys):
    rc, out, _ = _run(capsys, [*BOUND, "--weight-mse", "0.002", "--solver", "midpoint", "--steps", "100",
                               "--format", "json"])
    assert rc == 0
    doc = json.loads(out)
    assert doc["version"] == __version__ and doc["parameters"]["weight_mse"] == 0.002
    (c,) = doc["result"]["chains"]
    ref = chain.fid_chain(mse=0.002, n_params=5000, lipschitz_theta=0.01, lipschitz_x=2.0, lip_features=3.0,
                          fid_fp=0.671, solver="midpoint", steps=100)
    assert [link["value"] for link in c["links"]] == [link.value for link in ref.links]
    assert c["fid_bound"] == ref.fid_bound and c["delta_fid_bound"] == ref.delta_fid
    assert [a["assumptions"] for a in doc["result"]["assumptions"]] == [list(link.assumptions) for link in ref.links]


def test_bound_from_law_uses_exact_distortion(capsys):
    from fmq_theory.theory.distortion import distortion
    from fmq_theory.theory.laws import make_law

    rc, out, _ = _run(capsys, [*BOUND, "--law", "student-t", "--nu", "5", "--method", "equal_mass",
                               "--bits", "2:4", "--weight-std", "0.5", "--format", "json"])
    assert rc == 0
    chains = json.loads(out)["result"]["chains"]
    assert [c["bits"] for c in chains] == [2, 3, 4]
    law = make_law("student-t", nu=5.0)
    for c in chains:
        assert c["mse"] == 0.25 * distortion(law, method="equal_mass", bits=c["bits"]).distortion
        assert c["how"] == "exact x weight_std^2"
        assert c["links"][0]["value"] == pytest.approx(math.sqrt(c["mse"]), rel=1e-15)
    assert chains[0]["fid_bound"] > chains[1]["fid_bound"] > chains[2]["fid_bound"]


def test_bound_table(capsys):
    rc, out, _ = _run(capsys, [*BOUND, "--weight-mse", "1e-4"])
    assert rc == 0 and "Gronwall" in out and "FID_q" in out and __version__ in out.splitlines()[0]
    lines = out.splitlines()
    assert all(len(line) <= 100 for line in lines[2:])  # all but the command line fit 100 columns
    assert "delta_fid_bound" in lines[2] and "fid_bound" in lines[2]
    flat = " ".join(line.lstrip("# ") for line in lines)
    assert flat.count("Gronwall's inequality") == 1 and out.count("Assumes:") == 7  # each assumption once


@pytest.mark.parametrize("extra,flag", [
    ([], "--weight-mse"),
    (["--weight-mse", "0.1", "--law", "gaussian"], "--weight-mse"),
    (["--weight-mse", "-0.1"], "--weight-mse"),
    (["--weight-mse", "0.1", "--steps", "10"], "--steps"),
    (["--weight-mse", "0.1", "--solver", "euler"], "--steps"),
    (["--weight-mse", "0.1", "--solver", "euler", "--steps", "0"], "--steps"),
    (["--law", "gaussian", "--method", "equal_mass"], "--bits"),
    (["--law", "gaussian", "--bits", "3"], "--method"),
    (["--law", "gaussian", "--method", "equal_mass", "--bits", "3:x"], "--bits"),
    (["--law", "gaussian", "--method", "equal_mass", "--bits", "3"], "--weight-std"),
    (["--law", "gaussian", "--method", "equal_mass", "--bits", "3", "--weight-std", "0"], "--weight-std"),
    (["--weight-mse", "0.1", "--weight-std", "1"], "--weight-std"),
])
def test_bound_errors_name_the_argument(capsys, extra, flag):
    rc, out, err = _run(capsys, [*BOUND, *extra])
    assert rc == 2 and flag in err and out == ""


def test_bound_negative_constant(capsys):
    argv = ["bound", "--L-theta", "-1", "--L-x", "2", "--lip-features", "3", "--fid-fp", "1",
            "--n-params", "10", "--weight-mse", "0.1"]
    rc, _, err = _run(capsys, argv)
    assert rc == 2 and "--L-theta" in err
