"""``fmq bound``: the textbook FID bound chain, link by link, with its assumptions.

``fmq bound --L-theta .. --L-x .. --lip-features .. --fid-fp .. --n-params ..
[--solver S --steps N] (--weight-mse X | --law L --method M --bits SPEC [--n N])`` prints
the chain of :mod:`fmq_theory.theory.fid_chain` link by link with each link's value and
assumptions.
"""

from __future__ import annotations

import textwrap

from fmq_theory.cli._output import add_format_arguments, check_digits, command_line, document, render
from fmq_theory.cli._spec import add_law_arguments, check_group_size, law_kwargs, parse_bits
from fmq_theory.theory import fid_chain as chain
from fmq_theory.theory.distortion import distortions
from fmq_theory.theory.laws import make_law
from fmq_theory.vocab import CHAIN_FLOWS, SYMBOLIC_BITS


def _bound(args) -> int:
    from_law = args.law is not None or args.method is not None or args.bits is not None
    if args.weight_mse is not None and from_law:
        raise ValueError("--weight-mse cannot be combined with --law/--method/--bits")
    if args.weight_std is not None and not from_law:
        raise ValueError("--weight-std applies only with --law, --method and --bits")
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
        results.append({**src, "delta_fid_bound": c.delta_fid, "fid_bound": c.fid_bound,
                        "links": [{"name": link.name, "value": link.value,
                                   "inputs": {k: v for k, v in link.inputs},
                                   "details": {k: v for k, v in link.details}} for link in c.links]})
        links = c.links
    assumptions = [{"link": i, "name": link.name, "assumptions": list(link.assumptions)}
                   for i, link in enumerate(links, start=1)]
    doc = document(command=command_line(args), parameters=params,
                   units={"mse": "per-weight mean squared error, in the weights' units squared",
                          "delta_fid_bound": "FID units", "fid_bound": "FID units",
                          "value": "the link's own units (see its name)"},
                   result={"chains": results, "assumptions": assumptions}, interval_level=None)
    if args.format == "json":
        print(render(doc, columns=[], fmt="json"), end="")
        return 0
    rows = [{"bits": r["bits"], "mse": r["mse"],
             **{key: r["links"][i]["value"] for i, key in _SHOWN_LINKS.items()},
             "delta_fid_bound": r["delta_fid_bound"], "fid_bound": r["fid_bound"]} for r in results]
    notes = textwrap.wrap(f"FID_fp = {args.fid_fp:g} (given); delta_fid_bound bounds FID_q - FID_fp, "
                          "fid_bound bounds FID_q. The links of the chain, each with its assumptions:",
                          width=96)
    labels = {**_SHOWN_LINKS, 3: "w2_gen (= flow_err)", len(assumptions) - 1: "fid_bound"}
    for a in assumptions:
        label = labels[a["link"] - 1]
        notes += textwrap.wrap(f"[{a['link']}] {label}: {a['name']}. Assumes: " + "; ".join(a["assumptions"]),
                               width=96, subsequent_indent="    ")
    columns = ["bits", "mse", *_SHOWN_LINKS.values(), "delta_fid_bound", "fid_bound"]
    print(render(doc, columns=columns, fmt=args.format, rows=rows, notes=tuple(notes),
                 digits=check_digits(args.digits) or 4, heads=_HEADS), end="")
    return 0


#: Links shown in the table (index into the chain -> column); the fourth link, W2 of the
#: generated laws, always equals the flow error bound and is named in the notes only.
_SHOWN_LINKS = {0: "w2_weights", 1: "eps", 2: "flow_err", 4: "w2_feat", 5: "sqrt_fd"}
#: LaTeX column heads.
_HEADS = {"bits": "$b$", "mse": "weight MSE", "w2_weights": r"$W_2(\theta, \hat\theta)$",
          "eps": r"$\varepsilon$", "flow_err": r"$\|x_1 - \hat x_1\|$", "w2_feat": r"$W_2$ (features)",
          "sqrt_fd": r"$\sqrt{\mathrm{FD}}$", "delta_fid_bound": r"$\Delta\mathrm{FID} \le$",
          "fid_bound": r"$\mathrm{FID}_q \le$"}


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
    if args.weight_std is None:
        raise ValueError("--weight-std is required with --law: the laws have unit variance, and the "
                         "weights' MSE is their variance times the unit-variance distortion")
    if not 0 < args.weight_std < float("inf"):
        raise ValueError(f"--weight-std must be finite and > 0, got {args.weight_std!r}")
    rows = distortions(make_law(args.law, **kw), method=args.method, bits=list(bits), n=n)
    var = args.weight_std ** 2
    sources = [{"bits": d.bits, "mse": var * d.distortion, "how": f"{d.how} x weight_std^2"} for d in rows]
    params = {"law": args.law, **kw, "method": args.method, "bits": list(bits), "n": n,
              "weight_std": args.weight_std, **constants}
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
    q.add_argument("--weight-std", type=float, default=None,
                   help="standard deviation of the quantized weights (required with --law: the laws "
                        "have unit variance and the MSE scales with the variance)")
    add_format_arguments(q)
    q.set_defaults(func=_bound)
