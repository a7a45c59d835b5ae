"""Promote a paper network's rows from ``results/pending/`` once they are complete.

Rows of the paper's 55.7M network wait in ``results/pending/`` (its README says why) until every
row of the committed table ``results/paper_arch_<dataset>.csv`` has been measured on that network
too. Then this script moves, by renames only:

1. the committed table and its training record aside, to ``paper_arch_<dataset>_<c>.csv`` and
   ``paper_arch_<dataset>_<c>_train.json``, where ``<c>`` is the first 8 hex digits of its
   checkpoint's SHA-256 (the paper-setup page compares such tables with the current one);
2. the pending table, its training record and its repeats (``_train_repeat*.json``) into their
   places in ``results/``.

::

    python scripts/promote_pending.py --dataset mnist            # checks, then moves
    python scripts/promote_pending.py --dataset mnist --dry-run  # checks, and says what it would move

Every check runs before the first file moves, and no target may exist, so no file is lost or
overwritten: the pending rows must hold every key of the committed table
(:attr:`fmq_theory.results.schema.PAPER_ARCH`'s ``key``), and every pending row must name the
checkpoint of the pending training record. What is left by hand is printed: the page's
``OTHERS`` entry for the table set aside, and the README's verdict table
(``fmq report --format markdown``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from fmq_theory.results.schema import PAPER_ARCH

ROOT = Path(__file__).resolve().parents[1]


def promotion(results: Path, dataset: str) -> list[tuple[Path, Path]]:
    """The renames that promote ``results/pending/paper_arch_<dataset>``'s rows, in order, each
    ``(source, target)``.

    Raises
    ------
    FileNotFoundError
        A table or training record is missing (naming it).
    ValueError
        ``dataset`` is not a plain name, the pending rows lack keys of the committed table or name
        another checkpoint than their training record, or a target exists (naming each).
    """
    if not dataset or not dataset.replace("_", "").isalnum():
        raise ValueError(f"dataset: {dataset!r} is not a data set's name (letters, digits, '_')")
    stem = f"paper_arch_{dataset}"
    pending = results / "pending"
    files = {"table": results / f"{stem}.csv", "train": results / f"{stem}_train.json",
             "pending table": pending / f"{stem}.csv", "pending train": pending / f"{stem}_train.json"}
    for what, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"{what}: no file {path}")
    train, pending_train = (json.loads(files[k].read_text()) for k in ("train", "pending train"))
    committed, waiting = PAPER_ARCH.read(files["table"]), PAPER_ARCH.read(files["pending table"])
    missing = {PAPER_ARCH.row_key(r) for r in committed} - {PAPER_ARCH.row_key(r) for r in waiting}
    if missing:
        raise ValueError(f"{files['pending table']}: {len(missing)} rows of {files['table']} not measured yet: "
                         + "; ".join(" ".join(str(v) for v in key) for key in sorted(missing, key=str)))
    shas = {r["checkpoint_sha256"] for r in waiting} - {pending_train["checkpoint_sha256"]}
    others = sorted(str(sha)[:16] for sha in shas)
    if others:
        raise ValueError(f"{files['pending table']}: rows of checkpoints {others}, not of its training record's "
                         f"{pending_train['checkpoint_sha256'][:16]}")
    aside = f"{stem}_{train['checkpoint_sha256'][:8]}"
    moves = [(files["table"], results / f"{aside}.csv"), (files["train"], results / f"{aside}_train.json"),
             (files["pending table"], files["table"]), (files["pending train"], files["train"])]
    moves += [(p, results / p.name) for p in sorted(pending.glob(f"{stem}_train_repeat*.json"))]
    sources = {source for source, _ in moves}
    taken = [str(target) for _, target in moves if target.exists() and target not in sources]
    if taken:
        raise ValueError(f"targets exist: {', '.join(taken)}; nothing was moved")
    return moves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="the data set of the table (mnist, fashion_mnist)")
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="the results folder")
    parser.add_argument("--dry-run", action="store_true", help="check and list the moves; move nothing")
    args = parser.parse_args()
    try:
        moves = promotion(args.results, args.dataset)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(1, f"promote_pending.py: nothing moved: {error}\n")
    for source, target in moves:
        print(f"{'would move' if args.dry_run else 'moved'} {source} -> {target}")
        if not args.dry_run:
            os.replace(source, target)
    aside = moves[0][1].stem
    print(f"By hand: notebooks/paper_setup.md's OTHERS[{args.dataset!r}] names {aside!r} (its fate) in place of the "
          f"pending table; results/pending/README.md; README.md's verdict table (fmq report --format markdown).")


if __name__ == "__main__":
    main()
