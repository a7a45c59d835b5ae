"""Markdown tables for the book's executed pages.

The notebooks render their tables with :func:`markdown_table` and escape library strings
with :func:`escape_markdown`, so that every table in the book goes through one renderer.
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


def _cell(value, spec: str) -> str:
    """``format(value, spec)``; a number in e-notation becomes ``$m \\times 10^{e}$`` (math, so a
    browser never breaks it inside the exponent)."""
    text = format(value, spec)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        match = re.fullmatch(r"([-+]?[0-9.]+)e([-+][0-9]+)", text)
        if match and value == 0:
            return "0"
        if match:
            return f"${match.group(1)} \\times 10^{{{int(match.group(2))}}}$"
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
        cells = [_cell(cell, spec).replace("|", "\\|") for cell, spec in zip(row, formats)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


__all__ = ["escape_markdown", "markdown_table"]
