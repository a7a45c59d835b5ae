"""``fmq data``: prepare the cached MNIST / FashionMNIST arrays (``make data`` runs it).

::

    fmq data [prepare] [--dataset mnist fashion_mnist] [--root DIR]

Each dataset is read from its source once and cached with its checksums
(:func:`fmq_theory.harness.data.prepare`); a dataset already cached is left as it is, so a
second run does nothing but print the cache.  A missing source exits with status 1 and a
message naming what to install.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fmq_theory.harness.data import DATASETS, DataUnavailableError, prepare

__all__ = ["register", "run"]


def register(subparsers) -> None:
    """Add the ``data`` sub-command."""
    p = subparsers.add_parser("data", help="prepare the cached MNIST / FashionMNIST arrays")
    p.add_argument("action", nargs="?", choices=["prepare"], default="prepare",
                   help="what to do with the cache (prepare, the default, is the only action)")
    p.add_argument("--dataset", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--root", type=Path, default=None,
                   help="cache folder (default $FMQ_DATA_DIR, else data/ at the repository root)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Handler of ``fmq data``: prepare every named dataset and print its manifest entry."""
    try:
        for name in args.dataset:
            entry = prepare(name, root=args.root)
            print(f"{name}: {entry['file']} train={entry['num_train']} test={entry['num_test']} "
                  f"sha256(test)={entry['sha256']['test'][:16]}...")
    except DataUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
