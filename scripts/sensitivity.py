"""Per-tensor sensitivity: quantize ONE tensor at a time and measure what it does to v.

Usage: python scripts/sensitivity.py [--dataset mnist] [--bits 3] [--methods equal_mass lloyd_max uniform_minmax]
For each method and each floating tensor of the checkpoint: the tensor's weight MSE, the
largest absolute weight error, the RMS error on the top 1% of |w| (the tails), and the
relative velocity error ||v_q - v|| / ||v|| over probe points (8 trajectories of the
full-precision model at t = 0, 0.5, 0.9; same noise) with only that tensor quantized.
One more row per method, tensor "__all__", has every tensor quantized at once (its mse is
the size-weighted mean, its max_abs_err the largest over tensors, no top-1%/rms_w).
Writes results/sensitivity_<dataset>_<bits>b.csv (or --out; the
:data:`fmq_theory.results.schema.SENSITIVITY` table) and prints the tensors that dominate.
"""
import argparse
import os
from pathlib import Path

import numpy as np
import torch

from fmq_theory.bounds.constants import trajectory_points
from fmq_theory.flow.solvers import balanced_labels, make_noise
from fmq_theory.harness.models.unet import guided_velocity
from fmq_theory.harness.checkpoints import load_trained_model
from fmq_theory.quantizers import quantize_state_dict
from fmq_theory.results.schema import SENSITIVITY

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", default="mnist")
parser.add_argument("--bits", type=int, default=3)
parser.add_argument("--methods", nargs="+", default=["equal_mass", "lloyd_max", "uniform_minmax"])
parser.add_argument("--probes", type=int, default=8)
parser.add_argument("--out", default=None,
                    help="output csv (default results/sensitivity_<dataset>_<bits>b.csv)")
parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
args = parser.parse_args()
torch.set_num_threads(args.threads)

lm = load_trained_model(Path("checkpoints") / args.dataset)
model = lm.model
noise = make_noise(args.probes, (1, 28, 28), seed=0)
labels = balanced_labels(args.probes, 10)
pts = [(t, x) for t, x in trajectory_points(guided_velocity(model, labels, 0.0), noise, solver="midpoint", steps=10)
       if t in (0.0, 0.5, 0.9)]
sd = {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def velocities(m):
    return torch.cat([m(x, torch.full((x.shape[0],), t), labels).flatten() for t, x in pts])


v_ref = velocities(model)
rows = []
for method in args.methods:
    qsd = quantize_state_dict(sd, method=method, bits=args.bits)
    deq = qsd.state_dict()
    for rep in qsd.report:
        w, wq = sd[rep.name].double(), deq[rep.name].double()
        err = (wq - w).abs().flatten()
        k = max(1, w.numel() // 100)
        top = torch.topk(w.abs().flatten(), k).indices
        model.load_state_dict({**sd, rep.name: deq[rep.name]})
        dv = float((velocities(model) - v_ref).norm() / v_ref.norm())
        rows.append({"dataset": args.dataset, "method": method, "bits": args.bits,
                     "tensor": rep.name, "n_weights": rep.n_weights, "mse": rep.mse,
                     "max_abs_err": float(err.max()), "top1pct_rms_err": float(err[top].pow(2).mean().sqrt()),
                     "rms_w": float(w.pow(2).mean().sqrt()), "rel_velocity_err": dv})
    model.load_state_dict({**sd, **{rep.name: deq[rep.name] for rep in qsd.report}})
    dv_all = float((velocities(model) - v_ref).norm() / v_ref.norm())
    rows.append({"dataset": args.dataset, "method": method, "bits": args.bits, "tensor": "__all__",
                 "n_weights": qsd.n_weights, "mse": qsd.mse,
                 "max_abs_err": max(r["max_abs_err"] for r in rows if r["method"] == method),
                 "top1pct_rms_err": float("nan"), "rms_w": float("nan"), "rel_velocity_err": dv_all})
    model.load_state_dict(sd)
path = Path(args.out) if args.out else Path("results") / f"sensitivity_{args.dataset}_{args.bits}b.csv"
SENSITIVITY.write(path, rows)
for method in args.methods:
    dv_all = next(r["rel_velocity_err"] for r in rows if r["method"] == method and r["tensor"] == "__all__")
    rs = sorted((r for r in rows if r["method"] == method and r["tensor"] != "__all__"),
                key=lambda r: -r["rel_velocity_err"])
    tot = sum(r["rel_velocity_err"] ** 2 for r in rs)
    print(f"{method}: all tensors at once: rel. velocity error {dv_all:.4g}; "
          f"sum of squared per-tensor rel. velocity errors {tot:.4g}; "
          f"weight MSE (size-weighted) {sum(r['mse'] * r['n_weights'] for r in rs) / sum(r['n_weights'] for r in rs):.3g}; "
          f"mean top-1% |w| RMS error {np.mean([r['top1pct_rms_err'] for r in rs]):.3g}")
    for r in rs[:6]:
        print(f"   {r['tensor']:40s} dv={r['rel_velocity_err']:.4f} mse={r['mse']:.2e} "
              f"maxerr={r['max_abs_err']:.3f} top1%={r['top1pct_rms_err']:.3f} rms_w={r['rms_w']:.3f}")
