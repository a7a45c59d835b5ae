"""The ``fmq`` command.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the handler
(``handler(args) -> int``).  The dispatcher below only wires them together.
"""

from __future__ import annotations

import argparse
import sys

from fmq_theory import __version__
from fmq_theory.cli import (
    asymptotics_cmd,
    bound_check_cmd,
    bound_cmd,
    cite_cmd,
    data_cmd,
    features_cmd,
    harness_cmd,
    plan_cmd,
    quantize_cmd,
    theory_cmd,
)

#: Modules of :mod:`fmq_theory.cli` that register sub-commands, in help order.
COMMAND_MODULES = (
    quantize_cmd,
    theory_cmd,
    data_cmd,
    features_cmd,
    harness_cmd,
    asymptotics_cmd,
    bound_cmd,
    bound_check_cmd,
    plan_cmd,
    cite_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="fmq",
        description="fmq_theory: OT quantization of flow-matching models, checked.",
    )
    parser.add_argument("--version", action="version", version=f"fmq_theory {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``fmq`` command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the command line the outputs cite
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"fmq {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
