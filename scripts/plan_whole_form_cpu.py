"""CPU: does an allocation priced by the whole first-order form beat the additive knapsack? (It does not, at 2 bits.)

On a committed model (``--model``: the FashionMNIST DiT by default, where HQQ g128 b2 beat the plan), at the
honest bits per weight of HQQ g128 b2, each variant of the plan (the knapsack of one code family and bit floor)
is re-allocated by :func:`fmq_theory.plan.whole_form.solve_whole_form`, started from the knapsack's choice,
once over that family's options and once over every option.  The sketch
(:func:`fmq_theory.plan.whole_form.sketch_candidates`) has 4 projections on each of 24 batches of 8 noise draws
(192 draws of seed 11, balanced labels): the even batches choose, the odd ones score (held out).  Every choice
is scored three ways, per sample and per entry: the whole form on the probes that chose it (``q_fit``), on the
held-out probes (``q_score``), and the sampled mean squared displacement of its final samples from the
full-precision ones (``sampled_msd``, :func:`fmq_theory.plan.selection.displacement`, the plan's own 128
noise draws of seed 1) which the plan's selection uses::

    PYTHONPATH=. python scripts/plan_whole_form_cpu.py --model dit   # ~12 min on 2 cores
        -> results/plan_whole_form_dit_cpu.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from scipy import stats

sys.path.insert(0, "scripts")
from gpu_plan_eval import SOLVER, STEPS, CpuExperiment  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.flow.solvers import balanced_labels, make_noise  # noqa: E402
from fmq_theory.harness.models.unet import unet_adapter  # noqa: E402
from fmq_theory.harness.peers import quantize_peer  # noqa: E402
from fmq_theory.plan import Candidate, plan_quantization  # noqa: E402
from fmq_theory.plan.core import variant_options, variant_state  # noqa: E402
from fmq_theory.plan.selection import displacement, sampled  # noqa: E402
from fmq_theory.plan.whole_form import CandidateSketch, sketch_candidates, solve_whole_form  # noqa: E402

PEER = ("hqq:g128", "b2")
SKETCH_SAMPLES, SKETCH_SEED, PROJECTIONS, BATCH = 192, 11, 4, 8


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dit", choices=("mnist", "fashion_mnist", "dit"))
    args = p.parse_args()
    start = time.perf_counter()
    exp = CpuExperiment.start(name=args.model, samples=128, pairs=8, work="runs/plan_whole_form", fit=True)
    model, fitted = exp.model, exp.fitted
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    peer = quantize_peer(sd, family=PEER[0], setting=PEER[1])
    n_total = sum(sd[k].numel() for k in fitted.names)
    budget = int(math.floor(peer.bits_per_weight * n_total / 8))
    noise = make_noise(SKETCH_SAMPLES, exp.measure.event, seed=SKETCH_SEED)
    t0 = time.perf_counter()
    sketch = sketch_candidates(model, fitted, noise, adapter=unet_adapter(model, balanced_labels(
        SKETCH_SAMPLES, model.config.num_classes), 0.0), solver=SOLVER, steps=STEPS, projections=PROJECTIONS,
        batch_size=BATCH, seed=SKETCH_SEED, progress=True)
    sketch_s = time.perf_counter() - t0
    fit, score = sketch.split()
    reference = sampled(model, sd, exp.noise, adapter=exp.adapter(), solver=SOLVER, steps=STEPS)

    def row(label, picks=None, state=None, bpw=None):
        state = variant_state(sd, fitted, picks) if state is None else state
        msd, low, high = displacement(sampled(model, state, exp.noise, adapter=exp.adapter(), solver=SOLVER,
                                              steps=STEPS), reference)
        r = {"variant": label, "bits_per_weight": bpw if picks is None else
             8 * sum(int(c[j]) for c, j in zip(fitted.costs, picks)) / n_total,
             "q_fit": None if picks is None else fit.value(picks),
             "q_score": None if picks is None else score.value(picks),
             "sampled_msd": msd, "sampled_low": low, "sampled_high": high}
        exp.rows.append(r)
        print(r, flush=True)

    row(f"{PEER[0]} {PEER[1]}", state={k: v.float() for k, v in peer.state_dict.items()}, bpw=peer.bits_per_weight)
    for family in ("optimal", "minmax"):
        for floor in (1, 2):
            plan = plan_quantization(model, budget_bits=peer.bits_per_weight, adapter=exp.adapter(), noise=exp.noise,
                                     fitted=fitted, bit_floors=(floor,), families=(family,), progress=False)
            picks = tuple(next(j for j, f in enumerate(fits) if f.candidate == Candidate(
                c.method, c.bits, c.granularity, c.storage)) for fits, c in zip(fitted.fitted, plan.choices))
            row(f"knapsack: {family}, floor {floor}", picks)
            allowed = [variant_options(fits, floor=floor, family=family).tolist() for fits in fitted.fitted]
            sub = CandidateSketch(dots=tuple(d[:, a] for d, a in zip(fit.dots, allowed)), batches=fit.batches,
                                  norm=fit.norm)
            within = solve_whole_form([c[a] for c, a in zip(fitted.costs, allowed)], sub, budget=budget,
                                      start=[a.index(j) for a, j in zip(allowed, picks)])
            row(f"whole form, {family} options, from floor {floor}",
                tuple(a[j] for a, j in zip(allowed, within.choice)))
            row(f"whole form, every option, from {family} floor {floor}",
                solve_whole_form(fitted.costs, fit, budget=budget, start=picks).choice)
    planned = [r for r in exp.rows if r["q_score"] is not None]
    exp.write(f"results/plan_whole_form_{args.model}_cpu.json",
              command=f"PYTHONPATH=. python scripts/plan_whole_form_cpu.py --model {args.model}",
              budget=peer.bits_per_weight, probes_fit=fit.n_probes, probes_score=score.n_probes,
              sketch_seconds=round(sketch_s, 1),
              spearman_q_score=float(stats.spearmanr([r["q_score"] for r in planned],
                                                     [r["sampled_msd"] for r in planned]).statistic),
              seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
