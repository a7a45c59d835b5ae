"""Markdown tables for the book's executed pages.

The notebooks render their tables with :func:`markdown_table` and escape library strings
with :func:`escape_markdown`, so that every table in the book goes through one renderer;
:func:`typeset_numbers` keeps e-notation numbers in other Markdown from breaking across lines.
"""

from __future__ import annotations

import re
from typing import Sequence


def escape_markdown(text: str) -> str:
    r"""Escape the characters MyST Markdown would interpret, so ``text`` renders literally.

    For library strings (claim statements, evidence with ``D*4^8``, names with
    underscores) shown inside a Markdown output.

    Examples
    --------
    >>> print(escape_markdown("D*4^8 = 4.07, uniform_minmax, $5, a|b"))
    D\*4^8 = 4.07, uniform\_minmax, \$5, a\|b
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return re.sub(r"([\\`*_{}\[\]<>|$#])", r"\\\1", text)


#: A number in e-notation, not part of a longer word or number.
_E_NUMBER = re.compile(r"(?<![\w.])([-+]?[0-9]+(?:\.[0-9]*)?)e([-+][0-9]+)(?![\w.])")


def typeset_numbers(text: str) -> str:
    """Every number in e-notation in ``text`` as math, ``$m \\times 10^{e}$``, so that a browser
    never breaks it inside the exponent (for Markdown already escaped by :func:`escape_markdown`).

    Examples
    --------
    >>> print(typeset_numbers("dFID 1.5e-05 in [0, 2e+03]; b3e-4x stays"))
    dFID $1.5 \\times 10^{-5}$ in [0, $2 \\times 10^{3}$]; b3e-4x stays
    """
    return _E_NUMBER.sub(lambda m: f"${m.group(1)} \\times 10^{{{int(m.group(2))}}}$", text)


def format_cell(value, spec: str) -> str:
    """``format(value, spec)``, a number in e-notation typeset as math (:func:`typeset_numbers`)
    and a zero in e-notation as ``0``.

    Examples
    --------
    >>> print(format_cell(1.5e-05, ".3g"), format_cell(0.25, ".3g"), format_cell(0.0, ".2e"))
    $1.5 \\times 10^{-5}$ 0.25 0
    """
    text = format(value, spec)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value == 0 and _E_NUMBER.fullmatch(text):
            return "0"
        return typeset_numbers(text)
    return text


def markdown_table(*, header: Sequence[str], rows: Sequence[Sequence], formats: Sequence[str] | None = None) -> str:
    """Render rows as a Markdown (MyST) table, for notebooks that display tables.

    Parameters
    ----------
    header : sequence of str
        Column titles (Markdown, so math such as ``$D/D_{LM}$`` works).
    rows : sequence of sequences
        One sequence per row, ``len(header)`` cells each.
    formats : sequence of str, optional
        One :func:`format` spec per column (e.g. ``".3g"``; ``""`` leaves the cell as is).
        Numbers that come out in e-notation are typeset as math, ``$m \\times 10^{e}$``.

    Returns
    -------
    str
        The table; display it with ``IPython.display.Markdown``.

    Examples
    --------
    >>> print(markdown_table(header=["b", "D"], rows=[[2, 0.1175]], formats=["", ".3f"]))
    | b | D |
    |---|---|
    | 2 | 0.117 |
    >>> print(markdown_table(header=["D"], rows=[[5.995996e-04]], formats=[".4e"]).splitlines()[-1])
    | $5.9960 \\times 10^{-4}$ |
    """
    header = [str(h).replace("|", "\\|") for h in header]
    formats = [""] * len(header) if formats is None else list(formats)
    if len(formats) != len(header):
        raise ValueError(f"formats has {len(formats)} entries, header has {len(header)}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} cells, header has {len(header)}")
        cells = [format_cell(cell, spec).replace("|", "\\|") for cell, spec in zip(row, formats)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["escape_markdown", "format_cell", "markdown_table", "typeset_numbers"]
