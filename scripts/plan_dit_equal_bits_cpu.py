"""CPU experiment: the plan against per-channel peers on the FashionMNIST DiT at *equal* honest bits.

The plan's GPU rows (results/plan_dit.csv) compare each budget with peers at their nearest
nominal setting, whose honest bits per weight can exceed the budget by up to 0.75; the 3-bit
per-channel peers spend about 3.2-3.6 bits per weight.  This run plans at exactly each peer's
honest bits per weight instead, so that every comparison is at equal bits: one sensitivity
(256 noise draws of seed 1, as the GPU run), the default candidates fitted once, then for each
peer family at its setting nearest 3.0 bits per weight, the peer and the plan at the peer's
bits per weight with both code families and floors 1, 2 and 3 (``families=("optimal",
"minmax")``, ``bit_floors=(1, 2, 3)``: each feasible variant's knapsack sampled from the first
128 of the plan's own noise draws, the least displaced kept).  Every model is sampled from the
same 256 noise draws (seed 0) and measured by ``scripts/gpu_plan_eval.py``'s own code
(classifier FID against the 10k test images, paired-bootstrap dFID, sampled prediction from 32
other draws).  About 35 minutes on 2 CPU cores::

    PYTHONPATH=. FMQ_DATA_DIR=<folder with fashion_mnist.npz> python scripts/plan_dit_equal_bits_cpu.py

Writes ``results/plan_dit_equal_bits_cpu.json`` (``--out``).
"""
import argparse
import dataclasses
import sys

from tqdm import tqdm

sys.path.insert(0, "scripts")
import gpu_plan_eval as g  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.plan import plan_quantization  # noqa: E402

SAMPLES, PAIRS, NEAR = 256, 32, 3.0
#: The plan's variants, and how many of its noise draws sample them.
FLOORS, FAMILIES, SELECTION_SAMPLES = (1, 2, 3), ("optimal", "minmax"), 128
#: Per-channel peers and HQQ; each at its setting nearest NEAR bits per weight.
PEERS = ("rule:uniform_mse", "rule:lloyd_max", "naive:uniform_minmax", "hqq:g64")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="results/plan_dit_equal_bits_cpu.json")
parser.add_argument("--work", default="runs/plan_dit_equal_bits_cpu")
args = parser.parse_args()
ex = g.CpuExperiment.start(name="dit", samples=SAMPLES, pairs=PAIRS, work=args.work, fit=True, progress=True)

for family in tqdm(PEERS, desc="peer and plan at equal bits"):
    q = ex.record_peer(family, near=NEAR)
    bpw = q.bits_per_weight
    plan = plan_quantization(ex.model, budget_bits=bpw, noise=ex.noise[:SELECTION_SAMPLES], fitted=ex.fitted,
                             bit_floors=FLOORS, families=FAMILIES, adapter=ex.adapter(SELECTION_SAMPLES),
                             progress=False)
    ex.record(f"plan@{bpw:.4f}", plan.state_dict(),
              {"method": "plan", "setting": f"at {family} {q.setting}", "bits_per_weight": plan.bits_per_weight},
              budget=bpw, bit_floor=plan.settings["bit_floor"], family=plan.settings["family"],
              against=family, variants=[dataclasses.asdict(v) for v in plan.variants])
ex.write(args.out, command="scripts/plan_dit_equal_bits_cpu.py", sensitivity_and_fit_s=round(ex.setup_s, 1))
