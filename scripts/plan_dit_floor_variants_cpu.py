"""CPU experiment: why the plan loses to the naive rule and to HQQ on the FashionMNIST DiT at equal bits.

With its MSE-optimal codes only (``families=("optimal",)``, the default), the plan's selected
variant (floor 2 at 3.42 bits per weight, floor 1 at 2.59) measured behind per-channel
``uniform_minmax`` b3 with small tensors in float16 (the naive rule) and behind HQQ b2 in
groups of 64, each resolved.  The plan picks among its floors' knapsack solutions by their
sampled displacement from full precision on its own noise.  This run asks whether that
selection or the allocation itself is at fault: at
each of the two peers' exact honest bits per weight it plans with every floor at once (1, 2
and 3 where feasible), keeps every variant's additive prediction and sampled displacement,
and measures each floor's solution (the knapsack over that floor's options alone) with the
same harness, noise and FID as the peer.  Every model is sampled from the same 256 noise draws
(seed 0), classifier FID against the 10k test images, paired-bootstrap dFID, sampled
prediction from 32 other draws (``scripts/gpu_plan_eval.py``'s code).  About 15 minutes on 2
CPU cores::

    PYTHONPATH=. python scripts/plan_dit_floor_variants_cpu.py

Writes ``results/plan_dit_floor_variants_cpu.json`` (``--out``).
"""
import argparse
import dataclasses
import sys

from tqdm import tqdm

sys.path.insert(0, "scripts")
import gpu_plan_eval as g  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.plan import plan_quantization  # noqa: E402

SAMPLES, PAIRS = 256, 32
#: Each peer at its setting nearest the given bits per weight, and the floors planned at its bits.
PEERS = (("naive:uniform_minmax", 3.0, (1, 2, 3)), ("hqq:g64", 2.5, (1, 2)))

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="results/plan_dit_floor_variants_cpu.json")
parser.add_argument("--work", default="runs/plan_dit_floor_variants_cpu")
args = parser.parse_args()
ex = g.CpuExperiment.start(name="dit", samples=SAMPLES, pairs=PAIRS, work=args.work, fit=True, progress=True)

for family, near, floors in tqdm(PEERS, desc="peer and each floor at equal bits"):
    q = ex.record_peer(family, near=near)
    bpw = q.bits_per_weight
    selected = plan_quantization(ex.model, budget_bits=bpw, noise=ex.noise, fitted=ex.fitted, bit_floors=floors,
                                 adapter=ex.adapter(), progress=False)
    scores = {v.floor: dataclasses.asdict(v) for v in selected.variants}
    for floor in floors:
        if floor not in scores:
            continue
        plan = plan_quantization(ex.model, budget_bits=bpw, noise=ex.noise, fitted=ex.fitted, bit_floors=(floor,),
                                 adapter=ex.adapter(), progress=False)
        ex.record(f"plan_floor{floor}@{bpw:.4f}", plan.state_dict(),
                  {"method": "plan", "setting": f"floor {floor} at {family} {q.setting}",
                   "bits_per_weight": plan.bits_per_weight},
                  budget=bpw, against=family, floor=floor,
                  selected=floor == selected.settings["bit_floor"], variant=scores[floor])
ex.write(args.out, command="scripts/plan_dit_floor_variants_cpu.py", sensitivity_and_fit_s=round(ex.setup_s, 1))
