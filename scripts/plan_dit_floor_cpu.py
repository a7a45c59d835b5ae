"""CPU experiment: the plan on the FashionMNIST DiT with and without 1-bit codes, at 3.0 bits per weight.

On the GPU (results/plan_dit.csv) the plan put all seven adaLN modulation matrices (34% of the
DiT's weights) at 1 bit per channel at every budget up to 3.0, and lost to HQQ. This run asks
whether the additive model's pricing of those 1-bit codes is the cause: one sensitivity (256 noise
draws of seed 1, as the GPU run), candidates fitted twice (the defaults, and the defaults without
1-bit codes), each planned at 3.0 bits per weight, and HQQ g64 at the nearest budget, all sampled
from the same 256 noise draws (seed 0) and measured by ``scripts/gpu_plan_eval.py``'s own code
(classifier FID against the 10k test images, paired-bootstrap ΔFID, sampled prediction from 32
other draws).  About 20 minutes on 2 CPU cores::

    PYTHONPATH=. FMQ_DATA_DIR=<folder with fashion_mnist.npz> python scripts/plan_dit_floor_cpu.py

Writes ``results/plan_dit_floor_cpu.json`` (``--out``).
"""
import argparse
import json
import sys
import time
from pathlib import Path
from safetensors.torch import save_file
sys.path.insert(0, "scripts")
import gpu_plan_eval as g
from fmq_theory.flow.solvers import balanced_labels, make_noise
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.plan import default_candidates, fit_candidates, plan_quantization, weight_sensitivity
from fmq_theory.harness.peers import peer_at_budget

args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("--out", default="results/plan_dit_floor_cpu.json")
args.add_argument("--work", default="runs/plan_dit_floor_cpu")
args = args.parse_args()
setup = g.Setup(name="dit", checkpoint="checkpoints/dit_fashion_mnist", samples=256, pairs=32, batch_size=256,
                n_boot=100, n_boot_inception=10, inception=None, device="cpu", work=args.work, real_images=None)
m = g.Measure(setup)
model = m.ctx.model
sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
noise = make_noise(256, m.event, seed=g.PLAN_SEED)
labels = balanced_labels(256, model.config.num_classes)
t0 = time.perf_counter()
sens = weight_sensitivity(model, noise, adapter=unet_adapter(model, labels, 0.0), solver=g.SOLVER, steps=g.STEPS,
                          replicates=8, batch_size=32, seed=g.PLAN_SEED, progress=False)
t_sens = time.perf_counter() - t0
print("sensitivity", t_sens, flush=True)
variants = {
    "default": None,
    "min2": lambda name, shape, n: tuple(c for c in default_candidates(shape, n_weights=n) if c.bits >= 2),
}
rows = []
for name, cands in variants.items():
    fitted = fit_candidates(model, sensitivity=sens, candidates=cands, workers=2, progress=False)
    for budget in (3.0,):
        plan = plan_quantization(model, budget_bits=budget, noise=noise, fitted=fitted, progress=False)
        label = f"plan_{name}@{budget:g}"
        deq = {k: v.detach().cpu().float().contiguous() for k, v in plan.state_dict().items()}
        save_file(deq, str(m.work / "weights" / f"{g._safe(label)}.safetensors"))
        ada = [(c.name, c.bits, c.granularity) for c in plan.choices if "ada" in c.name and c.name.endswith("weight")]
        row = g.evaluate_cell(m, label=label, budget=budget, fields={"method": "plan", "setting": name,
                                                                    "bits_per_weight": plan.bits_per_weight})
        row["ada"] = ada
        row["predicted_additive"] = plan.predicted_delta.value
        rows.append(row)
        print(json.dumps({k: row.get(k) for k in ("setting", "bits_per_weight", "fid", "dfid", "dfid_low", "dfid_high",
                                                  "predicted_dfid", "psnr", "ada", "predicted_additive")}), flush=True)
q = peer_at_budget(sd, family="hqq:g64", budget=3.0, cache={})
save_file({k: v.float().contiguous() for k, v in q.state_dict.items()}, str(m.work / "weights" / f"{g._safe(q.label)}.safetensors"))
row = g.evaluate_cell(m, label=q.label, budget=3.0, fields={"method": "hqq:g64", "setting": q.setting,
                                                             "bits_per_weight": q.bits_per_weight})
print(json.dumps({k: row.get(k) for k in ("setting", "bits_per_weight", "fid", "dfid", "dfid_low", "dfid_high",
                                          "predicted_dfid", "psnr")}), flush=True)
rows.append(row)
Path(args.out).write_text(json.dumps({"sensitivity_s": round(t_sens, 1), "rows": rows}, indent=1, default=str))
