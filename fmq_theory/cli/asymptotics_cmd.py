"""``fmq asymptotics`` and ``fmq bound``: the high-resolution forms and the FID bound chain.

``fmq asymptotics --law L [--nu NU] [--beta BETA] [--n N] [--at-bits SPEC]
[--compare-bits SPEC] [--format F]`` prints, per method, the leading form of ``D_Q(b)``
(:mod:`fmq_theory.theory.symbolic`), its constant and effective exponent; with ``--compare-bits``
also the exact distortion (:mod:`fmq_theory.theory.distortion`) and the ratio exact / leading.

``fmq bound --L-theta .. --L-x .. --lip-features .. --fid-fp .. --n-params ..
[--solver S --steps N] (--weight-mse X | --law L --method M --bits SPEC [--n N])`` prints
the chain of :mod:`fmq_theory.theory.fid_chain` link by link with each link's value and
assumptions.
"""

from __future__ import annotations

import argparse
import csv
import io
import json

from fmq_theory import __version__
from fmq_theory.cli._spec import parse_bits

FORMATS = ("table", "json", "csv", "latex")
_LAWS = ("gaussian", "laplace", "student-t", "gen-gaussian")


def _law_kwargs(args) -> dict:
    if args.law == "student-t" and args.nu is None:
        raise ValueError("--nu is required for --law student-t")
    if args.law == "gen-gaussian" and args.beta is None:
        raise ValueError("--beta is required for --law gen-gaussian")
    if args.law != "student-t" and args.nu is not None:
        raise ValueError(f"--nu applies only to --law student-t, not {args.law!r}")
    if args.law != "gen-gaussian" and args.beta is not None:
        raise ValueError(f"--beta applies only to --law gen-gaussian, not {args.law!r}")
    if args.law == "student-t" and not args.nu > 2:
        raise ValueError(f"--nu must be > 2 (finite variance), got {args.nu!r}")
    if args.law == "gen-gaussian" and not args.beta > 0:
        raise ValueError(f"--beta must be > 0, got {args.beta!r}")
    return {"nu": args.nu, "beta": args.beta}


def _check_n(n) -> int:
    if n < 2:
        raise ValueError(f"--n must be >= 2, got {n!r}")
    return n


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _render(rows: list[dict], columns: list[str], fmt: str, header: str) -> str:
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


# ---------------------------------------------------------------------------------------------
# fmq asymptotics
# ---------------------------------------------------------------------------------------------


def _asymptotics(args) -> int:
    from fmq_theory.theory import symbolic

    kw = _law_kwargs(args)
    n = _check_n(args.n)
    at_bits = parse_bits(args.at_bits, flag="--at-bits", max_bits=64)
    if any(b < 2 for b in at_bits):
        raise ValueError(f"--at-bits: the asymptotic forms need bits >= 2, got {args.at_bits!r}")
    compare = parse_bits(args.compare_bits, flag="--compare-bits", max_bits=64) if args.compare_bits else ()
    if any(b < 2 or b > 12 for b in compare):
        raise ValueError(f"--compare-bits must lie in 2..12, got {args.compare_bits!r}")
    params = {"law": args.law, "variance": 1.0, **{k: v for k, v in kw.items() if v is not None},
              "n_uniform_minmax": n}
    forms = symbolic.asymptotic_table(args.law, n=n, **kw)
    rows = []
    for f in forms:
        row = {
            "law": f.law,
            "params": dict(f.params),
            "method": f.method,
            "form": _short(f.expression),
            "constant": _short(f.constant),
            "constant_value": f.constant_value,
            "rate": _short(f.rate),
            "exponent": _short(f.exponent),
            "exponent_limit": f.exponent_limit,
        }
        for b in at_bits:
            row[f"exponent_b{b}"] = f.effective_exponent(b)
        row["assumptions"] = list(f.assumptions)
        row["version"] = __version__
        rows.append(row)
    comparison = _comparison(args, forms, compare, n, kw) if compare else []
    header = (f"fmq_theory {__version__}  fmq asymptotics  "
              + "  ".join(f"{k}={v}" for k, v in params.items()))
    if args.format == "json":
        print(json.dumps({"version": __version__, "params": params, "asymptotics": rows,
                          "comparison": comparison}, indent=2))
        return 0
    columns = ["method", "form", "constant", "constant_value", "exponent", "exponent_limit",
               *(f"exponent_b{b}" for b in at_bits)]
    text = _render(rows, columns, args.format, header)
    if comparison:
        text += "\n" + _render(comparison, ["method", "bits", "n", "how", "exact", "leading", "ratio"],
                               args.format, header + "  (exact / leading form)")
    print(text, end="")
    return 0


def _short(expr) -> str:
    """The expression as text with its floating-point numbers shown to 10 digits."""
    import sympy as sp

    return str(expr.xreplace({f: sp.Float(f, 10) for f in expr.atoms(sp.Float)}))


def _comparison(args, forms, bits, n, kw) -> list[dict]:
    from tqdm import tqdm

    from fmq_theory.theory.distortion import distortions
    from fmq_theory.theory.laws import make_law

    law = make_law(args.law, **{k: v for k, v in kw.items() if v is not None})
    out = []
    for f in tqdm(forms, desc="exact distortions", unit="method", disable=None):
        group = n if f.method == "uniform_minmax" else None
        for d in distortions(law, method=f.method, bits=list(bits), n=group):
            lead = f.distortion(d.bits)
            out.append({"method": f.method, "bits": d.bits, "n": d.n, "how": d.how,
                        "exact": d.distortion,
                        "interval": None if d.interval is None else list(d.interval),
                        "leading": lead, "ratio": d.distortion / lead, "version": __version__})
    return out


# ---------------------------------------------------------------------------------------------
# fmq bound
# ---------------------------------------------------------------------------------------------


def _bound(args) -> int:
    from fmq_theory.theory import fid_chain as chain

    from_law = args.law is not None or args.method is not None or args.bits is not None
    if args.weight_mse is not None and from_law:
        raise ValueError("--weight-mse cannot be combined with --law/--method/--bits")
    if args.weight_mse is None and not from_law:
        raise ValueError("give either --weight-mse or --law, --method and --bits")
    if args.solver == "exact" and args.steps is not None:
        raise ValueError("--steps applies only to a discrete --solver (euler, midpoint, heun)")
    if args.solver != "exact" and args.steps is None:
        raise ValueError(f"--steps is required for --solver {args.solver}")
    constants = {"n_params": args.n_params, "lipschitz_theta": args.L_theta,
                 "lipschitz_x": args.L_x, "lip_features": args.lip_features, "fid_fp": args.fid_fp,
                 "solver": args.solver, "steps": args.steps, "horizon": args.horizon}
    _check_constants(args)
    if args.weight_mse is not None:
        if not args.weight_mse >= 0:
            raise ValueError(f"--weight-mse must be >= 0, got {args.weight_mse!r}")
        sources = [{"bits": None, "mse": args.weight_mse, "how": "given"}]
        params = {"weight_mse": args.weight_mse, **constants}
    else:
        sources, params = _distortions_for_bound(args, constants)
    results = []
    for src in sources:
        c = chain.fid_chain(mse=src["mse"], **constants)
        results.append({**src, "fid_bound": c.fid_bound, "delta_fid": c.delta_fid,
                        "links": [{"name": link.name, "value": link.value,
                                   "inputs": {k: v for k, v in link.inputs},
                                   "details": {k: v for k, v in link.details},
                                   "assumptions": list(link.assumptions)} for link in c.links]})
    header = (f"fmq_theory {__version__}  fmq bound  "
              + "  ".join(f"{k}={v}" for k, v in params.items()))
    if args.format == "json":
        print(json.dumps({"version": __version__, "params": params, "chains": results}, indent=2))
        return 0
    rows = []
    for r in results:
        for i, link in enumerate(r["links"], start=1):
            rows.append({"bits": r["bits"] if r["bits"] is not None else "-", "mse": r["mse"],
                         "link": i, "name": link["name"], "value": link["value"],
                         "assumptions": " | ".join(link["assumptions"])})
    print(_render(rows, ["bits", "mse", "link", "name", "value", "assumptions"], args.format, header),
          end="")
    return 0


def _check_constants(args) -> None:
    for flag, value in (("--L-theta", args.L_theta), ("--L-x", args.L_x),
                        ("--lip-features", args.lip_features), ("--fid-fp", args.fid_fp),
                        ("--horizon", args.horizon)):
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"{flag} must be finite and >= 0, got {value!r}")
    if args.n_params < 1:
        raise ValueError(f"--n-params must be >= 1, got {args.n_params!r}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps!r}")


def _distortions_for_bound(args, constants):
    from fmq_theory.theory.distortion import distortions
    from fmq_theory.theory.laws import make_law

    for flag, value in (("--law", args.law), ("--method", args.method), ("--bits", args.bits)):
        if value is None:
            raise ValueError(f"{flag} is required with --law/--method/--bits")
    kw = {k: v for k, v in _law_kwargs(args).items() if v is not None}
    bits = parse_bits(args.bits, flag="--bits", max_bits=64)
    n = None if args.n is None else _check_n(args.n)
    rows = distortions(make_law(args.law, **kw), method=args.method, bits=list(bits), n=n)
    sources = [{"bits": d.bits, "mse": d.distortion, "how": d.how} for d in rows]
    params = {"law": args.law, **kw, "method": args.method, "bits": list(bits), "n": n,
              "variance": 1.0, **constants}
    return sources, params


# ---------------------------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------------------------


def _add_law(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--law", choices=_LAWS, required=required, help="weight law (unit variance)")
    p.add_argument("--nu", type=float, default=None, help="Student-t degrees of freedom (> 2)")
    p.add_argument("--beta", type=float, default=None, help="generalized-Gaussian shape (> 0)")


def register(subparsers) -> None:
    """Add the ``asymptotics`` and ``bound`` sub-commands."""
    p = subparsers.add_parser(
        "asymptotics",
        help="leading high-resolution forms of D_Q(b) with constants and effective exponents",
        description="Leading form of the distortion D_Q(b) of uniform_minmax, uniform_mse, "
                    "lloyd_max and equal_mass on a unit-variance law (fmq_theory.theory.symbolic).",
    )
    _add_law(p, required=True)
    p.add_argument("--n", type=int, default=2304,
                   help="group size for uniform_minmax (the law's own range is infinite; default 2304)")
    p.add_argument("--at-bits", default="8", metavar="SPEC",
                   help="bits at which to evaluate the effective exponent (3, 2:8 or 4,8,12; default 8)")
    p.add_argument("--compare-bits", default=None, metavar="SPEC",
                   help="also compute the exact distortion at these bits (2..12) and the ratio "
                        "exact / leading form")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=_asymptotics)

    q = subparsers.add_parser(
        "bound",
        help="the FID degradation bound chain, link by link, with assumptions",
        description="W2 of weights = MSE -> velocity error -> flow error (Gronwall or the "
                    "discrete solver) -> W2 of generated laws -> features -> Gelbrich -> FID.",
    )
    q.add_argument("--L-theta", dest="L_theta", type=float, required=True,
                   help="parameter-Lipschitz constant of the velocity field")
    q.add_argument("--L-x", dest="L_x", type=float, required=True,
                   help="Lipschitz constant of the velocity field in x")
    q.add_argument("--solver", choices=("euler", "midpoint", "heun", "exact"), default="exact")
    q.add_argument("--steps", type=int, default=None, help="solver steps N (discrete solvers)")
    q.add_argument("--horizon", type=float, default=1.0, help="integration time (default 1)")
    q.add_argument("--lip-features", type=float, required=True,
                   help="Lipschitz constant of the feature network")
    q.add_argument("--fid-fp", type=float, required=True, help="FID of the full-precision model")
    q.add_argument("--n-params", type=int, required=True, help="number of quantized weights")
    q.add_argument("--weight-mse", type=float, default=None, help="per-weight MSE, given directly")
    _add_law(q, required=False)
    q.add_argument("--method", default=None, help="quantizer whose exact distortion is used")
    q.add_argument("--bits", default=None, metavar="SPEC", help="bits: 3, 2:8 or 4,8,12")
    q.add_argument("--n", type=int, default=None,
                   help="weights per quantized group (default: the law itself)")
    q.add_argument("--format", choices=FORMATS, default="table")
    q.set_defaults(func=_bound)
