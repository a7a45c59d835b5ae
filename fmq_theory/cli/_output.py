"""One output layer for every ``fmq`` command that prints results.

Every command builds one *document* with :func:`document` and prints it with :func:`render`
in the format the user asked for:

``json``
    The document itself, one schema for every command (:data:`SCHEMA`)::

        {"package": "fmq_theory", "version": "0.1.0", "command": "fmq distortion ...",
         "parameters": {...}, "units": {"distortion": "...", ...},
         "rows": [{...}, ...]            # or "result": {...} for a non-tabular result
         "interval_level": 0.95}         # or null when no number carries an interval

``table``
    The version and command line as ``#`` lines, an aligned text table, then the notes.
``csv``
    The same ``#`` lines, then the rows at full precision.
``latex``
    A ``booktabs`` tabular (``\\toprule``, ``\\midrule``, ``\\bottomrule``, no vertical rules)
    whose numbers are rounded to ``digits`` significant digits (4 by default) and typeset the
    way ``siunitx`` prints them (``$3.455 \\times 10^{-5}$``, right-aligned), symbolic cells
    typeset by :func:`sympy.latex`, column heads in math, the notes as a paragraph below.  It
    compiles inside any document that loads ``booktabs`` and ``amsmath`` (Debian's
    ``texlive-latex-base`` and ``texlive-latex-recommended`` suffice).
"""

from __future__ import annotations

import csv
import io
import json
import math
import shlex

import sympy as sp

from fmq_theory import __version__

#: Output formats of the commands that print results.
FORMATS = ("table", "json", "csv", "latex")
#: Significant digits of the ``table`` and ``latex`` formats unless ``--digits`` says otherwise.
DEFAULT_DIGITS = {"table": 7, "latex": 4}

#: JSON schema (draft 2020-12) of every ``--format json`` output.
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "fmq_theory command output",
    "type": "object",
    "properties": {
        "package": {"const": "fmq_theory"},
        "version": {"type": "string"},
        "command": {"type": "string", "pattern": "^fmq "},
        "parameters": {"type": "object"},
        "units": {"type": "object", "additionalProperties": {"type": "string"}},
        "rows": {"type": "array", "items": {"type": "object"}},
        "result": {"type": "object"},
        "interval_level": {"type": ["number", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    },
    "required": ["package", "version", "command", "parameters", "units", "interval_level"],
    "oneOf": [{"required": ["rows"]}, {"required": ["result"]}],
    "additionalProperties": False,
}


def command_line(args, *, canonical: str | None = None) -> str:
    """The command line to cite: ``canonical`` when the command spells every option out,
    otherwise the arguments as given (``args.argv``, set by :func:`fmq_theory.cli.main`)."""
    if canonical is not None:
        return canonical
    return "fmq " + shlex.join(getattr(args, "argv", [args.command]))


def document(*, command: str, parameters: dict, units: dict, rows: list | None = None,
             result: dict | None = None, interval_level: float | None = None) -> dict:
    """The output document of one command run (see :data:`SCHEMA`); exactly one of ``rows``
    and ``result``."""
    if (rows is None) == (result is None):
        raise ValueError("give exactly one of rows and result")
    doc = {"package": "fmq_theory", "version": __version__, "command": command,
           "parameters": parameters, "units": units}
    doc["rows" if rows is not None else "result"] = rows if rows is not None else result
    doc["interval_level"] = interval_level
    return doc


def check_digits(digits) -> int | None:
    """``--digits`` checked to lie in 1..17 (``None`` keeps the format's default)."""
    if digits is not None and not 1 <= digits <= 17:
        raise ValueError(f"--digits must lie in 1..17, got {digits!r}")
    return digits


def add_format_arguments(p, *, formats=FORMATS) -> None:
    """Add ``--format`` and ``--digits`` to the parser ``p``."""
    p.add_argument("--format", choices=formats, default="table",
                   help="table (default), json (one schema for every command), csv, or latex "
                        "(booktabs, siunitx-style numbers)")
    p.add_argument("--digits", type=int, default=None,
                   help="significant digits of table (default 7) and latex (default 4) numbers")


def _round(value: float, digits: int) -> str:
    if value == 0 or not math.isfinite(value):
        return repr(value)
    return f"{value:.{digits}g}"


def _text_cell(value, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return _round(value, digits)
    if isinstance(value, sp.Basic):
        return str(value.xreplace({f: sp.Float(f, digits) for f in value.atoms(sp.Float)}))
    return str(value)


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "_": r"\_", "&": r"\&", "%": r"\%", "#": r"\#",
                "$": r"\$", "{": r"\{", "}": r"\}", "^": r"\textasciicircum{}",
                "~": r"\textasciitilde{}", "|": r"\textbar{}", "<": r"\textless{}",
                ">": r"\textgreater{}"}


def latex_text(text: str) -> str:
    r"""``text`` escaped for LaTeX text mode (``<=`` becomes ``$\le$``, ``|`` a bar, ...)."""
    out = str(text).replace("<=", "\x00le\x00").replace(">=", "\x00ge\x00")
    out = "".join(_TEX_ESCAPES.get(ch, ch) for ch in out)
    return out.replace("\x00le\x00", r"$\le$").replace("\x00ge\x00", r"$\ge$")


def _latex_cell(value, digits: int) -> str:
    if value is None:
        return "--"
    if isinstance(value, bool):
        return latex_text(str(value))
    if isinstance(value, int):
        return f"${value}$"
    if isinstance(value, float):
        mantissa, _, exponent = _round(value, digits).partition("e")
        return f"${mantissa}" + (f" \\times 10^{{{int(exponent)}}}" if exponent else "") + "$"
    if isinstance(value, sp.Basic):
        return "$" + sp.latex(value.xreplace({f: sp.Float(f, digits) for f in value.atoms(sp.Float)})) + "$"
    return latex_text(value)


def render(doc: dict, *, columns: list[str], fmt: str, notes: tuple = (), digits: int | None = None,
           rows: list | None = None, heads: dict | None = None) -> str:
    """The document ``doc`` in format ``fmt``.

    Parameters
    ----------
    doc : dict
        From :func:`document`.
    columns : list of str
        Keys of the rows shown by ``table``, ``csv`` and ``latex``.
    fmt : str
        One of :data:`FORMATS`.
    notes : tuple of str
        Lines printed after the header (text, csv) or below the table (latex).
    digits : int, optional
        Significant digits of ``table`` and ``latex`` numbers (default :data:`DEFAULT_DIGITS`).
    rows : list of dict, optional
        The rows to show when the document carries a ``result`` (default ``doc["rows"]``);
        their values may be sympy expressions.
    heads : dict, optional
        LaTeX column heads by column (math allowed); the others are the escaped names.
    """
    if fmt == "json":
        return json.dumps(doc, indent=1, allow_nan=False, default=str) + "\n"
    rows = doc["rows"] if rows is None else rows
    header = [f"fmq_theory {doc['version']}", f"command: {doc['command']}"]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if r.get(c) is None else r.get(c) for c in columns] for r in rows])
        return "".join(f"# {line}\n" for line in header + list(notes)) + buf.getvalue()
    digits = DEFAULT_DIGITS.get(fmt, 7) if digits is None else digits
    if fmt == "latex":
        heads = heads or {}
        lines = [f"% {line}" for line in header]
        align = "".join("r" if any(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
                                   for r in rows) else "l" for c in columns)
        lines += [r"\begin{tabular}{" + align + "}", r"\toprule",
                  " & ".join(heads.get(c, latex_text(c)) for c in columns) + r" \\", r"\midrule"]
        lines += [" & ".join(_latex_cell(r.get(c), digits) for c in columns) + r" \\" for r in rows]
        lines += [r"\bottomrule", r"\end{tabular}"]
        if notes:
            lines += [r"\par\smallskip", r"{\footnotesize"]
            lines += [latex_text(n) + r"\par" for n in notes]
            lines += ["}"]
        return "\n".join(lines) + "\n"
    if fmt != "table":
        raise ValueError(f"fmt {fmt!r} is not one of {', '.join(FORMATS)}")
    cells = [[_text_cell(r.get(c), digits) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [f"# {line}" for line in header]
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines += [f"# {line}" for line in notes]
    return "\n".join(lines) + "\n"
