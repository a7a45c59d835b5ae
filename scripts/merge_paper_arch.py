"""Merge rows measured again on the paper's network into its committed table, checking the network.

A lease that carries a kept network back (``scripts/gpu_lease.sh``; e.g. ``KINDS=nfe`` for the NFE
check with its paired intervals) returns its own ``paper_arch_<dataset>.csv``. Its rows replace the
committed rows of the same key (:attr:`fmq_theory.results.schema.PAPER_ARCH`'s ``key``: data set,
method, bits, granularity, protocol, samples, solver, steps, seed) and new keys are added, in the
committed file's order; every row of both files must name one checkpoint SHA-256, so that the
table stays the table of one network::

    python scripts/merge_paper_arch.py results/paper_arch_mnist.csv FILES_AT/paper_arch_mnist.csv

The table is written atomically by :data:`~fmq_theory.results.schema.PAPER_ARCH` (merging a table
with itself gives it back byte for byte); nothing is written if a check fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fmq_theory.results.schema import PAPER_ARCH


def merged(committed: list[dict], measured: list[dict]) -> list[dict]:
    """``committed`` with each row of ``measured`` in place of the row of its key (new keys last).

    Raises
    ------
    ValueError
        ``measured`` empty, or the two hold rows of more than one checkpoint (naming them).
    """
    if not measured:
        raise ValueError("measured: no rows to merge")
    networks = {r["checkpoint_sha256"] for r in committed + measured}
    if len(networks) != 1:
        raise ValueError(f"the rows name {len(networks)} checkpoints {sorted(str(n)[:16] for n in networks)}: "
                         "a table holds the rows of one network")
    new = {PAPER_ARCH.row_key(r): r for r in measured}
    out = [new.pop(PAPER_ARCH.row_key(r), r) for r in committed]
    return out + list(new.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", type=Path, help="the committed results/paper_arch_<dataset>.csv (rewritten)")
    parser.add_argument("measured", type=Path, help="a lease's paper_arch_<dataset>.csv")
    args = parser.parse_args()
    committed, measured = PAPER_ARCH.read(args.table), PAPER_ARCH.read(args.measured)
    rows = merged(committed, measured)
    PAPER_ARCH.write(args.table, rows)
    replaced = len(committed) + len(measured) - len(rows)
    print(f"{args.table}: {replaced} rows replaced, {len(rows) - len(committed)} added, {len(rows)} in all")


if __name__ == "__main__":
    main()
