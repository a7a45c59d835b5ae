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
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, "scripts")
import gpu_plan_eval as g  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.harness.peers import peer_at_budget  # noqa: E402
from fmq_theory.plan import fit_candidates, plan_quantization  # noqa: E402

SAMPLES, PAIRS = 256, 32
#: Each peer at its setting nearest the given bits per weight, and the floors planned at its bits.
PEERS = (("naive:uniform_minmax", 3.0, (1, 2, 3)), ("hqq:g64", 2.5, (1, 2)))
#: The fields of every row written (and printed).
FIELDS = ("method", "setting", "bits_per_weight", "fid", "fid_fp", "dfid", "dfid_low", "dfid_high",
          "predicted_dfid", "psnr", "budget")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="results/plan_dit_floor_variants_cpu.json")
parser.add_argument("--work", default="runs/plan_dit_floor_variants_cpu")
args = parser.parse_args()
start = time.perf_counter()
ex = g.CpuExperiment.start(name="dit", samples=SAMPLES, pairs=PAIRS, work=args.work, progress=True)
fitted = fit_candidates(ex.model, sensitivity=ex.sensitivity, workers=2, progress=True)
fit_s = time.perf_counter() - start
fp_sd = {k: v.detach().cpu() for k, v in ex.model.state_dict().items()}

for family, near, floors in tqdm(PEERS, desc="peer and each floor at equal bits"):
    q = peer_at_budget(fp_sd, family=family, budget=near, cache={})
    bpw = q.bits_per_weight
    ex.record(q.label, q.state_dict, {"method": family, "setting": q.setting, "bits_per_weight": bpw}, budget=bpw,
              keep=FIELDS)
    selected = plan_quantization(ex.model, budget_bits=bpw, noise=ex.noise, fitted=fitted, bit_floors=floors,
                                 adapter=ex.adapter(), progress=False)
    scores = {v.floor: dataclasses.asdict(v) for v in selected.variants}
    for floor in floors:
        if floor not in scores:
            continue
        plan = plan_quantization(ex.model, budget_bits=bpw, noise=ex.noise, fitted=fitted, bit_floors=(floor,),
                                 adapter=ex.adapter(), progress=False)
        ex.record(f"plan_floor{floor}@{bpw:.4f}", plan.state_dict(),
                  {"method": "plan", "setting": f"floor {floor} at {family} {q.setting}",
                   "bits_per_weight": plan.bits_per_weight},
                  budget=bpw, keep=FIELDS, against=family, floor=floor,
                  selected=floor == selected.settings["bit_floor"], variant=scores[floor])
provenance = f"scripts/plan_dit_floor_variants_cpu.py, run on {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores"
Path(args.out).write_text(json.dumps({
    "provenance": provenance, "model": "dit (checkpoints/dit_fashion_mnist)", "samples": SAMPLES, "pairs": PAIRS,
    "feature_net": "classifier", "sensitivity_and_fit_s": round(fit_s, 1), "rows": ex.rows}, indent=1))
