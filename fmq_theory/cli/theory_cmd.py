"""``fmq distortion``, ``fmq rho`` and ``fmq report``: the law-level theory as citable numbers.

Every output starts with (table, csv, latex) or carries in every row (json) the package
version and the full parameter set -- law with all parameters, method(s), bits, n, and for
Monte Carlo the replicates and seed -- so a cited number can be regenerated.
"""

from __future__ import annotations

import math
import shlex
import sys

from fmq_theory import __version__
from fmq_theory.cli._output import add_format_arguments, check_digits, command_line, document, render
from fmq_theory.cli._spec import parse_bits
from fmq_theory.ledger import build_ledger, verdict_table
from fmq_theory.theory.distortion import distortions, effective_exponent
from fmq_theory.theory.laws import make_law
from fmq_theory.theory.rho import crossover, rho_table
from fmq_theory.vocab import LAW_BITS, LAW_METHODS, LAWS, METHODS

#: Largest ``--n``: the finite-n calculators draw or integrate over ``n`` weights.
MAX_N = 10**12


def parse_n(text: str) -> int:
    """``--n``: a positive integer, also written as ``1e6``."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--n {text!r} is not a number") from None
    if not math.isfinite(value) or value != int(value) or value < 2:
        raise ValueError(f"--n {text!r} must be an integer >= 2")
    if value > MAX_N:
        raise ValueError(f"--n {text!r} is too large: at most {MAX_N:.0e} weights per tensor "
                         "(larger n is the law itself: omit --n)")
    return int(value)


def _law_from_args(args):
    if args.law != "student-t" and args.nu is not None:
        raise ValueError(f"--nu {args.nu} applies only to --law student-t")
    if args.law != "gen-gaussian" and args.beta is not None:
        raise ValueError(f"--beta {args.beta} applies only to --law gen-gaussian")
    if args.law == "student-t" and args.nu is None:
        raise ValueError("--nu is required with --law student-t")
    if args.law == "gen-gaussian" and args.beta is None:
        raise ValueError("--beta is required with --law gen-gaussian")
    try:
        return make_law(args.law, nu=args.nu, beta=args.beta)
    except ValueError as exc:
        flag = "--nu" if args.law == "student-t" else "--beta" if args.law == "gen-gaussian" else "--law"
        raise ValueError(f"{flag}: {exc}") from None


def _check_replicates(args):
    if args.replicates is not None and args.replicates < 2:
        raise ValueError(f"--replicates {args.replicates} must be >= 2 (a 95% interval needs two)")
    if args.seed < 0:
        raise ValueError(f"--seed {args.seed} must be >= 0")


def _command_line(args):
    """The canonical command line that regenerates the output (every option spelled out)."""
    parts = ["fmq", args.command, "--law", args.law]
    for flag in ("nu", "beta"):
        if getattr(args, flag) is not None:
            parts += [f"--{flag}", repr(getattr(args, flag))]
    if args.command == "distortion":
        parts += ["--method", args.method]
    else:
        parts += ["--method", args.method, "--against", args.against]
    parts += ["--bits", args.bits]
    if args.n is not None:
        parts += ["--n", str(parse_n(args.n))]
    if args.replicates is not None:
        parts += ["--replicates", str(args.replicates)]
    parts += ["--seed", str(args.seed), "--format", args.format]
    if args.digits is not None:
        parts += ["--digits", str(args.digits)]
    return " ".join(shlex.quote(p) for p in parts)


#: Units of the theory commands' numbers (the laws have unit variance).
_UNITS = {"distortion": "per-weight mean squared error, unit-variance law (multiply by the weight variance)",
          "distortion_method": "per-weight mean squared error, unit-variance law",
          "distortion_reference": "per-weight mean squared error, unit-variance law",
          "rho": "dimensionless ratio", "effective_exponent": "dimensionless (2 means D ~ C 2^(-2b))",
          "bits": "bits per weight, nominal", "n": "weights per group"}
#: LaTeX column heads of the theory commands.
_HEADS = {"bits": "$b$", "distortion": "$D_Q(b)$", "how": "how", "interval_low": "95\\% low",
          "interval_high": "95\\% high", "effective_exponent": "$-\\log_2 \\frac{D(b)}{D(b-1)}$",
          "rho": "$\\rho(b)$", "distortion_method": "$D_{\\mathrm{method}}(b)$",
          "distortion_reference": "$D_{\\mathrm{against}}(b)$"}


def _emit(args, law, rows, columns, footer=()):
    mc = [r for r in rows if r.get("replicates")]
    notes = [f"law: {law.describe()}  (unit variance: scale = family scale parameter)"]
    if mc:
        notes.append(f"monte carlo: {mc[0]['replicates']} replicates of n = {mc[0]['n']}, seed {mc[0]['seed']} "
                     "(replicate r uses numpy default_rng([seed, r])); interval = 95% Student-t")
    parameters = {"law": args.law, "nu": args.nu, "beta": args.beta, "method": args.method,
                  **({"against": args.against} if args.command == "rho" else {}),
                  "bits": parse_bits(args.bits, max_bits=LAW_BITS[1]),
                  "n": None if args.n is None else parse_n(args.n), "replicates": args.replicates,
                  "seed": args.seed}
    doc = document(command=command_line(args, canonical=_command_line(args)), parameters=parameters,
                   units={k: v for k, v in _UNITS.items() if k in columns or k in rows[0]}, rows=rows,
                   interval_level=0.95 if mc else None)
    sys.stdout.write(render(doc, columns=columns, fmt=args.format, notes=tuple(notes) + tuple(footer),
                            digits=check_digits(args.digits), heads=_HEADS))
    return 0


def _interval_fields(interval):
    return {"interval_low": None if interval is None else float(interval[0]),
            "interval_high": None if interval is None else float(interval[1])}


def run_distortion(args) -> int:
    """Handler of ``fmq distortion``."""
    law = _law_from_args(args)
    bits = parse_bits(args.bits, max_bits=LAW_BITS[1])
    n = None if args.n is None else parse_n(args.n)
    _check_replicates(args)
    span = ([bits[0] - 1] if bits[0] > 1 else []) + bits  # one more row for the first exponent
    results = distortions(law, method=args.method, bits=span, n=n, replicates=args.replicates, seed=args.seed)
    by_bits = {r.bits: r for r in results}
    rows = []
    for b in bits:
        r = by_bits[b]
        prev = by_bits.get(b - 1)
        exponent = None if prev is None else effective_exponent(prev.distortion, r.distortion)
        rows.append({"law": r.law, "params": r.params, "method": r.method, "bits": b, "n": r.n,
                     "distortion": r.distortion, "how": r.how, **_interval_fields(r.interval),
                     "replicates": r.replicates, "seed": r.seed,
                     "effective_exponent": exponent})
    columns = ["bits", "distortion", "how", "interval_low", "interval_high", "effective_exponent"]
    footer = ["effective_exponent = -log2(D(b) / D(b-1)); 2 means D ~ C 2^(-2b)"]
    return _emit(args, law, rows, columns, footer)


def run_rho(args) -> int:
    """Handler of ``fmq rho``."""
    law = _law_from_args(args)
    bits = parse_bits(args.bits, max_bits=LAW_BITS[1])
    n = None if args.n is None else parse_n(args.n)
    _check_replicates(args)
    if n is None:
        for flag, m in (("--method", args.method), ("--against", args.against)):
            if m not in LAW_METHODS:
                raise ValueError(f"--n is required: {flag} {m} is defined only for a finite number of "
                                 f"weights (on the law itself use one of {', '.join(LAW_METHODS)})")
    table = rho_table(law, bits=bits, n=n, method=args.method, against=args.against,
                      replicates=args.replicates, seed=args.seed)
    rows = [{"law": r.law, "params": r.params, "method": r.method, "against": r.against, "bits": r.bits,
             "n": r.n, "rho": r.rho, "distortion": r.distortion_method,
             "distortion_method": r.distortion_method, "distortion_reference": r.distortion_reference,
             "how": r.how, **_interval_fields(r.interval), "replicates": r.replicates, "seed": r.seed,
             } for r in table]
    cross = crossover(table)
    footer = [f"rho = D({args.method}) / D({args.against}) at the same law, n and b"]
    footer.append("rho reaches 1 at b ~ %.3f (first computed b with rho >= 1: %d)" % (cross.bits, cross.first_bit)
                  if cross.bits is not None else "rho < 1 at every computed b")
    columns = ["bits", "rho", "distortion_method", "distortion_reference", "how", "interval_low",
               "interval_high"]
    return _emit(args, law, rows, columns, footer)


def run_report(args) -> int:
    """Handler of ``fmq report``: the claims ledger."""
    ids = None if args.claim is None else [args.claim]
    checks = build_ledger(ids=ids, progress=sys.stderr.isatty())
    out = sys.stdout
    if args.format == "json":
        doc = document(command=command_line(args), parameters={"claim": args.claim}, units={},
                       rows=[dict(c.__dict__) for c in checks], interval_level=None)
        out.write(render(doc, columns=[], fmt="json"))
        return 0
    if args.format == "markdown":
        out.write(f"Computed by fmq_theory {__version__} with `{command_line(args)}`:\n\n")
        out.write(verdict_table(checks, link=lambda text, page: f"[{text}]({page}.md)") + "\n")
        return 0
    out.write(f"# Claims ledger of arXiv 2511.11418, computed by fmq_theory {__version__}\n")
    out.write(f"# command: {command_line(args)}\n\n")
    for c in checks:
        out.write(f"[{c.id}] {c.statement}\n")
        out.write(f"    paper claim: {c.claim}\n")
        out.write(f"    verdict:     {c.verdict.upper()}" + (f" -- {c.condition}" if c.condition else "") + "\n")
        out.write(f"    decided by:  {c.deciding}\n")
        out.write(f"    evidence:    {c.evidence}\n")
        out.write(f"    reproduce:   {c.command}\n\n")
    return 0


def _add_law_args(p):
    p.add_argument("--law", required=True, choices=LAWS, help="weight law (unit variance)")
    p.add_argument("--nu", type=float, default=None, help="Student-t degrees of freedom (> 2)")
    p.add_argument("--beta", type=float, default=None, help="generalized-Gaussian shape (> 0)")


def _add_common(p):
    p.add_argument("--bits", required=True, metavar="SPEC", help="B or LO:HI (inclusive), 1..%d" % LAW_BITS[1])
    p.add_argument("--n", default=None, metavar="N",
                   help="weights per tensor (e.g. 2304 or 1e6); omit for the law itself")
    add_format_arguments(p)
    p.add_argument("--replicates", type=int, default=None,
                   help="Monte Carlo replicates (default: about 1e7 weights in all, 10..2000)")
    p.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (default 0)")


def register(subparsers) -> None:
    """Add ``distortion``, ``rho`` and ``report`` to the ``fmq`` parser."""
    p = subparsers.add_parser("distortion", help="per-weight MSE D_Q(b) of a quantizer on a weight law",
                              description="Exact (law), finite-n exact/quadrature (uniform_minmax) or "
                                          "Monte Carlo per-weight MSE, with the effective exponent.")
    _add_law_args(p)
    p.add_argument("--method", required=True, choices=METHODS)
    _add_common(p)
    p.set_defaults(func=run_distortion)

    p = subparsers.add_parser("rho", help="rho(b) = D_method(b) / D_reference(b)",
                              description="rho(b) of one quantizer against a reference on a weight law.")
    _add_law_args(p)
    p.add_argument("--method", choices=METHODS, default="equal_mass")
    p.add_argument("--against", choices=METHODS, default="uniform_minmax")
    _add_common(p)
    p.set_defaults(func=run_rho)

    p = subparsers.add_parser("report", help="the claims ledger: each claim of the paper with its computed verdict")
    p.add_argument("--claim", default=None, help="only this claim id (1a, 1b, 1c, 2a, 2b, 2c, 2d, 3, 4)")
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table",
                   help="table (default), json, or markdown (the verdicts at a glance, as in the README)")
    p.set_defaults(func=run_report)
