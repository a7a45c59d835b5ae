"""Rendering of ``fmq`` result rows as an aligned table, csv or a LaTeX tabular."""

from __future__ import annotations

import csv
import io

#: Output formats of the theory commands.
FORMATS = ("table", "json", "csv", "latex")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render(rows: list[dict], columns: list[str], fmt: str, header: str) -> str:
    """Rows as an aligned text table, csv, or a LaTeX tabular (json is handled by the caller)."""
    cells = [[_fmt(r[c]) for c in columns] for r in rows]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
        return f"# {header}\n" + buf.getvalue()
    if fmt == "latex":
        def esc(s: str) -> str:
            return s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace(
                "%", r"\%").replace("#", r"\#").replace("^", r"\^{}")

        lines = [f"% {header}", r"\begin{tabular}{" + "l" * len(columns) + "}", r"\hline",
                 " & ".join(esc(c) for c in columns) + r" \\", r"\hline"]
        lines += [" & ".join(esc(c) for c in row) + r" \\" for row in cells]
        lines += [r"\hline", r"\end{tabular}"]
        return "\n".join(lines) + "\n"
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [header, "  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"
