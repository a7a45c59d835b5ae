"""CPU: would the plan beat HQQ if HQQ's own codes were among its options? (The knapsack's allocation, tested.)

On a committed model (``--model``: the FashionMNIST DiT by default), at the honest bits per weight of HQQ g128 b2
(the peer that beat the plan there on the GPU), the plan's knapsack (additive prices, held-out sensitivity
half, as :func:`fmq_theory.plan.plan_quantization`) is solved over three option sets beside the kept float16 /
float32 tensors: the plan's own quantized options, HQQ's (the ``hqq`` package through
:func:`fmq_theory.harness.peers.quantize_peer`: 1-4 bits in groups of 64 and 128, scale and zero in fp16,
every byte counted as the peer counts it), and both; each with bit floors 1, 2 and 3.  Every solution and HQQ
g128 b2 itself are sampled from the plan's own noise (128 draws of seed 1) and scored by the mean squared
displacement of their final samples from the full-precision ones, per entry, as the plan's selection scores its
variants::

    PYTHONPATH=. python scripts/plan_hqq_options_cpu.py --model dit   # ~10 min on 2 cores
        -> results/plan_hqq_options_dit_cpu.json

HQQ's options are not in the package's quantized file format, so this is an experiment on the allocation, not
a plan that can be written: it says whether adding a half-quadratic grid to the plan's candidates is worth it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

sys.path.insert(0, "scripts")
from gpu_plan_eval import SOLVER, STEPS, CpuExperiment  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.harness.peers import quantize_peer  # noqa: E402
from fmq_theory.plan import solve_mckp  # noqa: E402
from fmq_theory.plan.selection import displacement, sampled  # noqa: E402
from fmq_theory.quantizers import QuantizedTensor  # noqa: E402

PEER = ("hqq:g128", "b2")
HQQ_SETTINGS = [(f"hqq:g{g}", f"b{b}") for g in (64, 128) for b in (1, 2, 3, 4)]
FLOORS = (1, 2, 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dit", choices=("mnist", "fashion_mnist", "dit"))
    args = p.parse_args()
    start = time.perf_counter()
    exp = CpuExperiment.start(name=args.model, samples=128, pairs=8, work="runs/plan_hqq_options", fit=True)
    model, fitted = exp.model, exp.fitted
    score = fitted.score_sensitivity
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    n_total = sum(sd[k].numel() for k in fitted.names)
    peers = {s: quantize_peer(sd, family=s[0], setting=s[1]) for s in HQQ_SETTINGS}
    budget = int(math.floor(peers[PEER].bits_per_weight * n_total / 8))
    # every option of every tensor: (kind, bits, bytes, additive value, dequantized tensor)
    options = []
    for name, fits in zip(fitted.names, fitted.fitted):
        s = score.diag.get(name)
        w = sd[name].double()
        mine = []
        for f in fits:
            kind = "plan" if isinstance(f.stored, QuantizedTensor) else "kept"
            mine.append((kind, f.candidate.bits, f.nbytes, f.predicted,
                         f.restored(sd[name].dtype)))
        for (family, setting), q in peers.items():
            if q.tensor_format[name].startswith("hqq"):
                e2 = ((q.state_dict[name].double() - w) ** 2).numpy()
                mine.append(("hqq", int(setting[1:]), math.ceil(q.tensor_bits[name] / 8),
                             0.0 if s is None else float(np.sum(s * e2)), q.state_dict[name].float()))
        options.append(mine)
    reference = sampled(model, sd, exp.noise, adapter=exp.adapter(), solver=SOLVER, steps=STEPS)

    def record(label, state, bpw, additive=None):
        msd, low, high = displacement(sampled(model, state, exp.noise, adapter=exp.adapter(), solver=SOLVER,
                                              steps=STEPS), reference)
        exp.rows.append({"variant": label, "bits_per_weight": bpw, "additive": additive, "sampled_msd": msd,
                         "sampled_low": low, "sampled_high": high})
        print(exp.rows[-1], flush=True)

    record(f"{PEER[0]} {PEER[1]}", {k: v.float() for k, v in peers[PEER].state_dict.items()}, peers[PEER].bits_per_weight)
    for kinds in (("plan",), ("hqq",), ("plan", "hqq")):
        for floor in FLOORS:
            allowed = [[j for j, o in enumerate(opts) if o[0] == "kept" or (o[0] in kinds and o[1] >= floor)]
                       for opts in options]
            if sum(min(opts[j][2] for j in a) for opts, a in zip(options, allowed)) > budget:
                continue
            sol = solve_mckp([np.array([opts[j][2] for j in a]) for opts, a in zip(options, allowed)],
                             [np.array([opts[j][3] for j in a]) for opts, a in zip(options, allowed)], budget=budget)
            picks = [opts[a[j]] for opts, a, j in zip(options, allowed, sol.choice)]
            state = dict(sd) | {name: o[4] for name, o in zip(fitted.names, picks)}
            record(f"knapsack: {' + '.join(kinds)} options, floor {floor}", state, 8 * sol.cost / n_total, sol.value)
    exp.write(f"results/plan_hqq_options_{args.model}_cpu.json",
              command=f"PYTHONPATH=. python scripts/plan_hqq_options_cpu.py --model {args.model}",
              budget=peers[PEER].bits_per_weight, seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
