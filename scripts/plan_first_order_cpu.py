"""CPU: why the additive prices misrank the plans: the diagonal against the whole first-order form.

On a committed model (``--model``: the FashionMNIST DiT by default, where HQQ g128 b2 beat the plan on
the GPU at 2-2.5 bits per weight), at the honest bits per weight of HQQ g128 b2, each variant of the plan (the knapsack of each code
family and bit floor alone) and four per-group/per-channel peers are scored three ways on the plan's
own Gaussian noise (128 draws of seed 1, balanced labels):

* the additive model's price, the diagonal :math:`\\sum_i s_i e_i^2` of the sample-level Fisher;
* the whole first-order form :math:`E_z|J e|^2`, cross-weight terms included, on the same VJP probes
  (:func:`fmq_theory.plan.first_order_displacement`, 16 batches of 8 draws, 2 projections each);
* the sampled mean squared displacement of the final samples from the full-precision ones
  (:func:`fmq_theory.plan.selection.displacement`), which the plan's selection uses.

All three are per sample and per entry.  Spearman's rank correlation of each first-order price with the
sampled displacement says which one ranks the variants as the samples do.

    PYTHONPATH=. python scripts/plan_first_order_cpu.py --model dit   # ~5 min on 2 cores
        -> results/plan_first_order_dit_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time

from scipy import stats

sys.path.insert(0, "scripts")
from gpu_plan_eval import SOLVER, STEPS, CpuExperiment  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.harness.peers import quantize_peer  # noqa: E402
from fmq_theory.plan import first_order_displacement, plan_quantization  # noqa: E402
from fmq_theory.plan.selection import displacement, sampled  # noqa: E402

PEERS = (("hqq:g128", "b2"), ("rule:uniform_minmax", "b2"), ("rule:uniform_mse", "b2"), ("rule:lloyd_max", "b2"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dit", choices=("mnist", "fashion_mnist", "dit"))
    p.add_argument("--samples", type=int, default=128)
    args = p.parse_args()
    start = time.perf_counter()
    exp = CpuExperiment.start(name=args.model, samples=args.samples, pairs=8, work="runs/plan_first_order", fit=True)
    model = exp.model
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    params = dict(model.named_parameters())
    hqq = quantize_peer(sd, family=PEERS[0][0], setting=PEERS[0][1])
    budget = hqq.bits_per_weight
    states = {}
    for family in ("optimal", "minmax"):
        for floor in (1, 2):
            plan = plan_quantization(model, budget_bits=budget, adapter=exp.adapter(), noise=exp.noise,
                                     fitted=exp.fitted, bit_floors=(floor,), families=(family,), progress=False)
            states[f"plan: {family}, floor {floor}"] = (plan.bits_per_weight, plan.state_dict())
    for family, setting in PEERS:
        q = hqq if family == PEERS[0][0] else quantize_peer(sd, family=family, setting=setting)
        states[f"{family} {setting}"] = (q.bits_per_weight, q.state_dict)
    errors = [{k: state[k].double() - sd[k].double() for k in params} for _, state in states.values()]
    first = first_order_displacement(model, exp.noise, errors, adapter=exp.adapter(), solver=SOLVER, steps=STEPS,
                                     projections=2, batch_size=8, seed=3, progress=True)
    reference = sampled(model, sd, exp.noise, adapter=exp.adapter(), solver=SOLVER, steps=STEPS)
    for (label, (bpw, state)), f in zip(states.items(), first):
        msd, low, high = displacement(sampled(model, {k: v.float() for k, v in state.items()}, exp.noise,
                                              adapter=exp.adapter(), solver=SOLVER, steps=STEPS), reference)
        exp.rows.append({"variant": label, "bits_per_weight": bpw, "diagonal": f.diagonal,
                         "first_order": f.value, "first_order_low": f.low, "first_order_high": f.high,
                         "sampled_msd": msd, "sampled_low": low, "sampled_high": high})
        print(exp.rows[-1], flush=True)
    msd = [r["sampled_msd"] for r in exp.rows]
    exp.write(f"results/plan_first_order_{args.model}_cpu.json",
              command=f"PYTHONPATH=. python scripts/plan_first_order_cpu.py --model {args.model}", budget=budget,
              probes=first[0].n_probes,
              spearman_diagonal=float(stats.spearmanr([r["diagonal"] for r in exp.rows], msd).statistic),
              spearman_first_order=float(stats.spearmanr([r["first_order"] for r in exp.rows], msd).statistic),
              seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
