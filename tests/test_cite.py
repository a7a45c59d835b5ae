"""``fmq cite`` and CITATION.cff say the same thing, and the BibTeX compiles with bibtex."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fmq_theory import __version__
from fmq_theory.cli import main
from fmq_theory.cli import cite_cmd

ROOT = Path(__file__).resolve().parents[1]


def test_citation_cff_matches_fmq_cite():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["version"] == __version__
    assert str(cff["date-released"]) == cite_cmd.RELEASE_DATE
    assert cff["repository-code"] == cff["url"] == cite_cmd.REPOSITORY_URL
    assert cff["title"] == cite_cmd.TITLE
    (paper,) = cff["references"]
    assert "2511.11418" in paper["url"] and "arXiv.2511.11418" in cite_cmd.PAPER_BIBTEX


def test_fmq_cite_prints_both_entries(capsys):
    assert main(["cite"]) == 0
    out = capsys.readouterr().out
    keys = re.findall(r"^@(\w+)\{([^,]+),", out, flags=re.M)
    assert keys == [("software", "fmq_theory_" + __version__.replace(".", "_")), ("misc", "varam2025lowbit")]
    assert f"version = {{{__version__}}}" in out
    assert main(["cite", "--which", "paper"]) == 0
    assert capsys.readouterr().out.startswith("@misc{varam2025lowbit,")


def test_bibtex_compiles(tmp_path, capsys):
    for tool in ("pdflatex", "bibtex"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run `make latex`")
    assert main(["cite"]) == 0
    (tmp_path / "refs.bib").write_text(capsys.readouterr().out)
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\\begin{document}\\nocite{*}"
                                      "\\bibliographystyle{plain}\\bibliography{refs}\\end{document}\n")
    run = lambda *argv: subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)  # noqa: E731
    assert run("pdflatex", "-interaction=nonstopmode", "doc.tex").returncode == 0
    bib = run("bibtex", "doc")
    assert bib.returncode == 0 and "error" not in bib.stdout.lower(), bib.stdout
    assert run("pdflatex", "-interaction=nonstopmode", "doc.tex").returncode == 0
    bbl = (tmp_path / "doc.bbl").read_text()
    assert "Varam" in bbl and "developers" in bbl
