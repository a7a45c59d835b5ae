"""Build and serve the project's Jupyter Book (``python -m fmq_book build|serve``).

This is tooling of the repository, kept outside the importable ``fmq_theory`` package: it
needs the repository's ``book/`` folder and Jupyter Book, neither of which a user of the
library has.

The book's source root is the repository root, so that its table of contents
(``book/_toc.yml``) can reach ``proofs/`` and ``notebooks/``; its configuration is
``book/_config.yml`` and its HTML lands in ``book/_build/html``. A build executes every
notebook and treats every Sphinx warning as an error (``jupyter-book build -W``).

A build is skipped when the HTML is *fresh*: the SHA-256 fingerprint of every input that
can change a page (book sources, notebooks, proofs, the library's Python files, committed
results and checkpoints, the installed MathJax) equals the one recorded by the last
successful build. Any change, or ``--force``, rebuilds everything (notebooks included).

Examples
--------
.. code-block:: bash

    python -m fmq_book build          # build unless fresh
    python -m fmq_book build --force  # always rebuild
    python -m fmq_book serve --port 8000
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import hashlib
import http.server
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BookBuild", "BookLayout", "book_fingerprint", "build_book", "main"]

#: Inputs of the book, as glob patterns relative to the repository root.
SOURCE_PATTERNS = (
    "book/_config.yml",
    "book/_toc.yml",
    "book/*.md",
    "book/*.bib",
    "book/api/*.rst",
    "book/_ext/*.py",
    "notebooks/*.md",
    "proofs/*.md",
    "fmq_theory/**/*.py",
    "fmq_book/*.py",
    "results/**/*",
    "checkpoints/**/*",
    "CITATION.cff",
    "pyproject.toml",
)


@dataclass(frozen=True)
class BookLayout:
    """Where the book's inputs and outputs live.

    Attributes
    ----------
    root : Path
        Repository root (the book's source root).
    config : Path
        ``book/_config.yml``.
    toc : Path
        ``book/_toc.yml``.
    html : Path
        Output folder ``book/_build/html``.
    mathjax_entry : Path
        ``book/_mathjax/mathjax/tex-mml-chtml.js``, installed by ``make mathjax``.
    stamp : Path
        ``book/_build/.fingerprint``: the fingerprint of the last successful build.
    """

    root: Path
    config: Path
    toc: Path
    html: Path
    mathjax_entry: Path
    stamp: Path

    @classmethod
    def from_root(cls, root: Path) -> "BookLayout":
        """Return the layout of the book in repository ``root``.

        Raises
        ------
        FileNotFoundError
            If ``root`` has no ``book/_config.yml`` (for example, an installed, non-editable
            copy of the package, which ships without the book).
        """
        root = Path(root).resolve()
        config = root / "book" / "_config.yml"
        if not config.is_file():
            raise FileNotFoundError(
                f"root={str(root)!r} has no book/_config.yml; run this from a clone of the "
                "fmq_theory repository (the book is not part of the installed package)"
            )
        return cls(
            root=root,
            config=config,
            toc=root / "book" / "_toc.yml",
            html=root / "book" / "_build" / "html",
            mathjax_entry=root / "book" / "_mathjax" / "mathjax" / "tex-mml-chtml.js",
            stamp=root / "book" / "_build" / ".fingerprint",
        )

    @classmethod
    def default(cls) -> "BookLayout":
        """Layout of the repository this module was imported from (editable install)."""
        return cls.from_root(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class BookBuild:
    """Outcome of :func:`build_book`.

    Attributes
    ----------
    html : Path
        The built HTML folder (``book/_build/html``).
    rebuilt : bool
        True if this call ran jupyter-book; False if the existing HTML was fresh.
    seconds : float
        Wall time of this call.
    fingerprint : str
        SHA-256 hex digest of the inputs the HTML was built from.
    """

    html: Path
    rebuilt: bool
    seconds: float
    fingerprint: str


def book_fingerprint(layout: BookLayout) -> str:
    """SHA-256 over the relative path and content of every book input.

    The inputs are the files matching :data:`SOURCE_PATTERNS` (Python bytecode caches
    excluded) plus the installed MathJax entry point.
    """
    files = set()
    for pattern in SOURCE_PATTERNS:
        files.update(p for p in layout.root.glob(pattern) if p.is_file())
    files = sorted(p for p in files if "__pycache__" not in p.parts)
    if layout.mathjax_entry.is_file():
        files.append(layout.mathjax_entry)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(layout.root).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _is_fresh(layout: BookLayout, fingerprint: str) -> bool:
    index = layout.html / "index.html"
    return (
        index.is_file()
        and layout.stamp.is_file()
        and layout.stamp.read_text().strip() == fingerprint
    )


def build_book(*, layout: BookLayout | None = None, force: bool = False) -> BookBuild:
    """Build the book into ``book/_build/html`` unless it is fresh.

    Parameters
    ----------
    layout : BookLayout, optional
        Which repository to build; default :meth:`BookLayout.default`.
    force : bool
        Rebuild even when the HTML is fresh.

    Returns
    -------
    BookBuild

    Raises
    ------
    FileNotFoundError
        If MathJax is not installed in the book (run ``make mathjax``).
    RuntimeError
        If jupyter-book fails (a notebook error or any Sphinx warning); the message carries
        the tail of its output.

    Notes
    -----
    Builds of one repository are serialized by an exclusive lock on a file in the system's
    temporary folder: a concurrent caller waits, then finds the HTML fresh and returns.
    """
    if not isinstance(force, bool):
        raise TypeError(f"force must be a bool, got {force!r}")
    layout = BookLayout.default() if layout is None else layout
    start = time.perf_counter()
    # One build at a time per repository: a second caller waits, then finds the HTML fresh.
    lock_name = "fmq-book-" + hashlib.sha256(str(layout.root).encode()).hexdigest()[:16] + ".lock"
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(layout=layout, force=force, start=start)


def _build_locked(*, layout: BookLayout, force: bool, start: float) -> BookBuild:
    if not layout.mathjax_entry.is_file():
        raise FileNotFoundError(
            f"MathJax is missing ({layout.mathjax_entry}); run `make mathjax` "
            "(npm install mathjax@3, copied into book/_mathjax/mathjax)"
        )
    fingerprint = book_fingerprint(layout)
    if not force and _is_fresh(layout, fingerprint):
        return BookBuild(layout.html, False, time.perf_counter() - start, fingerprint)
    build_dir = layout.html.parent
    # Start clean: a stale page of a removed notebook must not survive in the output.
    shutil.rmtree(build_dir, ignore_errors=True)
    command = [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(layout.root),
        "--config",
        str(layout.config),
        "--toc",
        str(layout.toc),
        "--path-output",
        str(layout.root / "book"),
        "--warningiserror",
        "--keep-going",
    ]
    lines = []
    with subprocess.Popen(
        command,
        cwd=layout.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        for line in process.stdout:  # jupyter-book's own progress, passed through
            print(line, end="", flush=True)
            lines.append(line)
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "build.log").write_text("".join(lines))
    if process.returncode != 0:
        raise RuntimeError(
            f"jupyter-book build failed (exit {process.returncode}); full log in "
            f"{build_dir / 'build.log'}; last lines:\n" + "".join(lines[-60:])
        )
    layout.stamp.write_text(fingerprint + "\n")
    return BookBuild(layout.html, True, time.perf_counter() - start, fingerprint)


def _serve(*, html: Path, port: int) -> None:
    if not (html / "index.html").is_file():
        raise FileNotFoundError(f"{html}/index.html is missing; run `make book` first")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving {html} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> int:
    """Command line: ``build [--force]`` or ``serve [--port P]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m fmq_book", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help="build book/_build/html unless it is fresh")
    build.add_argument("--force", action="store_true", help="rebuild even when fresh")
    serve = sub.add_parser("serve", help="serve book/_build/html on localhost")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any)")
    args = parser.parse_args(argv)
    layout = BookLayout.default()
    if args.action == "serve":
        _serve(html=layout.html, port=args.port)
        return 0
    try:
        result = build_book(layout=layout, force=args.force)
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"book: error: {exc}", file=sys.stderr)
        return 1
    state = "built" if result.rebuilt else "fresh, not rebuilt"
    print(f"book: {state}: {result.html}/index.html ({result.seconds:.1f} s)")
    return 0

