"""The package's layering, checked on its source (AST) so that the picture in the README stays true.

Rules (issue "Redesign in one step" and the house style):

* imports of the package's own modules sit at module level, never inside a function or class;
* no ``try/except ImportError`` guard around an import of the package's own modules;
* imports point down the layers of :data:`LAYERS`: a module may import its own layer or a
  lower one, never a higher one;
* ``theory/`` imports no torch (checked on the source and by importing every theory module
  in a fresh interpreter);
* ``flow/`` and ``bounds/`` never import ``harness/``;
* only ``cli/`` uses argparse, and nothing outside ``cli/`` imports ``cli/``;
* the graph of module-level imports between the package's modules has no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fmq_theory"

#: Layers from the bottom up; a module may import only its own layer or lower ones.
LAYERS = (
    ("vocab", "_util"),
    ("quantizers", "theory"),
    ("io",),
    ("flow",),
    ("bounds",),
    ("plan",),
    ("results",),
    ("harness",),
    ("ledger",),
    ("cli",),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(node: ast.AST, module: str, is_package: bool, modules: dict) -> list[str]:
    """Absolute names imported by ``node`` (relative imports resolved against ``module``):
    ``from a.b import c`` imports the module ``a.b.c`` when there is one, else ``a.b``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")
            if not is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        return [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix
                for alias in node.names]
    return []


def _own(name: str, modules: dict) -> str | None:
    """The package module that ``name`` refers to, or None for a third-party name."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


class _Imports(ast.NodeVisitor):
    """Every import of a module, with where it sits (module level, in a function, in a try)."""

    def __init__(self):
        self.found = []  # (node, in_function, guarded)
        self._function = 0
        self._guard = 0

    def visit_FunctionDef(self, node):
        self._function += 1
        self.generic_visit(node)
        self._function -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef

    def visit_Try(self, node):
        catches_import_error = any(h.type is not None and ("ImportError" in ast.unparse(h.type)
                                                            or "ModuleNotFoundError" in ast.unparse(h.type))
                                   for h in node.handlers)
        self._guard += catches_import_error
        for stmt in node.body:
            self.visit(stmt)
        self._guard -= catches_import_error
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    def visit_Import(self, node):
        self.found.append((node, self._function > 0, self._guard > 0))

    visit_ImportFrom = visit_Import


def _scan():
    modules = _modules()
    rows = []  # (module, imported own module or third-party name, in_function, guarded, lineno)
    for module, path in modules.items():
        visitor = _Imports()
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        for node, in_function, guarded in visitor.found:
            for name in _imported(node, module, path.name == "__init__.py", modules):
                rows.append((module, _own(name, modules) or name, in_function, guarded, node.lineno,
                             _own(name, modules) is not None))
    return modules, rows


MODULES, IMPORTS = _scan()


def test_every_module_sits_in_a_layer():
    unplaced = sorted(m for m in MODULES if _layer(m) not in RANK and m not in ("fmq_theory", "fmq_theory.__main__"))
    assert not unplaced, f"modules outside every layer of LAYERS: {unplaced}"


def test_package_imports_are_at_module_level():
    local = sorted({f"{m}:{line} imports {name}" for m, name, in_function, _, line, own in IMPORTS
                    if own and in_function and m != "fmq_theory"})
    assert not local, "function-local imports of the package's own modules:\n" + "\n".join(local)


def test_no_guard_around_the_package_own_imports():
    guarded = sorted({f"{m}:{line} imports {name}" for m, name, _, guarded, line, own in IMPORTS if own and guarded})
    assert not guarded, "try/except ImportError around the package's own modules:\n" + "\n".join(guarded)


def test_imports_point_down_the_layers():
    upward = []
    for module, name, _, _, line, own in IMPORTS:
        if not own or module in ("fmq_theory", "fmq_theory.__main__") or name == "fmq_theory":
            continue
        src, dst = _layer(module), _layer(name)
        if dst is None or src == dst:
            continue
        if RANK[dst] > RANK[src]:
            upward.append(f"{module}:{line} ({src}) imports {name} ({dst})")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(sorted(set(upward)))


def test_flow_and_bounds_never_import_the_harness():
    bad = sorted({f"{m}:{line} imports {name}" for m, name, _, _, line, own in IMPORTS
                  if own and _layer(m) in ("flow", "bounds") and _layer(name) == "harness"})
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("third_party", ["argparse"])
def test_only_the_cli_parses_arguments(third_party):
    bad = sorted({f"{m}:{line}" for m, name, _, _, line, own in IMPORTS
                  if not own and name.split(".")[0] == third_party and _layer(m) != "cli"})
    assert not bad, f"{third_party} used outside fmq_theory.cli: {bad}"


def test_nothing_imports_the_cli():
    bad = sorted({f"{m}:{line} imports {name}" for m, name, _, _, line, own in IMPORTS
                  if own and _layer(name) == "cli" and _layer(m) != "cli" and m != "fmq_theory.__main__"})
    assert not bad, "\n".join(bad)


def test_theory_source_never_imports_torch():
    bad = sorted({f"{m}:{line} imports {name}" for m, name, _, _, line, own in IMPORTS
                  if not own and _layer(m) == "theory" and name.split(".")[0] == "torch"})
    assert not bad, "\n".join(bad)


def test_importing_every_theory_module_loads_no_torch():
    theory = sorted(m for m in MODULES if _layer(m) == "theory")
    script = "import sys\n" + "".join(f"import {m}\n" for m in theory) + (
        "bad = sorted(k for k in sys.modules if k == 'torch' or k.startswith('torch.'))\n"
        "assert not bad, bad[:5]\n")
    subprocess.run([sys.executable, "-c", script], check=True)


def test_module_level_import_graph_has_no_cycle():
    graph = {m: set() for m in MODULES}
    for module, name, in_function, _, _, own in IMPORTS:
        if own and not in_function and name != module and name != "fmq_theory":
            graph[module].add(name)
    state, cycle = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycle, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycle)


def test_every_public_module_has_an_api_page():
    """The book's API reference has one page per public module (``book/api/*.rst``, in the toc)."""
    root = PACKAGE.parent
    documented = set()
    for page in (root / "book" / "api").glob("*.rst"):
        for line in page.read_text().splitlines():
            if line.startswith(".. automodule:: "):
                documented.add(line.split()[-1])
    toc = (root / "book" / "_toc.yml").read_text()
    public = {m for m in MODULES if not any(p.startswith("_") for p in m.split("."))
              and _layer(m) != "cli" and m != "fmq_theory"}
    # quantizers.api and quantizers.state_dict are documented on the quantizers page
    public -= {"fmq_theory.quantizers.api", "fmq_theory.quantizers.state_dict"}
    missing = sorted(public - documented)
    assert not missing, f"public modules without an API page: {missing}"
    unlisted = sorted(p.stem for p in (root / "book" / "api").glob("*.rst") if f"book/api/{p.stem}\n" not in toc)
    assert not unlisted, f"API pages missing from book/_toc.yml: {unlisted}"
