"""``fmq distortion``, ``fmq rho``, ``fmq report``: formats, provenance, errors (exit 2)."""

import csv
import io
import json

import pytest

from fmq_theory import __version__
from fmq_theory.cli import main
from fmq_theory.cli.theory_cmd import parse_bits, parse_n
from fmq_theory.theory.distortion import distortion
from fmq_theory.theory.laws import make_law


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_distortion_json_rows(capsys):
    code, out, _ = run(capsys, "distortion", "--law", "student-t", "--nu", "5", "--method", "lloyd_max",
                       "--bits", "2:3", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    rows = doc["rows"]
    assert doc["version"] == __version__ and doc["parameters"]["bits"] == [2, 3]
    assert doc["interval_level"] is None
    assert [r["bits"] for r in rows] == [2, 3]
    for r in rows:
        assert {"law", "params", "method", "bits", "n", "distortion", "how"} <= set(r)
        assert r["n"] is None and r["how"] == "exact"
        assert r["params"]["nu"] == 5.0 and "scale" in r["params"]
        ref = distortion(make_law("student-t", nu=5), method="lloyd_max", bits=r["bits"]).distortion
        assert r["distortion"] == ref
    assert rows[0]["effective_exponent"] is not None  # D(1) computed for it


def test_distortion_monte_carlo_reports_seed_and_interval(capsys):
    code, out, _ = run(capsys, "distortion", "--law", "laplace", "--method", "equal_mass", "--bits", "3",
                       "--n", "1000", "--replicates", "20", "--seed", "4", "--format", "json")
    doc = json.loads(out)
    (row,) = doc["rows"]
    assert code == 0 and row["how"] == "monte-carlo" and row["n"] == 1000 and doc["interval_level"] == 0.95
    assert row["seed"] == 4 and row["replicates"] == 20
    assert row["interval_low"] < row["distortion"] < row["interval_high"]


def test_table_csv_latex_print_version_and_parameters(capsys):
    for fmt, prefix in (("table", "#"), ("csv", "#"), ("latex", "%")):
        code, out, _ = run(capsys, "rho", "--law", "gaussian", "--bits", "2:3", "--against", "lloyd_max",
                           "--format", fmt)
        assert code == 0
        assert out.startswith(f"{prefix} fmq_theory {__version__}")
        assert "--law gaussian --method equal_mass --against lloyd_max --bits 2:3" in out
        assert "gaussian(scale=1.0, loc=0.0)" in out
    body = [line for line in out.splitlines() if not line.startswith("%")]
    assert body[0].startswith("\\begin{tabular}")


def test_rho_csv_parses_and_has_crossover_note(capsys):
    code, out, _ = run(capsys, "rho", "--law", "gaussian", "--bits", "2:5", "--n", "2304",
                       "--replicates", "20", "--format", "csv")
    assert code == 0
    assert "rho reaches 1 at b ~" in out
    rows = list(csv.DictReader(io.StringIO("\n".join(l for l in out.splitlines() if not l.startswith("#")))))
    assert [int(r["bits"]) for r in rows] == [2, 3, 4, 5]
    assert all(r["how"] == "monte-carlo / finite-n exact" for r in rows)


@pytest.mark.parametrize("argv,needle", [
    (["distortion", "--law", "student-t", "--method", "equal_mass", "--bits", "3"], "--nu is required"),
    (["distortion", "--law", "student-t", "--nu", "2", "--method", "equal_mass", "--bits", "3"], "--nu"),
    (["distortion", "--law", "gaussian", "--nu", "3", "--method", "equal_mass", "--bits", "3"], "--nu 3.0"),
    (["distortion", "--law", "gaussian", "--method", "equal_mass", "--bits", "0:4"], "--bits '0:4'"),
    (["distortion", "--law", "gaussian", "--method", "equal_mass", "--bits", "x"], "--bits 'x'"),
    (["distortion", "--law", "gaussian", "--method", "uniform_minmax", "--bits", "3"], "--n"),
    (["distortion", "--law", "gaussian", "--method", "equal_mass", "--bits", "3", "--n", "2.5"], "--n '2.5'"),
    (["rho", "--law", "gaussian", "--bits", "3"], "--n is required"),
    (["rho", "--law", "gaussian", "--bits", "3", "--n", "100", "--replicates", "1"], "--replicates 1"),
])
def test_errors_exit_2_and_name_the_argument(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert needle in err


def test_unknown_law_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["distortion", "--law", "cauchy", "--method", "equal_mass", "--bits", "3"])
    assert info.value.code == 2
    assert "gaussian" in capsys.readouterr().err


def test_parsers():
    assert parse_bits("3") == [3] and parse_bits("2:8") == list(range(2, 9))
    assert parse_n("1e6") == 1_000_000 and parse_n("2304") == 2304


def test_report_single_claim(capsys):
    code, out, _ = run(capsys, "report", "--claim", "1b")
    assert code == 0 and "[1b]" in out and "HOLDS" in out and __version__ in out
    code, out, _ = run(capsys, "report", "--claim", "2c", "--format", "json")
    (row,) = json.loads(out)["rows"]
    assert row["verdict"] == "holds" and row["command"].startswith("fmq ")


def test_report_markdown_is_the_verdict_table(capsys):
    code, out, _ = run(capsys, "report", "--claim", "1a", "--format", "markdown")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(f"Computed by fmq_theory {__version__} with `fmq report")
    assert lines[2] == "| claim | verdict | decided by | holds only when |"
    assert "[✔ holds](notebooks/ot_1d.md)" in lines[4] and "$" in lines[4]
