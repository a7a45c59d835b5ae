"""Merge the csv files of one or several ``fmq bound-check`` GPU calls into one table and replot it.

``scripts/gpu_bound_check.sh`` runs one dataset's grid (3 methods x 7 bit widths) in one
10-minute device call; a call cut short by its time limit is completed by another call with
the missing ``BITS``, and the pieces are merged here, keyed by ``(method, bits)``; a cell present
in several pieces must agree in its measured change (the runs are deterministic for a fixed
seed), and the later piece wins.

    python scripts/merge_bound_check.py --dataset mnist piece1.csv [piece2.csv ...]
writes ``results/bound_check_<dataset>.csv`` and ``results/figures/bound_check_<dataset>.png``.
Pieces are read and the table written by :data:`fmq_theory.results.schema.BOUND_CHECK`, so
merging the committed table with itself gives it back byte for byte.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from fmq_theory.results.plots import bound_check_title, plot_bound_check
from fmq_theory.results.schema import BOUND_CHECK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("pieces", nargs="+", type=Path)
    args = parser.parse_args()
    cells: dict[tuple, dict] = {}
    for piece in args.pieces:
        for row in BOUND_CHECK.read(piece):
            if row["dataset"] != args.dataset or tuple(row) != BOUND_CHECK.names:
                raise ValueError(f"{piece}: not a bound-check csv of {args.dataset} with the current columns")
            key = (row["method"], row["bits"])
            old = cells.get(key)
            if old is not None and not math.isclose(old["measured_dfid"], row["measured_dfid"], rel_tol=1e-6, abs_tol=1e-9):
                raise ValueError(f"{piece}: {key} measured {row['measured_dfid']} here and {old['measured_dfid']} before")
            cells[key] = row
    rows = sorted(cells.values(), key=lambda r: (r["bits"], r["method"]))
    out = Path("results") / f"bound_check_{args.dataset}.csv"
    BOUND_CHECK.write(out, rows)
    figure = Path("results") / "figures" / f"bound_check_{args.dataset}.png"
    plot_bound_check(rows, figure, title=bound_check_title(args.dataset, solver=rows[0]["solver"], steps=rows[0]["steps"]))
    print(f"wrote {out} ({len(rows)} rows) and {figure}")


if __name__ == "__main__":
    main()
