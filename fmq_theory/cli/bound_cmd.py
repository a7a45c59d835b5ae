"""``fmq bound``: the textbook FID bound chain, link by link, with its assumptions.

``fmq bound --L-theta .. --L-x .. --lip-features .. --fid-fp .. --n-params ..
[--solver S --steps N] (--weight-mse X | --law L --method M --bits SPEC [--n N])`` prints
the chain of :mod:`fmq_theory.theory.fid_chain` link by link with each link's value and
assumptions.
"""

from __future__ import annotations

import json

from fmq_theory import __version__
from fmq_theory.cli._output import FORMATS, render
from fmq_theory.cli._spec import add_law_arguments, check_group_size, law_kwargs, parse_bits
from fmq_theory.theory import fid_chain as chain
from fmq_theory.theory.distortion import distortions
from fmq_theory.theory.laws import make_law
from fmq_theory.vocab import CHAIN_FLOWS, SYMBOLIC_BITS


def _bound(args) -> int:
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
        try:
            c = chain.fid_chain(mse=src["mse"], **constants)
        except ValueError as exc:
            flag = "--L-x" if str(exc).startswith("lipschitz_x=") else "the constants"
            raise ValueError(f"{flag}: {exc}") from exc
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
    print(render(rows, ["bits", "mse", "link", "name", "value", "assumptions"], args.format, header),
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
    for flag, value in (("--law", args.law), ("--method", args.method), ("--bits", args.bits)):
        if value is None:
            raise ValueError(f"{flag} is required with --law/--method/--bits")
    kw = {k: v for k, v in law_kwargs(args).items() if v is not None}
    bits = parse_bits(args.bits, flag="--bits", max_bits=SYMBOLIC_BITS[1])
    n = None if args.n is None else check_group_size(args.n)
    rows = distortions(make_law(args.law, **kw), method=args.method, bits=list(bits), n=n)
    sources = [{"bits": d.bits, "mse": d.distortion, "how": d.how} for d in rows]
    params = {"law": args.law, **kw, "method": args.method, "bits": list(bits), "n": n,
              "variance": 1.0, **constants}
    return sources, params


def register(subparsers) -> None:
    """Add the ``bound`` sub-command."""
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
    q.add_argument("--solver", choices=CHAIN_FLOWS, default="exact")
    q.add_argument("--steps", type=int, default=None, help="solver steps N (discrete solvers)")
    q.add_argument("--horizon", type=float, default=1.0, help="integration time (default 1)")
    q.add_argument("--lip-features", type=float, required=True,
                   help="Lipschitz constant of the feature network")
    q.add_argument("--fid-fp", type=float, required=True, help="FID of the full-precision model")
    q.add_argument("--n-params", type=int, required=True, help="number of quantized weights")
    q.add_argument("--weight-mse", type=float, default=None, help="per-weight MSE, given directly")
    add_law_arguments(q, required=False)
    q.add_argument("--method", default=None, help="quantizer whose exact distortion is used")
    q.add_argument("--bits", default=None, metavar="SPEC", help="bits: 3, 2:8 or 4,8,12")
    q.add_argument("--n", type=int, default=None,
                   help="weights per quantized group (default: the law itself)")
    q.add_argument("--format", choices=FORMATS, default="table")
    q.set_defaults(func=_bound)
