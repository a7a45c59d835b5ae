"""GPU: every variant of the plan measured, to test the score that chooses among them -> plan_variants.json.

The plan (:func:`fmq_theory.plan.plan_quantization`) solves its knapsack once per code family and
bit floor and kept the variant whose samples, drawn from the plan's own noise, were least displaced
from the full-precision ones (mean squared displacement per entry).  On the FashionMNIST DiT at 2 bits
per weight that choice went wrong on the GPU: the kept variant (half_quadratic, floor 1) measured a FID
change of 387 where the optimal family's floor-1 variant had measured 219.  The first run of this script
(DiT and FashionMNIST UNet; results/plan_variants_gpu.json) found the diagonal Gaussian W2 ranking the
variants as the FID does, and the plan now keeps the variant of least ``shift`` (the same, per entry); the
second (MNIST UNet, results/plan_variants_mnist_gpu.json) tests that choice on a model it was not made on.
This script measures every
variant of every budget: for each model, the sensitivity and the candidates exactly as
``scripts/gpu_plan_eval.py`` makes them, and for each budget, family and floor, the knapsack's solution
(:func:`plan_quantization` with that one family, floor and grouping; the first run had no groupings), its data-free scores on the plan's noise (the
mean squared displacement with its interval, the Frechet distance between Gaussian fits of the samples in
pixel space, and the diagonal one, squared mean shift plus squared standard-deviation shift), and its
measured FID change on the evaluation's noise (classifier features, paired bootstrap), by
``gpu_plan_eval.evaluate_cell``.  One row per variant; the file is rewritten after every budget::

    PYTHONPATH=. python scripts/gpu_plan_variants.py --models dit --budgets 2,3 --match-peer hqq:g128

CPU dry run: ``--device cpu --samples 64 --pairs 16 --plan-samples 16 --models dit --budgets 3``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, "scripts")
from gpu_plan_eval import (MODELS, PLAN_SEED, SOLVER, STEPS, Measure, Setup, _safe,  # noqa: E402
                           evaluate_cell, matched_budgets)

from fmq_theory.flow.frechet import frechet_distance, gaussian_fit  # noqa: E402
from fmq_theory.flow.solvers import balanced_labels, make_noise  # noqa: E402
from fmq_theory.harness.models.unet import unet_adapter  # noqa: E402
from fmq_theory.plan import fit_candidates, plan_quantization, weight_sensitivity  # noqa: E402
from fmq_theory.plan.candidates import CODE_FAMILIES  # noqa: E402
from fmq_theory.plan.selection import GROUPINGS, displacement, distribution_shift, sampled  # noqa: E402


def scores(x: torch.Tensor, reference: torch.Tensor) -> dict:
    """The data-free scores of samples ``x`` against the full-precision ``reference`` (same noise).

    ``w2_diag`` is summed over entries, ``shift`` (the plan's ranking score since this file's first
    run, :func:`~fmq_theory.plan.selection.distribution_shift`) is the same per entry, with its interval.
    """
    msd, low, high = displacement(x, reference)
    shift, shift_low, shift_high = distribution_shift(x, reference)
    a, b = x.reshape(x.shape[0], -1).double(), reference.reshape(reference.shape[0], -1).double()
    fd = frechet_distance(*gaussian_fit(a), *gaussian_fit(b))
    diag = float(((a.mean(0) - b.mean(0)) ** 2).sum() + ((a.std(0) - b.std(0)) ** 2).sum())
    return {"msd": msd, "msd_low": low, "msd_high": high, "fd_pixel": fd, "w2_diag": diag, "shift": shift,
            "shift_low": shift_low, "shift_high": shift_high}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="dit")
    p.add_argument("--checkpoint", action="append", default=[], help="MODEL=FOLDER (default: see MODELS)")
    p.add_argument("--budgets", default="2,3")
    p.add_argument("--match-peer", action="append", default=[], help="also the b2-b4 bits per weight of this peer")
    p.add_argument("--floors", default="1,2,3")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--pairs", type=int, default=1000)
    p.add_argument("--plan-samples", type=int, default=256)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--work", default="runs/plan_variants")
    p.add_argument("--out", default="runs/results/plan_variants.json")
    args = p.parse_args()
    folders = dict(item.split("=", 1) for item in args.checkpoint)
    floors = [int(f) for f in args.floors.split(",")]
    rows, start = [], time.perf_counter()
    for name in args.models.split(","):
        setup = Setup(name=name, checkpoint=folders.get(name, MODELS[name][1]), samples=args.samples,
                      pairs=args.pairs, batch_size=args.samples, n_boot=100, n_boot_inception=10, inception=None,
                      device=args.device, work=args.work, real_images=None)
        measure = Measure(setup)
        model = measure.ctx.model
        noise = make_noise(args.plan_samples, measure.event, seed=PLAN_SEED).to(measure.device)
        n_classes = model.config.num_classes
        adapter = unet_adapter(model, balanced_labels(args.plan_samples, n_classes) if n_classes else None, 0.0)
        sens = weight_sensitivity(model, noise, adapter=adapter, solver=SOLVER, steps=STEPS, replicates=8,
                                  batch_size=32, seed=PLAN_SEED, progress=False)
        fitted = fit_candidates(model, sensitivity=sens, workers=min(16, os.cpu_count() or 1), progress=False)
        reference = sampled(model, model.state_dict(), noise, adapter=adapter, solver=SOLVER, steps=STEPS)
        budgets = [float(b) for b in args.budgets.split(",")]
        for peer in args.match_peer:
            budgets += matched_budgets(model, family=peer)
        print(f"[{name}] sensitivity and fitting {time.perf_counter() - start:.1f} s; budgets {budgets}", flush=True)
        for budget in budgets:
            for family, floor, grouping in itertools.product(CODE_FAMILIES, floors, GROUPINGS):
                try:
                    plan = plan_quantization(model, budget_bits=budget, noise=noise, fitted=fitted,
                                             bit_floors=(floor,), families=(family,), groupings=(grouping,),
                                             adapter=adapter, progress=False)
                except ValueError:  # no plan of this floor within the budget
                    continue
                state = {k: v.detach().cpu().float().contiguous() for k, v in plan.state_dict().items()}
                label = f"variant_{family}_f{floor}_{grouping}@{budget:g}"
                save_file(state, str(measure.work / "weights" / f"{_safe(label)}.safetensors"))
                row = evaluate_cell(measure, label=label, budget=budget,
                                    fields={"method": "plan", "setting": f"{family} floor {floor} {grouping}",
                                            "bits_per_weight": plan.bits_per_weight})
                x = sampled(model, state, noise, adapter=adapter, solver=SOLVER, steps=STEPS)
                rows.append({"model": name, "budget": budget, "family": family, "floor": floor, "grouping": grouping,
                             "bits_per_weight": plan.bits_per_weight, "additive": plan.predicted_delta.value,
                             **scores(x, reference), "fid": row["fid"], "dfid": row["dfid"],
                             "dfid_low": row["dfid_low"], "dfid_high": row["dfid_high"], "psnr": row["psnr"]})
                print(json.dumps(rows[-1]), flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({
                "command": "scripts/gpu_plan_variants.py " + " ".join(sys.argv[1:]), "device": str(measure.device),
                "samples": args.samples, "plan_samples": args.plan_samples,
                "seconds": round(time.perf_counter() - start, 1), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
