"""Every ``fmq`` output a user pastes into a paper: one JSON schema, LaTeX that compiles.

* every ``--format json`` output validates against :data:`fmq_theory.cli._output.SCHEMA`
  (the ``jsonschema`` package, draft 2020-12), and the schema itself is valid;
* every ``--format latex`` output compiles with ``pdflatex`` (Debian ``texlive-latex-base`` and
  ``texlive-latex-recommended``; ``make latex`` installs them) inside a document that loads
  only ``booktabs`` and ``amsmath``, and its numbers are rounded to 4 significant digits by
  default and to ``--digits`` on request.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from fmq_theory import __version__
from fmq_theory.cli import main
from fmq_theory.cli._output import SCHEMA, document, latex_text

FIXTURE = Path(__file__).parent / "data" / "digits_cnn.safetensors"
BOUND = ["bound", "--L-theta", "0.01", "--L-x", "2", "--lip-features", "3", "--fid-fp", "0.671",
         "--n-params", "5000"]
#: One invocation of every command that prints results (without --format).
COMMANDS = {
    "distortion": ["distortion", "--law", "gaussian", "--method", "lloyd_max", "--bits", "1:4"],
    "distortion-mc": ["distortion", "--law", "laplace", "--method", "equal_mass", "--bits", "3", "--n", "500",
                      "--replicates", "10"],
    "rho": ["rho", "--law", "student-t", "--nu", "5", "--bits", "2:4", "--against", "lloyd_max"],
    "asymptotics": ["asymptotics", "--law", "student-t", "--nu", "3", "--compare-bits", "4"],
    "bound": [*BOUND, "--weight-mse", "1e-4", "--solver", "midpoint", "--steps", "20"],
    "bound-law": [*BOUND, "--law", "gaussian", "--method", "equal_mass", "--bits", "2:4", "--weight-std", "0.05"],
}
LATEX_PREAMBLE = ("\\documentclass{article}\n\\usepackage{booktabs}\n"
                  "\\usepackage{amsmath}\n\\usepackage[margin=1cm,landscape]{geometry}\n"
                  "\\begin{document}\n")


def _out(capsys, argv):
    assert main([str(a) for a in argv]) == 0
    return capsys.readouterr().out


def test_schema_is_valid_and_rejects_the_old_shapes():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    good = document(command="fmq x", parameters={}, units={}, rows=[], interval_level=None)
    validator.validate(good)
    for bad in ([{"version": __version__}],  # a bare list of rows
                {"version": __version__, "params": {}, "chains": []},
                {**good, "result": {}},  # rows and result together
                {**good, "interval_level": 95}):
        assert not validator.is_valid(bad), bad
    with pytest.raises(ValueError, match="exactly one of rows and result"):
        document(command="fmq x", parameters={}, units={}, interval_level=None)


@pytest.mark.parametrize("name", [*COMMANDS, "report", "quantize"])
def test_every_json_output_has_the_one_schema(capsys, tmp_path, name):
    if name == "report":
        argv = ["report", "--claim", "1b"]
    elif name == "quantize":
        argv = ["quantize", FIXTURE, "--method", "equal_mass", "--bits", "3", "-o", tmp_path / "q.safetensors"]
    else:
        argv = COMMANDS[name]
    doc = json.loads(_out(capsys, [*argv, "--format", "json"]))
    jsonschema.validate(doc, SCHEMA)
    assert doc["version"] == __version__ and doc["command"].startswith(f"fmq {argv[0]}")
    assert doc["interval_level"] == (0.95 if name == "distortion-mc" else None)


def _compile(tmp_path: Path, body: str) -> str:
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.fail("pdflatex is missing: run `make latex` (apt-get install texlive-latex-base "
                    "texlive-latex-recommended)")
    tex = tmp_path / "out.tex"
    tex.write_text(LATEX_PREAMBLE + body + "\n\\end{document}\n")
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", tex.name],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and (tmp_path / "out.pdf").is_file(), proc.stdout[-3000:]
    return proc.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_latex_output_compiles(capsys, tmp_path, name):
    out = _out(capsys, [*COMMANDS[name], "--format", "latex"])
    assert "\\toprule" in out and "\\bottomrule" in out
    assert "**" not in out and "sup_{" not in out  # sympy.latex, no Python or raw text math
    numbers = re.findall(r"\$(-?[0-9.]+)(?: \\times 10\^\{-?[0-9]+\})?\$", out)
    assert numbers and all(len(re.sub(r"[^0-9]", "", n).lstrip("0")) <= 4 for n in numbers)
    log = _compile(tmp_path, out)
    assert "Overfull" not in log or name.startswith("bound")  # the chain table is wide in print


def test_latex_digits_option(capsys):
    out = _out(capsys, [*COMMANDS["distortion"], "--format", "latex", "--digits", "6"])
    assert "$0.117482$" in out
    out = _out(capsys, [*COMMANDS["distortion"], "--format", "latex"])
    assert "$0.1175$" in out and "$0.009501$" in out


def test_latex_text_escapes_compile(tmp_path):
    text = "sup_{t,x} |v_q - v_fp| <= eps; 100% & #1 ~ x^2 >= $5 \\ done"
    escaped = latex_text(text)
    assert "$\\le$" in escaped and "\\textbar{}" in escaped
    _compile(tmp_path, escaped)
