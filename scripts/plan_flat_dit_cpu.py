"""CPU: on the DiT, does HQQ's file layout of the plan's own fits do as well as HQQ, and would the plan pick it?

On the GPU the plan lost to HQQ g128 on the FashionMNIST DiT at HQQ's own bits per weight
(``results/plan_dit.csv``).  ``scripts/plan_layout_cpu.py`` scored HQQ's layout made of the plan's own
``half_quadratic`` fits by the plan's data-free shift only.  This script measures it, at HQQ g128's
b2 and b3 bits (2.3369 and 3.5252), in two parts that share one set-up (256 draws of the plan's noise,
balanced labels, the 8-replicate sensitivity and the default fit: :class:`gpu_plan_eval.CpuExperiment`):

* ``--part layout``: the classifier dFID (256 draws, 95% paired-bootstrap interval) and the shift of
  the plan's default choice (grouping ``any``), of the layout (every tensor the peer quantizes at the
  plan's ``half_quadratic`` option of the same bits and group size, the rest in float16) and of the
  ``hqq`` package's quantization;
* ``--part flat``: the plan's ``"flat"`` variants alone (:func:`fmq_theory.plan.core.variant_option_sets`;
  default families and floors, at 2.3369, 3.5252 and 4.3242), each variant's shift, and, where the
  least-shift flat variant moves the law less than the default plan (``--any-shift``, the layout
  part's and ``results/plan_layout_dit_cpu.json``'s shifts of the default plan), that plan's dFID.

Run on 2026-12-05 on 2 cores (the layout part 34 min, the flat part 35 min)::

    PYTHONPATH=. python scripts/plan_flat_dit_cpu.py --part layout --out runs/flat/layout.json
    PYTHONPATH=. python scripts/plan_flat_dit_cpu.py --part flat --any-shift 2.3369=0.03784,3.5252=0.001508,4.3242=0.0002609 \\
        --out runs/flat/flat.json
    PYTHONPATH=. python scripts/plan_flat_dit_cpu.py --merge runs/flat/layout.json runs/flat/flat.json \\
        --out results/plan_flat_dit_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, "scripts")
from gpu_plan_eval import SOLVER, STEPS, CpuExperiment  # noqa: E402  (scripts/ is a folder of scripts, not a package)
from plan_layout_cpu import hqq_layout  # noqa: E402

from fmq_theory.harness.peers import quantize_peer  # noqa: E402
from fmq_theory.plan import plan_quantization  # noqa: E402
from fmq_theory.plan.candidates import KEPT_METHODS  # noqa: E402
from fmq_theory.plan.core import variant_state  # noqa: E402
from fmq_theory.plan.selection import distribution_shift, sampled  # noqa: E402

#: HQQ g128's settings the plan lost to on the GPU: (peer family, setting, bits, group size, budget label).
LAYOUTS = (("hqq:g128", "b2", 2, 128, 2.3369), ("hqq:g128", "b3", 3, 128, 3.5252))
#: The budgets of the flat part.
FLAT_BUDGETS = (2.3369, 3.5252, 4.3242)


def layout_part(exp: CpuExperiment) -> None:
    """Plan, layout and peer at each of :data:`LAYOUTS`, measured and scored (rows appended to ``exp``)."""
    model, fitted = exp.model, exp.fitted
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    n_total = sum(state[k].numel() for k in fitted.names)
    reference = sampled(model, state, exp.noise, adapter=exp.adapter(), solver=SOLVER, steps=STEPS)
    for family, setting, bits, group, budget in LAYOUTS:
        peer = quantize_peer(state, family=family, setting=setting)
        plan = plan_quantization(model, budget_bits=budget, noise=exp.noise, fitted=fitted, adapter=exp.adapter(),
                                 progress=False)
        picks, nbytes = hqq_layout(fitted, peer, bits=bits, group=group)
        for kind, bpw, weights in (("plan", plan.bits_per_weight, plan.state_dict()),
                                   ("layout", 8 * nbytes / n_total, variant_state(state, fitted, picks)),
                                   ("peer", peer.bits_per_weight, peer.state_dict)):
            x = sampled(model, {k: v.float() for k, v in weights.items()}, exp.noise, adapter=exp.adapter(),
                        solver=SOLVER, steps=STEPS)
            shift, low, high = distribution_shift(x, reference)
            exp.record(f"{kind}_{budget}", weights, {"method": kind, "setting": setting, "bits_per_weight": bpw},
                       budget=budget, shift=shift, shift_low=low, shift_high=high)


def flat_part(exp: CpuExperiment, any_shift: dict) -> list:
    """The flat variants at each of :data:`FLAT_BUDGETS`; the least-shift one measured where it beats ``any_shift``."""
    out = []
    for budget in FLAT_BUDGETS:
        plan = plan_quantization(exp.model, budget_bits=budget, noise=exp.noise, fitted=exp.fitted,
                                 adapter=exp.adapter(), groupings=("flat",), progress=False)
        variants = [dict(family=v.family, floor=v.floor, bpw=v.bits_per_weight, additive=v.additive,
                         shift=v.sampled_shift, low=v.shift_low, high=v.shift_high) for v in plan.variants]
        row = dict(budget=budget, any_shift=any_shift[budget],
                   chosen=(plan.settings["family"], plan.settings["bit_floor"]),
                   codes=sorted({(c.method, c.bits, c.granularity) for c in plan.choices
                                 if c.method not in KEPT_METHODS}),
                   variants=variants, kept=[c.name for c in plan.choices if c.method in KEPT_METHODS])
        best = min(v["shift"] for v in variants)
        if best < any_shift[budget]:
            row["measured"] = exp.record(f"flatplan_{budget}", plan.state_dict(),
                                         {"method": "plan flat", "setting": str(row["chosen"]),
                                          "bits_per_weight": plan.bits_per_weight}, budget=budget, shift=best)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def _shifts(text: str) -> dict:
    return {float(k): float(v) for k, v in (item.split("=") for item in text.split(","))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("layout", "flat"))
    p.add_argument("--any-shift", type=_shifts, default=None, help="BUDGET=SHIFT,... of the default plan (flat part)")
    p.add_argument("--merge", nargs=2, metavar=("LAYOUT", "FLAT"), help="join the two parts' files")
    p.add_argument("--work", default="runs/flat/work")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if args.merge:
        layout, flat = (json.loads(Path(f).read_text()) for f in args.merge)
        merged = {k: v for k, v in layout.items() if k != "rows"}
        merged.update(provenance=f"{layout['provenance']}; {flat['provenance']}", layout_rows=layout["rows"],
                      flat_rows=flat["flat_rows"], flat_seconds=flat["seconds"], layout_seconds=layout["seconds"])
        merged.pop("seconds", None)
        Path(args.out).write_text(json.dumps(merged, indent=1))
        return
    if args.part is None or (args.part == "flat" and args.any_shift is None):
        p.error("give --part (and --any-shift with --part flat), or --merge")
    start = time.perf_counter()
    exp = CpuExperiment.start(name="dit", samples=256, pairs=8, work=args.work, fit=True)
    command = f"PYTHONPATH=. python scripts/plan_flat_dit_cpu.py --part {args.part}"
    if args.part == "layout":
        layout_part(exp)
        exp.write(args.out, command=command, plan_samples=256, seconds=round(time.perf_counter() - start, 1))
    else:
        rows = flat_part(exp, args.any_shift)
        exp.write(args.out, command=command, plan_samples=256, seconds=round(time.perf_counter() - start, 1),
                  flat_rows=rows)


if __name__ == "__main__":
    main()
