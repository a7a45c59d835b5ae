"""``fmq asymptotics``: the high-resolution forms of the distortion.

``fmq asymptotics --law L [--nu NU] [--beta BETA] [--n N] [--at-bits SPEC]
[--compare-bits SPEC] [--format F]`` prints, per method, the leading form of ``D_Q(b)``
(:mod:`fmq_theory.theory.symbolic`), its constant and effective exponent; with ``--compare-bits``
also the exact distortion (:mod:`fmq_theory.theory.distortion`) and the ratio exact / leading.
"""

from __future__ import annotations

import sympy as sp
from tqdm import tqdm

from fmq_theory.cli._output import add_format_arguments, check_digits, command_line, document, render
from fmq_theory.cli._spec import add_law_arguments, check_group_size, law_kwargs, parse_bits
from fmq_theory.theory import symbolic
from fmq_theory.theory.distortion import distortions
from fmq_theory.theory.laws import make_law
from fmq_theory.vocab import LAW_BITS, SYMBOLIC_BITS


def _asymptotics(args) -> int:
    kw = law_kwargs(args)
    n = check_group_size(args.n)
    at_bits = parse_bits(args.at_bits, flag="--at-bits", max_bits=SYMBOLIC_BITS[1])
    if any(b < 2 for b in at_bits):
        raise ValueError(f"--at-bits: the asymptotic forms need bits >= 2, got {args.at_bits!r}")
    compare = parse_bits(args.compare_bits, flag="--compare-bits", max_bits=SYMBOLIC_BITS[1]) if args.compare_bits else ()
    if any(b < 2 or b > LAW_BITS[1] for b in compare):
        raise ValueError(f"--compare-bits must lie in 2..{LAW_BITS[1]}, got {args.compare_bits!r}")
    params = {"law": args.law, "variance": 1.0, **{k: v for k, v in kw.items() if v is not None},
              "n_uniform_minmax": n}
    forms = symbolic.asymptotic_table(args.law, n=n, **kw)
    shown, rows = [], []
    for f in forms:
        sym = {"method": f.method, "form": f.expression, "constant": f.constant,
               "constant_value": f.constant_value, "rate": f.rate, "exponent": f.exponent,
               "exponent_limit": f.exponent_limit,
               **{f"exponent_b{b}": f.effective_exponent(b) for b in at_bits}}
        shown.append(sym)
        rows.append({**{k: _short(v) if isinstance(v, sp.Basic) else v for k, v in sym.items()},
                     "law": f.law, "params": dict(f.params), "assumptions": list(f.assumptions)})
    comparison = _comparison(args, forms, compare, n, kw) if compare else []
    doc = document(command=command_line(args), parameters=params,
                   units={"form": "per-weight mean squared error of a unit-variance law, as a function of b",
                          "constant_value": "per-weight mean squared error", "exponent_limit": "dimensionless",
                          "exact": "per-weight mean squared error", "leading": "per-weight mean squared error",
                          "ratio": "dimensionless"},
                   result={"asymptotics": rows, "comparison": comparison}, interval_level=None)
    digits = check_digits(args.digits)
    if args.format == "json":
        print(render(doc, columns=[], fmt="json"), end="")
        return 0
    columns = ["method", "form", "constant_value", "exponent_limit", *(f"exponent_b{b}" for b in at_bits)]
    heads = {"method": "method", "form": r"leading form of $D_Q(b)$", "constant_value": "constant",
             "exponent_limit": r"exponent as $b \to \infty$",
             **{f"exponent_b{b}": f"exponent at $b = {b}$" for b in at_bits}}
    text = render(doc, columns=columns, fmt=args.format, rows=shown, digits=digits, heads=heads,
                  notes=(f"law: {args.law} with unit variance; uniform_minmax on groups of n = {n}",))
    if comparison:
        text += "\n" + render(doc, columns=["method", "bits", "n", "how", "exact", "leading", "ratio"],
                               fmt=args.format, rows=comparison, digits=digits,
                               heads={"bits": "$b$", "exact": "exact $D_Q(b)$", "leading": "leading form",
                                      "ratio": "exact / leading"})
    print(text, end="")
    return 0


def _short(expr) -> str:
    """The expression as text with its floating-point numbers shown to 10 digits."""
    return str(expr.xreplace({f: sp.Float(f, 10) for f in expr.atoms(sp.Float)}))


def _comparison(args, forms, bits, n, kw) -> list[dict]:
    law = make_law(args.law, **{k: v for k, v in kw.items() if v is not None})
    out = []
    for f in tqdm(forms, desc="exact distortions", unit="method", disable=None):
        group = n if f.method == "uniform_minmax" else None
        for d in distortions(law, method=f.method, bits=list(bits), n=group):
            lead = f.distortion(d.bits)
            out.append({"method": f.method, "bits": d.bits, "n": d.n, "how": d.how,
                        "exact": d.distortion,
                        "interval": None if d.interval is None else list(d.interval),
                        "leading": lead, "ratio": d.distortion / lead})
    return out


def register(subparsers) -> None:
    """Add the ``asymptotics`` sub-command."""
    p = subparsers.add_parser(
        "asymptotics",
        help="leading high-resolution forms of D_Q(b) with constants and effective exponents",
        description="Leading form of the distortion D_Q(b) of uniform_minmax, uniform_mse, "
                    "lloyd_max and equal_mass on a unit-variance law (fmq_theory.theory.symbolic).",
    )
    add_law_arguments(p, required=True)
    p.add_argument("--n", type=int, default=2304,
                   help="group size for uniform_minmax (the law's own range is infinite; default 2304)")
    p.add_argument("--at-bits", default="8", metavar="SPEC",
                   help="bits at which to evaluate the effective exponent (3, 2:8 or 4,8,12; default 8)")
    p.add_argument("--compare-bits", default=None, metavar="SPEC",
                   help="also compute the exact distortion at these bits (2..12) and the ratio "
                        "exact / leading form")
    add_format_arguments(p)
    p.set_defaults(func=_asymptotics)
