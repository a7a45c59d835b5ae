"""CPU experiment: the plan with HQQ's grids as a third code family, against HQQ itself at HQQ's own bits.

On one committed model (``--model``: the FashionMNIST DiT by default, where HQQ g128 beat the plan
at every budget on the GPU), at the honest bits per weight of HQQ g128 at 2 and 3 bits, the plan is
made from one sensitivity (256 draws of the plan's seed) and one fit of the default candidates, twice:
with the code families of the previous default, ``("optimal", "minmax")``, and with
``half_quadratic`` added (:mod:`fmq_theory.quantizers.half_quadratic`, the package's own fit of HQQ's
grid, stored in its quantized file format); bit floors 1-3 each.  Every variant is sampled from the
first 128 of the plan's noise draws, as the plan selects, and HQQ g128 (the ``hqq`` package) is sampled
from the same draws, so their displacements compare draw for draw.  Then the plans and HQQ are measured
on held-out noise by ``scripts/gpu_plan_eval.py``'s own code (256 draws of seed 0: classifier FID
against the 10k test images, paired-bootstrap dFID)::

    PYTHONPATH=. python scripts/plan_half_quadratic_cpu.py --model dit   # ~35 min on 2 cores
        -> results/plan_half_quadratic_dit_cpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

sys.path.insert(0, "scripts")
from gpu_plan_eval import SOLVER, STEPS, CpuExperiment  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.plan import plan_quantization  # noqa: E402
from fmq_theory.plan.selection import displacement, sampled  # noqa: E402

SAMPLES, PAIRS, SELECTION_SAMPLES = 256, 32, 128
PEER, NEAR = "hqq:g128", (2.25, 3.25)
FLOORS = (1, 2, 3)
PLANS = {"optimal+minmax": ("optimal", "minmax"), "optimal+minmax+half_quadratic": ("optimal", "minmax", "half_quadratic")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dit", choices=("mnist", "fashion_mnist", "dit"))
    args = p.parse_args()
    start = time.perf_counter()
    ex = CpuExperiment.start(name=args.model, samples=SAMPLES, pairs=PAIRS,
                             work=f"runs/plan_half_quadratic_{args.model}_cpu", fit=True, progress=True)
    noise, adapter = ex.noise[:SELECTION_SAMPLES], ex.adapter(SELECTION_SAMPLES)
    reference = sampled(ex.model, ex.model.state_dict(), noise, adapter=adapter, solver=SOLVER, steps=STEPS)
    for near in NEAR:
        peer = ex.record_peer(PEER, near=near)
        msd, low, high = displacement(sampled(ex.model, {k: v.float() for k, v in peer.state_dict.items()}, noise,
                                              adapter=adapter, solver=SOLVER, steps=STEPS), reference)
        ex.rows[-1] |= {"sampled_msd": msd, "sampled_low": low, "sampled_high": high}
        for name, families in PLANS.items():
            t0 = time.perf_counter()
            plan = plan_quantization(ex.model, budget_bits=peer.bits_per_weight, noise=noise, fitted=ex.fitted,
                                     bit_floors=FLOORS, families=families, adapter=adapter, progress=False)
            ex.record(f"plan_{name}@{peer.bits_per_weight:.4f}", plan.state_dict(),
                      {"method": "plan", "setting": name, "bits_per_weight": plan.bits_per_weight},
                      budget=peer.bits_per_weight, family=plan.settings["family"],
                      bit_floor=plan.settings["bit_floor"], plan_s=round(time.perf_counter() - t0, 1),
                      variants=[dataclasses.asdict(v) for v in plan.variants])
    ex.write(f"results/plan_half_quadratic_{args.model}_cpu.json",
             command=f"PYTHONPATH=. python scripts/plan_half_quadratic_cpu.py --model {args.model}",
             selection_samples=SELECTION_SAMPLES, seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
