"""CPU experiment: the plan with its MSE-optimal codes alone against the plan with both code families, on one committed model.

At one budget (honest bits per weight) the plan is made twice from one sensitivity (256 noise
draws of seed 1, as the GPU run) and one fit of the default candidates: with
``families=("optimal",)`` and bit floors 1 and 2 (the default plan), and with
``families=("optimal", "minmax")`` and floors 1, 2 and 3 (each feasible variant sampled from
the first 128 of the plan's noise draws, the least displaced kept); beside them the naive rule
(per-channel ``uniform_minmax`` b3, tensors of at most 4,096 weights in float16) at its own
bits.  Every model is sampled from the same 256 noise draws (seed 0) and measured by
``scripts/gpu_plan_eval.py``'s own code (classifier FID against the 10k test images,
paired-bootstrap dFID, sampled prediction from 32 other draws).  About 15 minutes per model on
2 CPU cores::

    PYTHONPATH=. python scripts/plan_families_cpu.py --model mnist

Writes ``results/plan_families_<model>_cpu.json`` (``--out``).
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, "scripts")
import gpu_plan_eval as g  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.harness.peers import peer_at_budget  # noqa: E402
from fmq_theory.plan import fit_candidates, plan_quantization  # noqa: E402

SAMPLES, PAIRS, SELECTION_SAMPLES = 256, 32, 128
#: The plans compared: name -> (families, bit floors).
PLANS = {"optimal": (("optimal",), (1, 2)), "both families": (("optimal", "minmax"), (1, 2, 3))}
FIELDS = ("method", "setting", "bits_per_weight", "fid", "fid_fp", "dfid", "dfid_low", "dfid_high",
          "predicted_dfid", "psnr", "budget")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", choices=("mnist", "fashion_mnist", "dit"), default="mnist")
parser.add_argument("--budget", type=float, default=3.0, help="honest bits per weight (default 3.0)")
parser.add_argument("--out", default=None, help="default results/plan_families_<model>_cpu.json")
parser.add_argument("--work", default=None, help="default runs/plan_families_<model>_cpu")
args = parser.parse_args()
out = Path(args.out or f"results/plan_families_{args.model}_cpu.json")
start = time.perf_counter()
ex = g.CpuExperiment.start(name=args.model, samples=SAMPLES, pairs=PAIRS,
                           work=args.work or f"runs/plan_families_{args.model}_cpu", progress=True)
fitted = fit_candidates(ex.model, sensitivity=ex.sensitivity, workers=2, progress=True)
fit_s = time.perf_counter() - start
fp_sd = {k: v.detach().cpu() for k, v in ex.model.state_dict().items()}
q = peer_at_budget(fp_sd, family="naive:uniform_minmax", budget=3.0, cache={})
ex.record(q.label, q.state_dict, {"method": "naive:uniform_minmax", "setting": q.setting,
                                  "bits_per_weight": q.bits_per_weight}, budget=q.bits_per_weight, keep=FIELDS)
for name, (families, floors) in PLANS.items():
    t0 = time.perf_counter()
    plan = plan_quantization(ex.model, budget_bits=args.budget, noise=ex.noise[:SELECTION_SAMPLES], fitted=fitted,
                             bit_floors=floors, families=families, adapter=ex.adapter(SELECTION_SAMPLES),
                             progress=False)
    plan_s = time.perf_counter() - t0
    ex.record(f"plan_{name.replace(' ', '_')}@{args.budget:g}", plan.state_dict(),
              {"method": "plan", "setting": name, "bits_per_weight": plan.bits_per_weight}, budget=args.budget,
              keep=FIELDS, family=plan.settings["family"], bit_floor=plan.settings["bit_floor"],
              plan_s=round(plan_s, 1), variants=[dataclasses.asdict(v) for v in plan.variants])
provenance = f"scripts/plan_families_cpu.py --model {args.model}, run on {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores"
out.write_text(json.dumps({
    "provenance": provenance, "model": f"{args.model} ({g.MODELS[args.model][1]})", "samples": SAMPLES, "pairs": PAIRS,
    "feature_net": "classifier", "budget": args.budget, "sensitivity_and_fit_s": round(fit_s, 1), "rows": ex.rows},
    indent=1))
