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
import sys
import time

sys.path.insert(0, "scripts")
import gpu_plan_eval as g  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.plan import plan_quantization  # noqa: E402

SAMPLES, PAIRS, SELECTION_SAMPLES = 256, 32, 128
#: The plans compared: name -> (families, bit floors).
PLANS = {"optimal": (("optimal",), (1, 2)), "both families": (("optimal", "minmax"), (1, 2, 3))}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", choices=("mnist", "fashion_mnist", "dit"), default="mnist")
parser.add_argument("--budget", type=float, default=3.0, help="honest bits per weight (default 3.0)")
parser.add_argument("--out", default=None, help="default results/plan_families_<model>_cpu.json")
parser.add_argument("--work", default=None, help="default runs/plan_families_<model>_cpu")
args = parser.parse_args()
ex = g.CpuExperiment.start(name=args.model, samples=SAMPLES, pairs=PAIRS,
                           work=args.work or f"runs/plan_families_{args.model}_cpu", fit=True, progress=True)
ex.record_peer("naive:uniform_minmax", near=3.0)
for name, (families, floors) in PLANS.items():
    t0 = time.perf_counter()
    plan = plan_quantization(ex.model, budget_bits=args.budget, noise=ex.noise[:SELECTION_SAMPLES], fitted=ex.fitted,
                             bit_floors=floors, families=families, adapter=ex.adapter(SELECTION_SAMPLES),
                             progress=False)
    plan_s = time.perf_counter() - t0
    ex.record(f"plan_{name.replace(' ', '_')}@{args.budget:g}", plan.state_dict(),
              {"method": "plan", "setting": name, "bits_per_weight": plan.bits_per_weight}, budget=args.budget,
              family=plan.settings["family"], bit_floor=plan.settings["bit_floor"],
              plan_s=round(plan_s, 1), variants=[dataclasses.asdict(v) for v in plan.variants])
ex.write(args.out or f"results/plan_families_{args.model}_cpu.json",
         command=f"scripts/plan_families_cpu.py --model {args.model}", budget=args.budget,
         sensitivity_and_fit_s=round(ex.setup_s, 1))
