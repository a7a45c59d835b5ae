"""CPU: where the plan lost to HQQ on the DiT, would a variant with HQQ's layout have been picked?

On the GPU the plan lost to HQQ on the FashionMNIST DiT at HQQ's own bits per weight
(``results/plan_dit.csv``: g128 b2 at 2.3369 bits, g128 b4 at 4.3242, g64 b4 at 4.5676).  The plan
chooses between its variants (a knapsack per code family and bit floor) by the data-free shift of
their samples (:func:`fmq_theory.plan.selection.distribution_shift`).  Here, for each of those budgets,
three weight sets are sampled from the plan's own noise (256 draws of seed 1, balanced labels) and
scored by that shift against the full-precision samples:

* ``plan``: :func:`fmq_theory.plan.plan_quantization` with its defaults, the variant it chose;
* ``layout``: HQQ's layout made from the plan's own fitted options: every tensor the peer
  quantizes at the plan's ``half_quadratic`` option of the same bits and group size (float16 scale
  and offset), and every tensor the peer keeps in float16 kept in float16.  These are the same
  bytes as the peer;
* ``peer``: the ``hqq`` package's quantization (:func:`fmq_theory.harness.peers.quantize_peer`).

With each is its GPU-measured classifier dFID where the csv has one (plan and peer rows, 5,000
samples)::

    PYTHONPATH=. python scripts/plan_layout_cpu.py   # ~10 min on 2 cores -> results/plan_layout_dit_cpu.json

A layout variant whose shift is below the chosen variant's would have been picked, had the plan
offered it.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, "scripts")
from gpu_plan_eval import SOLVER, STEPS, CpuExperiment  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.harness.peers import quantize_peer  # noqa: E402
from fmq_theory.plan import plan_quantization  # noqa: E402
from fmq_theory.plan.core import variant_state  # noqa: E402
from fmq_theory.plan.selection import distribution_shift, sampled  # noqa: E402

#: The peer settings the plan lost to on the GPU: (family, setting, half_quadratic bits, group size).
PEERS = (("hqq:g128", "b2", 2, 128), ("hqq:g128", "b4", 4, 128), ("hqq:g64", "b4", 4, 64))


def hqq_layout(fitted, peer, *, bits: int, group: int) -> tuple[list, int]:
    """``(picks, bytes)``: HQQ's layout made of the plan's own fits (``fitted``): every tensor the peer
    quantizes at the plan's ``half_quadratic`` option of ``bits`` in groups of ``group`` (float16 scale and
    offset), every other tensor (and one with no such option) kept in float16."""
    picks, nbytes = [], 0
    for name, fits in zip(fitted.names, fitted.fitted):
        own = ("half_quadratic", bits, f"group:{group}", "float16")
        j = next((j for j, f in enumerate(fits) if (f.candidate.method, f.candidate.bits, f.candidate.granularity,
                                                     f.candidate.storage) == own), None)
        if j is None or peer.tensor_format[name] == "fp16":
            j = next(j for j, f in enumerate(fits) if f.candidate.method == "float16")
        picks.append(j)
        nbytes += fits[j].nbytes
    return picks, nbytes


def measured(path: Path) -> dict:
    """``(budget label, method) -> (dfid, low, high)`` of the GPU csv."""
    with path.open() as f:
        return {(r["budget"], r["method"]): (float(r["dfid"]), float(r["dfid_low"]), float(r["dfid_high"]))
                for r in csv.DictReader(f)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="dit", choices=("mnist", "fashion_mnist", "dit"))
    p.add_argument("--out", default=None, help="default results/plan_layout_<model>_cpu.json")
    args = p.parse_args()
    start = time.perf_counter()
    exp = CpuExperiment.start(name=args.model, samples=256, pairs=8, work="runs/plan_layout", fit=True)
    model, fitted = exp.model, exp.fitted
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    n_total = sum(state[k].numel() for k in fitted.names)
    gpu = measured(Path(f"results/plan_{args.model}.csv"))
    reference = sampled(model, state, exp.noise, adapter=exp.adapter(), solver=SOLVER, steps=STEPS)

    def shift(weights) -> dict:
        x = sampled(model, {k: v.float() for k, v in weights.items()}, exp.noise, adapter=exp.adapter(),
                    solver=SOLVER, steps=STEPS)
        value, low, high = distribution_shift(x, reference)
        return {"shift": value, "shift_low": low, "shift_high": high}

    for family, setting, bits, group in PEERS:
        peer = quantize_peer(state, family=family, setting=setting)
        budget = round(peer.bits_per_weight, 4)  # the GPU run's budget label: the peer's bits, rounded down there
        label = next(k[0] for k in gpu if k[1] == family and abs(float(k[0]) - budget) < 1e-3)
        plan = plan_quantization(model, budget_bits=float(label), noise=exp.noise, fitted=fitted,
                                 adapter=exp.adapter(), progress=False)
        picks, nbytes = hqq_layout(fitted, peer, bits=bits, group=group)
        rows = [("plan", f"{plan.settings['family']}, floor {plan.settings['bit_floor']}", plan.bits_per_weight,
                 plan.state_dict(), gpu.get((label, "plan"))),
                ("layout", f"half_quadratic b{bits} group:{group} where the peer quantizes, float16 elsewhere",
                 8 * nbytes / n_total, variant_state(state, fitted, picks), None),
                ("peer", f"{family} {setting}", peer.bits_per_weight, peer.state_dict, gpu.get((label, family)))]
        for kind, what, bpw, weights, dfid in rows:
            exp.rows.append({"budget": float(label), "kind": kind, "what": what, "bits_per_weight": bpw,
                             **shift(weights), "gpu_dfid": None if dfid is None else dfid[0],
                             "gpu_dfid_low": None if dfid is None else dfid[1],
                             "gpu_dfid_high": None if dfid is None else dfid[2]})
            print(f"[{args.model}] {label} {kind} ({what}): {bpw:.4f} bpw, shift {exp.rows[-1]['shift']:.4g} "
                  f"[{exp.rows[-1]['shift_low']:.4g}, {exp.rows[-1]['shift_high']:.4g}], GPU dFID "
                  f"{'-' if dfid is None else f'{dfid[0]:.3g}'} ({time.perf_counter() - start:.0f} s)", flush=True)
    exp.write(args.out or f"results/plan_layout_{args.model}_cpu.json",
              command=f"PYTHONPATH=. python scripts/plan_layout_cpu.py --model {args.model}",
              plan_samples=256, seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
