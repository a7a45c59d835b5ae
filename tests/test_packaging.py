"""What ``pip install .`` gives: the runtime package never imports a test-only dependency."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Distributions that only the tests, the book or the benchmarks use (import name -> dist).
TEST_ONLY = {"ot": "POT", "jsonschema": "jsonschema", "sklearn": "scikit-learn", "hypothesis": "hypothesis"}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_runtime_package_imports_no_test_only_dependency():
    offenders = {str(p.relative_to(ROOT)): sorted(_imported_roots(p) & set(TEST_ONLY))
                 for p in sorted((ROOT / "fmq_theory").rglob("*.py"))}
    assert not {k: v for k, v in offenders.items() if v}


def test_test_only_dependencies_are_extras_not_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = " ".join(project["dependencies"]).lower()
    for dist in TEST_ONLY.values():
        assert dist.lower() not in required, f"{dist} is a runtime requirement"
        assert any(d.lower().startswith(dist.lower()) for d in project["optional-dependencies"]["test"]), dist
    assert any(d.startswith("POT") for d in project["optional-dependencies"]["book"])  # notebooks/ot_1d.md
