"""CPU experiment: the plan on the FashionMNIST DiT with and without 1-bit codes, at 3.0 bits per weight.

On the GPU (results/plan_dit.csv) the plan put all seven adaLN modulation matrices (34% of the
DiT's weights) at 1 bit per channel at every budget up to 3.0, and lost to HQQ. This run asks
whether the additive model's pricing of those 1-bit codes is the cause: one sensitivity (256 noise
draws of seed 1, as the GPU run), candidates fitted twice (the defaults, and the defaults without
1-bit codes), each planned at 3.0 bits per weight, then the defaults planned with the bit-floor
selection (``bit_floors=(1, 2)``: each floor's plan sampled from the plan's own noise, the least
displaced kept; its variants' scores are written with its row), and HQQ g64 at the nearest budget, all sampled
from the same 256 noise draws (seed 0) and measured by ``scripts/gpu_plan_eval.py``'s own code
(classifier FID against the 10k test images, paired-bootstrap ΔFID, sampled prediction from 32
other draws).  About 20 minutes on 2 CPU cores::

    PYTHONPATH=. FMQ_DATA_DIR=<folder with fashion_mnist.npz> python scripts/plan_dit_floor_cpu.py

Writes ``results/plan_dit_floor_cpu.json`` (``--out``).
"""
import argparse
import dataclasses
import sys

sys.path.insert(0, "scripts")
import gpu_plan_eval as g  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.harness.peers import peer_at_budget  # noqa: E402
from fmq_theory.plan import default_candidates, fit_candidates, plan_quantization  # noqa: E402

SAMPLES, PAIRS, BUDGET = 256, 32, 3.0
#: The fields of every row written (and printed).
FIELDS = ("setting", "bits_per_weight", "fid", "dfid", "dfid_low", "dfid_high", "predicted_dfid", "psnr")

args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("--out", default="results/plan_dit_floor_cpu.json")
args.add_argument("--work", default="runs/plan_dit_floor_cpu")
args = args.parse_args()
ex = g.CpuExperiment.start(name="dit", samples=SAMPLES, pairs=PAIRS, work=args.work)
model, noise, sens = ex.model, ex.noise, ex.sensitivity
print("sensitivity", ex.sensitivity_s, flush=True)


def measure(label: str, state_dict: dict, fields: dict, **extra) -> None:
    ex.record(label, state_dict, fields, budget=BUDGET, keep=FIELDS, **extra)


variants = {
    "default": None,
    "min2": lambda name, shape, n: tuple(c for c in default_candidates(shape, n_weights=n) if c.bits >= 2),
}
fitted_by = {}
for name, cands in variants.items():
    fitted = fitted_by[name] = fit_candidates(model, sensitivity=sens, candidates=cands, workers=2, progress=False)
    # one bit floor: each knapsack's own solution, as measured (the selection among floors is what this
    # experiment motivated; plan_quantization's default now samples floors 1 and 2 and keeps the better)
    plan = plan_quantization(model, budget_bits=BUDGET, noise=noise, fitted=fitted, bit_floors=(1,), progress=False)
    measure(f"plan_{name}@{BUDGET:g}", plan.state_dict(),
            {"method": "plan", "setting": name, "bits_per_weight": plan.bits_per_weight},
            ada=[(c.name, c.bits, c.granularity) for c in plan.choices if "ada" in c.name and c.name.endswith("weight")],
            predicted_additive=plan.predicted_delta.value)
# The selection this experiment motivated: the default candidates planned at floors 1 and 2, each variant
# sampled from the plan's own noise (seed 1, data-free), the least displaced kept.
plan = plan_quantization(model, budget_bits=BUDGET, noise=noise, fitted=fitted_by["default"], bit_floors=(1, 2),
                         adapter=ex.adapter(), progress=False)
measure(f"plan_selected@{BUDGET:g}", plan.state_dict(),
        {"method": "plan", "setting": "selected", "bits_per_weight": plan.bits_per_weight},
        bit_floor=plan.settings["bit_floor"], variants=[dataclasses.asdict(v) for v in plan.variants])
q = peer_at_budget({k: v.detach().cpu() for k, v in model.state_dict().items()}, family="hqq:g64", budget=BUDGET,
                   cache={})
measure(q.label, q.state_dict, {"method": "hqq:g64", "setting": q.setting, "bits_per_weight": q.bits_per_weight})
ex.write(args.out, command="scripts/plan_dit_floor_cpu.py", sensitivity_s=round(ex.sensitivity_s, 1))
