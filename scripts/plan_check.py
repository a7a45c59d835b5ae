"""Cheap check of ``fmq plan`` against the naive rules of issue 12, by sample-level MSE/PSNR.

Usage::

    PYTHONPATH=. python scripts/plan_check.py CHECKPOINT_DIR OUT.json [--device cpu] [--samples 32]
        [--eval-samples 32] [--budgets 2.0,2.5,3.0,4.0] [--steps 10]

First, for each budget: the plan (sensitivity from ``--samples`` Gaussian noise draws, seed 0; no
data set), its time, honest bits/weight, predicted E|dx|^2; then samples of the plan's packed
model (:func:`fmq_theory.plan.load_quantized_model`) and of the naive rules (per-channel
``uniform_minmax`` / ``lloyd_max`` at 2-4 bits, with and without every tensor of <= 4096
weights in fp16: the issue's table plus 2 bits) from ``--eval-samples`` other noise draws (seed 1), midpoint ``--steps``,
against the full-precision samples from the same noise (plans first, then the naive rules): MSE per entry and PSNR (peak-to-peak
2, images in [-1, 1], clipped).  Also the weighted-vs-unweighted comparison (predicted
contribution of per-channel 3-bit ``weighted_lloyd`` against ``lloyd_max`` summed over the
tensors), the resident bytes and sampling time of the packed model against full precision.
"""
import argparse
import json
import math
import time

import numpy as np
import torch

from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.checkpoints import load_trained_model
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.plan import load_quantized_model, plan_quantization, resident_bytes, weight_sensitivity
from fmq_theory.plan.candidates import Candidate, dequantized, fit_candidate
from fmq_theory.quantizers import quantize

p = argparse.ArgumentParser()
p.add_argument("checkpoint")
p.add_argument("out")
p.add_argument("--device", default="cpu")
p.add_argument("--samples", type=int, default=32)
p.add_argument("--eval-samples", type=int, default=32)
p.add_argument("--budgets", default="2.0,2.5,3.0,4.0")
p.add_argument("--steps", type=int, default=10)
args = p.parse_args()
torch.manual_seed(0)
lm = load_trained_model(args.checkpoint, device=args.device)
model = lm.model
cfg = model.config
event = (cfg.in_channels, cfg.image_size, cfg.image_size)
results = {"checkpoint": args.checkpoint, "sha256": lm.sha256, "device": args.device, "steps": args.steps,
           "samples": args.samples, "eval_samples": args.eval_samples, "data_free": True, "rows": []}


def save():
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1)


t = time.perf_counter()
noise = make_noise(args.samples, event, seed=0)
labels = balanced_labels(args.samples, cfg.num_classes)
sens = weight_sensitivity(model, noise, adapter=unet_adapter(model, labels), solver="midpoint", steps=args.steps,
                          projections=1, replicates=4, batch_size=8, seed=0, progress=True)
results["sensitivity_seconds"] = time.perf_counter() - t
print(f"sensitivity: {results['sensitivity_seconds']:.1f} s", flush=True)

eval_noise = make_noise(args.eval_samples, event, seed=1)
eval_labels = balanced_labels(args.eval_samples, cfg.num_classes)


def draw(m):
    t0 = time.perf_counter()
    x = sample(m, eval_noise, adapter=unet_adapter(model, eval_labels), solver="midpoint", steps=args.steps,
               clip=(-1.0, 1.0), batch_size=64).x
    return x, time.perf_counter() - t0


fp_x, fp_time = draw(model)
results["fp"] = {"sampling_seconds": fp_time, "resident_bytes": resident_bytes(model)}
print(f"FP sampling {fp_time:.1f} s, resident {resident_bytes(model)} B", flush=True)


def score(x):
    mse = float(((x - fp_x) ** 2).mean())
    return mse, (10 * math.log10(4.0 / mse) if mse > 0 else float("inf"))


state = model.state_dict()
n_total = sum(v.numel() for v in state.values() if v.is_floating_point())


def naive(method, bits, small_fp16):
    sd, nbytes, e2 = {}, 0, {}
    for k, v in state.items():
        if small_fp16 and v.numel() <= 4096:
            sd[k], nb = v.half().float(), 2 * v.numel()
        else:
            qt = quantize(v, method=method, bits=bits, granularity="channel")
            sd[k] = qt.dequantize()
            nb = (bits * v.numel() + 7) // 8 + qt.overhead_bits // 8
        nbytes += nb
        if k in sens.diag:
            e2[k] = ((sd[k].double() - v.double()) ** 2).numpy()
    return sd, 8 * nbytes / n_total, sens.interval(e2)


for budget in [float(b) for b in args.budgets.split(",")]:
    t0 = time.perf_counter()
    plan = plan_quantization(model, budget_bits=budget, adapter=unet_adapter(model, labels), noise=noise,
                             steps=args.steps, sensitivity=sens, progress=False)
    plan_time = time.perf_counter() - t0
    packed = load_quantized_model(load_trained_model(args.checkpoint, device="cpu").model, plan)
    packed.to(args.device)
    x, secs = draw(packed)
    mse, psnr = score(x)
    d = plan.predicted_delta
    methods = {}
    for c in plan.choices:
        methods[c.method] = methods.get(c.method, 0) + c.n_weights
    row = {"kind": "plan", "budget": budget, "bits_per_weight": plan.bits_per_weight, "plan_seconds": plan_time,
           "predicted": [d.value, d.low, d.high], "predicted_per_entry": d.per_entry, "dual_bound": plan.dual_bound,
           "sample_mse": mse, "psnr": psnr, "packed_sampling_seconds": secs,
           "packed_resident_bytes": resident_bytes(packed), "weights_by_method": methods,
           "frontier_peak": plan.settings["frontier_peak"]}
    results["rows"].append(row)
    save()
    print(row, flush=True)
    print(plan.report(), flush=True)

# weighted vs unweighted codebooks, per channel 3 bits, fp16 codebooks: predicted contribution
tot = {"lloyd_max": 0.0, "weighted_lloyd": 0.0}
for k, s in sens.diag.items():
    w = state[k].cpu()
    if w.numel() <= 256:
        continue
    for meth in tot:
        f = fit_candidate(w, Candidate(meth, 3, "channel", "float16"), sensitivity=s, score=sens.scorer(k))
        tot[meth] += f.predicted
results["weighted_vs_unweighted_b3_channel_fp16"] = tot
save()
print("weighted vs unweighted (b3 channel fp16, predicted E|dx|^2):", tot, flush=True)

NAIVE = (("uniform_minmax", 3, False), ("lloyd_max", 3, False), ("uniform_minmax", 3, True), ("lloyd_max", 3, True),
         ("uniform_minmax", 4, True), ("uniform_minmax", 2, True), ("lloyd_max", 2, True))
for method, bits, small in NAIVE:
    sd, bpw, pred = naive(method, bits, small)
    m2 = load_trained_model(args.checkpoint, device=args.device).model
    m2.load_state_dict(sd)
    x, secs = draw(m2)
    mse, psnr = score(x)
    row = {"kind": "naive", "method": method, "bits": bits, "small_fp16": small, "bits_per_weight": bpw,
           "predicted": pred, "sample_mse": mse, "psnr": psnr}
    results["rows"].append(row)
    save()
    print(row, flush=True)
