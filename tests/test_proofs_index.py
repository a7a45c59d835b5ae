"""The proof pages: every test they name exists, and their MyST structure is consistent.

Checks, without building the book: each page of ``proofs/`` (except the index) ends with a
"Checked by" list naming tests as ``tests/test_x.py::test_name``; each named file exists and
defines that test function; every ``{prf:ref}`` target is a ``:label:`` defined on some
page; labels are unique; every ``{cite}`` key is in ``book/references.bib``; the index links
every page; colon fences are balanced; no raw HTML.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROOFS = ROOT / "proofs"
PAGES = sorted(p for p in PROOFS.glob("*.md") if p.name != "index.md")
NAMED = re.compile(r"^- `(tests/[\w/]+\.py)::(\w+)`\s*$")


def _checked_by(page: Path) -> list[tuple[str, str]]:
    text = page.read_text()
    head, sep, tail = text.partition("\n## Checked by\n")
    assert sep, f"{page.name} has no '## Checked by' section"
    items = [line for line in tail.splitlines() if line.strip()]
    assert items, f"{page.name}: empty 'Checked by' list"
    out = []
    for line in items:
        m = NAMED.match(line)
        assert m, f"{page.name}: malformed 'Checked by' item {line!r}"
        out.append((m.group(1), m.group(2)))
    return out


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name.startswith("test_")}


def test_there_are_proof_pages():
    names = {p.stem for p in PAGES}
    assert {"monotone_coupling", "equal_mass_optimality", "lloyd_max", "uniform_step", "panter_dite",
            "equal_mass_tail", "gronwall", "gelbrich", "fid_chain"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_named_test_exists(page):
    for rel, name in _checked_by(page):
        path = ROOT / rel
        assert path.is_file(), f"{page.name} names {rel}, which does not exist"
        assert name in _test_functions(path), f"{page.name} names {rel}::{name}, which does not exist"


def _labels(text: str) -> list[str]:
    return re.findall(r"^:label:\s*(\S+)\s*$", text, flags=re.M)


def test_labels_unique_and_references_resolve():
    labels: list[str] = []
    for page in [*PAGES, PROOFS / "index.md"]:
        labels += _labels(page.read_text())
    assert len(labels) == len(set(labels)), "duplicate :label: across proof pages"
    for page in PAGES:
        for target in re.findall(r"\{prf:ref\}`([^`]+)`", page.read_text()):
            assert target in labels, f"{page.name}: {{prf:ref}} to unknown label {target!r}"


def test_citations_are_in_the_bibliography():
    bib = ROOT / "book" / "references.bib"
    assert bib.is_file(), "book/references.bib is missing"
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", bib.read_text(), flags=re.M))
    for page in PAGES:
        for group in re.findall(r"\{cite\}`([^`]+)`", page.read_text()):
            for key in group.split(","):
                assert key.strip() in keys, f"{page.name}: citation key {key!r} not in references.bib"


@pytest.mark.parametrize("page", [*PAGES, PROOFS / "index.md"], ids=lambda p: p.stem)
def test_myst_structure(page):
    text = page.read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# "), f"{page.name} must open with one level-1 title"
    assert sum(1 for line in lines if line.startswith("# ")) == 1
    # colon fences: every opening ':::{...}' is closed by a bare ':::'
    opened = sum(1 for line in lines if re.match(r"^:::\{[\w:-]+\}", line))
    closed = sum(1 for line in lines if line.strip() == ":::")
    assert opened == closed, f"{page.name}: {opened} directives opened, {closed} closed"
    # every prf directive except proofs carries a label
    for m in re.finditer(r"^:::\{prf:(\w+)\}[^\n]*\n(.*?)^:::$", text, flags=re.M | re.S):
        if m.group(1) != "proof":
            assert re.search(r"^:label:", m.group(2), flags=re.M), f"{page.name}: unlabelled prf:{m.group(1)}"
    assert not re.search(r"<\s*/?\s*(div|span|p|br|img|a|table|b|i)\b", text), f"{page.name}: raw HTML"
    assert text.count("$$") % 2 == 0, f"{page.name}: unbalanced $$"


def test_index_links_every_page():
    index = (PROOFS / "index.md").read_text()
    for page in PAGES:
        assert f"({page.name})" in index, f"proofs/index.md does not link {page.name}"
