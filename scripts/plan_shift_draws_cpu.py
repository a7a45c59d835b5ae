"""CPU: is the shift's wrong pick on the DiT at 3.5252 bits noise, or the score itself?

On the H200 (``results/plan_dit.csv``, 2026-12-03) the plan at HQQ g128's 3.5252 bits per weight kept
its ``half_quadratic`` floor-2 variant by the law's shift on its 256 draws
(:func:`fmq_theory.plan.selection.distribution_shift`) and measured a classifier dFID of 16.3.  In
the CPU study ``results/plan_half_quadratic_dit_cpu.json`` (256 held-out samples) the same variant
measured 17.4 [13.6, 21.5] where the ``minmax`` floor-3 variant, kept by the plan without the
``half_quadratic`` family, measured 7.5 [5.1, 10.3]; on the plan's 128 draws there the two shifts
overlapped.  If the pick were noise, more draws would resolve it toward ``minmax``.  Here those
variants and the ``half_quadratic`` floor-3 one (each the knapsack restricted to one family and
floor, the same fit and sensitivity as the plan) are sampled from ``--draws`` fresh noise draws
(seed 11, balanced labels), and their shift and displacement against the full-precision samples of
the same draws are written with their 95% intervals::

    PYTHONPATH=. python scripts/plan_shift_draws_cpu.py   # ~13 min on 2 cores -> results/plan_shift_draws_dit_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time

sys.path.insert(0, "scripts")
from gpu_plan_eval import SOLVER, STEPS, CpuExperiment  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.flow.solvers import balanced_labels, make_noise  # noqa: E402
from fmq_theory.harness.models.unet import unet_adapter  # noqa: E402
from fmq_theory.plan import plan_quantization  # noqa: E402
from fmq_theory.plan.selection import displacement, distribution_shift, sampled  # noqa: E402

BUDGET = 3.5252  # HQQ g128 b3's bits per weight on the DiT, the budget label of the GPU rows
VARIANTS = (("half_quadratic", 2), ("half_quadratic", 3), ("minmax", 3))  # (family, bit floor)
SEED = 11  # fresh draws: neither the plan's (seed 1) nor the evaluation's (seed 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=1024, help="fresh noise draws per sample set")
    p.add_argument("--out", default="results/plan_shift_draws_dit_cpu.json")
    args = p.parse_args()
    start = time.perf_counter()
    exp = CpuExperiment.start(name="dit", samples=256, pairs=8, work="runs/plan_layout", fit=True)
    model = exp.model
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    noise = make_noise(args.draws, exp.measure.event, seed=SEED)
    adapter = unet_adapter(model, balanced_labels(args.draws, model.config.num_classes), 0.0)
    reference = sampled(model, state, noise, adapter=adapter, solver=SOLVER, steps=STEPS)
    for family, floor in VARIANTS:
        plan = plan_quantization(model, budget_bits=BUDGET, noise=exp.noise, fitted=exp.fitted, adapter=exp.adapter(),
                                 bit_floors=(floor,), families=(family,), progress=False)
        x = sampled(model, {k: v.float() for k, v in plan.state_dict().items()}, noise, adapter=adapter,
                    solver=SOLVER, steps=STEPS)
        shift, msd = distribution_shift(x, reference), displacement(x, reference)
        exp.rows.append({"budget": BUDGET, "family": family, "floor": floor, "bits_per_weight": plan.bits_per_weight,
                         "draws": args.draws, "shift": shift[0], "shift_low": shift[1], "shift_high": shift[2],
                         "displacement": msd[0], "displacement_low": msd[1], "displacement_high": msd[2]})
        print(f"[dit] {BUDGET} {family} floor {floor}: {plan.bits_per_weight:.4f} bpw, shift {shift[0]:.4g} "
              f"[{shift[1]:.4g}, {shift[2]:.4g}], displacement {msd[0]:.4g} [{msd[1]:.4g}, {msd[2]:.4g}] "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    exp.write(args.out, command=f"PYTHONPATH=. python scripts/plan_shift_draws_cpu.py --draws {args.draws}",
              draws=args.draws, seed=SEED, seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
