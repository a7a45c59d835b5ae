"""CPU experiment: which data-free score ranks the plan's variants as their measured FID does.

The GPU measured every variant of the plan at several budgets (``results/plan_variants_gpu.json``,
``results/plan_variants_groupings_gpu.json``, ``scripts/gpu_plan_variants.py``: 5,000 samples and
classifier FID per variant).  Here every one of those variants is made again on the CPU, exactly as
that script makes it (the same sensitivity seed, 256 noise draws, 8 replicates, the same candidates
and the knapsack of that one family, floor and grouping), sampled from the plan's own noise, and
scored by several data-free scores of its samples against the full-precision ones:

* ``shift``: squared W2 between diagonal Gaussian fits, per entry (the plan's ranking score,
  :func:`fmq_theory.plan.selection.distribution_shift`);
* ``marginal_w2``: squared W2 between the empirical marginals of each entry, per entry (POT's
  ``wasserstein_1d``; no Gaussian fit);
* ``sliced_w2``: squared sliced W2 between the whole samples (POT's ``sliced_wasserstein_distance``,
  512 directions), which sees the correlations between entries;
* ``pooled_fd``: the Frechet distance between Gaussian fits of the samples average-pooled to 7 x 7
  (49 entries, well determined by 256 draws);
* ``random_fd``: the Frechet distance between Gaussian fits of features of a fixed random
  convolutional network (seed 0; no data set is involved).

Each score is then judged on the measured changes of the GPU files: per (model, budget), the
measured dFID of its pick against the best variant's, and Spearman's rank correlation::

    PYTHONPATH=. python scripts/plan_scores_cpu.py   # ~40 min on 2 cores -> results/plan_scores_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import ot
import torch
from scipy import stats

sys.path.insert(0, "scripts")
from gpu_plan_eval import MODELS, PLAN_SEED, SOLVER, STEPS, Measure, Setup  # noqa: E402

from fmq_theory.flow.frechet import frechet_distance, gaussian_fit  # noqa: E402
from fmq_theory.flow.solvers import balanced_labels, make_noise  # noqa: E402
from fmq_theory.harness.models.unet import unet_adapter  # noqa: E402
from fmq_theory.plan import fit_candidates, plan_quantization, weight_sensitivity  # noqa: E402
from fmq_theory.plan.selection import distribution_shift, sampled  # noqa: E402

GPU_FILES = ("results/plan_variants_gpu.json", "results/plan_variants_groupings_gpu.json")
PLAN_SAMPLES, REPLICATES, PROJECTIONS = 256, 8, 512
SCORES = ("shift", "marginal_w2", "sliced_w2", "pooled_fd", "random_fd")


def random_features(x: torch.Tensor) -> torch.Tensor:
    """64 features per sample from a fixed random two-layer convolutional network (seed 0)."""
    gen = torch.Generator().manual_seed(0)
    c = x.shape[1]
    w1 = torch.randn(32, c, 3, 3, generator=gen, dtype=torch.float64) / (3 * c ** 0.5)
    w2 = torch.randn(64, 32, 3, 3, generator=gen, dtype=torch.float64) / (3 * 32 ** 0.5)
    h = torch.relu(torch.nn.functional.conv2d(x.double(), w1, stride=2, padding=1))
    h = torch.relu(torch.nn.functional.conv2d(h, w2, stride=2, padding=1))
    return h.mean(dim=(2, 3))


def scores(x: torch.Tensor, reference: torch.Tensor) -> dict:
    """Every score of samples ``x`` against the full-precision ``reference`` (same noise)."""
    a, b = x.reshape(x.shape[0], -1).double().numpy(), reference.reshape(reference.shape[0], -1).double().numpy()
    pool = torch.nn.functional.adaptive_avg_pool2d
    pa, pb = pool(x.double(), 7).flatten(1), pool(reference.double(), 7).flatten(1)
    fa, fb = random_features(x), random_features(reference)
    return {"shift": distribution_shift(x, reference)[0],
            "marginal_w2": float(np.mean(ot.wasserstein_1d(a, b, p=2))),
            "sliced_w2": float(ot.sliced_wasserstein_distance(a, b, n_projections=PROJECTIONS, seed=0)) ** 2,
            "pooled_fd": float(frechet_distance(*gaussian_fit(pa), *gaussian_fit(pb))),
            "random_fd": float(frechet_distance(*gaussian_fit(fa), *gaussian_fit(fb)))}


def measured_rows() -> dict:
    """``(model, budget, family, floor, grouping) -> GPU row`` over both files (a variant in both: the first)."""
    out = {}
    for path in GPU_FILES:
        for r in json.loads(Path(path).read_text())["rows"]:
            out.setdefault((r["model"], r["budget"], r["family"], r["floor"], r.get("grouping", "any")), r)
    return out


def judge(rows: list) -> dict:
    """Per score: cells where it picks the measured best, the sum of its regrets, and the median Spearman."""
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["model"], r["budget"]), []).append(r)
    out = {}
    for s in ("msd_gpu", *SCORES):
        regrets, rhos = [], []
        for group in cells.values():
            best = min(r["dfid"] for r in group)
            regrets.append(min(group, key=lambda r: (r[s], r["floor"]))["dfid"] - best)
            if len(group) > 2:
                rhos.append(stats.spearmanr([r[s] for r in group], [r["dfid"] for r in group]).statistic)
        out[s] = {"best_picked": int(sum(g == 0 for g in regrets)), "cells": len(regrets),
                  "total_regret": float(sum(regrets)), "max_regret": float(max(regrets)),
                  "median_spearman": float(np.median(rhos))}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="dit,fashion_mnist")
    p.add_argument("--out", default="results/plan_scores_cpu.json")
    args = p.parse_args()
    torch.manual_seed(0)
    wanted, rows, start = measured_rows(), [], time.perf_counter()
    for name in args.models.split(","):
        setup = Setup(name=name, checkpoint=MODELS[name][1], samples=16, pairs=4, batch_size=16, n_boot=10,
                      n_boot_inception=10, inception=None, device="cpu", work="runs/plan_scores", real_images=None)
        measure = Measure(setup)
        model = measure.ctx.model
        noise = make_noise(PLAN_SAMPLES, measure.event, seed=PLAN_SEED)
        n_classes = model.config.num_classes
        adapter = unet_adapter(model, balanced_labels(PLAN_SAMPLES, n_classes) if n_classes else None, 0.0)
        sens = weight_sensitivity(model, noise, adapter=adapter, solver=SOLVER, steps=STEPS, replicates=REPLICATES,
                                  batch_size=32, seed=PLAN_SEED, progress=True)
        fitted = fit_candidates(model, sensitivity=sens, workers=min(16, os.cpu_count() or 1), progress=True)
        reference = sampled(model, model.state_dict(), noise, adapter=adapter, solver=SOLVER, steps=STEPS)
        print(f"[{name}] sensitivity and fits {time.perf_counter() - start:.0f} s", flush=True)
        seen: dict = {}
        for key, gpu in sorted((k, v) for k, v in wanted.items() if k[0] == name):
            _, budget, family, floor, grouping = key
            plan = plan_quantization(model, budget_bits=budget, noise=noise, fitted=fitted, bit_floors=(floor,),
                                     families=(family,), groupings=(grouping,), adapter=adapter, progress=False)
            picks = tuple((c.name, c.method, c.bits, c.granularity, c.storage) for c in plan.choices)
            if picks not in seen:
                x = sampled(model, {k: v.float() for k, v in plan.state_dict().items()}, noise, adapter=adapter,
                            solver=SOLVER, steps=STEPS)
                seen[picks] = scores(x, reference)
            rows.append({"model": name, "budget": budget, "family": family, "floor": floor, "grouping": grouping,
                         "bits_per_weight": plan.bits_per_weight, "gpu_bits_per_weight": gpu["bits_per_weight"],
                         "shift_gpu": gpu.get("shift", gpu["w2_diag"] / reference[0].numel()),
                         "msd_gpu": gpu["msd"], "dfid": gpu["dfid"], **seen[picks]})
            print(f"[{name}] {budget:g} {family} f{floor} {grouping}: shift {rows[-1]['shift']:.4g} "
                  f"(GPU {rows[-1]['shift_gpu']:.4g}), dFID {gpu['dfid']:.2f}, {time.perf_counter() - start:.0f} s",
                  flush=True)
        Path(args.out).write_text(json.dumps({
            "provenance": "PYTHONPATH=. python scripts/plan_scores_cpu.py " + " ".join(sys.argv[1:]),
            "gpu_files": GPU_FILES, "plan_samples": PLAN_SAMPLES, "seconds": round(time.perf_counter() - start, 1),
            "judged": judge(rows), "rows": rows}, indent=1))
    print(json.dumps(judge(rows), indent=1))


if __name__ == "__main__":
    main()
