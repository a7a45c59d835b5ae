"""The ``fmq`` command.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the handler
(``handler(args) -> int``).  The dispatcher below only wires them together, and is the
one error boundary of the command line: an expected error (:data:`EXPECTED_ERRORS`: bad
input, a missing, unreadable or unwritable file, a refused parameter range) is printed as
one line ``fmq COMMAND: error: ...`` that names the argument or file, with exit status 2;
an interruption (SIGINT) exits with 130 after the files being written are cleaned up; any
other exception is a bug: its traceback is kept and followed by a line asking for a report.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

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


#: Exceptions that mean bad input or an environment the user can fix (a file that is missing,
#: unreadable, unwritable or a directory; a full disk; a refused parameter range): one line,
#: exit status 2.  Everything else is a bug in fmq_theory.
EXPECTED_ERRORS = (ValueError, OSError)

#: Printed after the traceback of an unexpected exception.
BUG_REPORT = ("this is a bug in fmq_theory {version}, not a problem with your input: please report it "
              "on the fmq_theory issue tracker with the command line above and this traceback")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and os.fspath(exc.filename) not in text:
        text = f"{text}: {exc.filename!r}"
    return text


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
    except EXPECTED_ERRORS as exc:
        print(f"fmq {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fmq {args.command}: interrupted; no output file was changed", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(f"fmq {args.command}: {BUG_REPORT.format(version=__version__)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
