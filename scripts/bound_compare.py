"""Slopes of log2(dFID) vs bits and the naive bound chain with constants from the real models.

Usage: python scripts/bound_compare.py [--samples 4 --times 5 --iters 15]
Writes results/bound_{mnist,fashion_mnist}.json (constants with their labels, per-cell
measured dFID next to the chain's bound, fitted slopes with 95% intervals). Runs on the CPU.
"""
import argparse
import json
import math
import os
import tempfile
from pathlib import Path

import torch

from fmq_theory.theory.fid_chain import fid_bound_vs_bits
from fmq_theory.results.slopes import estimate_constants, fit_slope, noise_floor
from fmq_theory.harness.checkpoints import load_trained_model
from fmq_theory.harness.sweep import read_rows
from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint

parser = argparse.ArgumentParser()
parser.add_argument("--samples", type=int, default=4)
parser.add_argument("--times", type=int, default=5)
parser.add_argument("--iters", type=int, default=15)
parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"])
parser.add_argument("--reuse-constants", action="store_true",
                    help="take the constants from an existing results/bound_<dataset>.json")
args = parser.parse_args()
torch.set_num_threads(max(1, os.cpu_count() or 1))

for ds in args.datasets:
    rows = read_rows(Path("results") / f"{ds}.csv")
    fp = next(r for r in rows if r["method"] == "none")
    path = Path("results") / f"bound_{ds}.json"
    if args.reuse_constants:
        constants = json.loads(path.read_text())["constants"]
    else:
        lm = load_trained_model(Path("checkpoints") / ds)
        clf = ClassifierFeatures(classifier_checkpoint(ds))
        c = estimate_constants(lm.model, clf.net, n_samples=args.samples, n_times=args.times,
                               iters=args.iters, steps=int(fp["steps"]))
        constants = {"lipschitz_x": c.lipschitz_x, "lipschitz_theta": c.lipschitz_theta,
                     "lip_features": c.lip_features, "labels": c.labels,
                     "per_point_lipschitz_x": c.lipschitz_x_per_point.tolist(),
                     "per_point_lipschitz_theta": c.lipschitz_theta_per_point.tolist(),
                     "times": c.times.tolist(),
                     "probe": {k: getattr(args, k) for k in ("samples", "times", "iters")}}
    methods = sorted({r["method"] for r in rows} - {"none"})
    out = {"dataset": ds, "constants": constants,
           "fid_fp": float(fp["fid"]), "feature_net": fp["feature_net"],
           "noise_floor_fid": noise_floor(rows), "cells": [], "slopes": {}}
    for m in methods:
        mrows = {int(r["bits"]): r for r in rows if r["method"] == m}
        curve = fid_bound_vs_bits(method=m, distortions={b: float(r["weight_mse"]) for b, r in mrows.items()},
                                  n_params=int(fp["n_weights"]),
                                  lipschitz_theta=constants["lipschitz_theta"],
                                  lipschitz_x=constants["lipschitz_x"],
                                  lip_features=constants["lip_features"],
                                  fid_fp=float(fp["fid"]), solver=fp["solver"], steps=int(fp["steps"]))
        for b, bound in zip(curve.bits, curve.delta_fid):
            measured = float(mrows[int(b)]["fid"]) - float(fp["fid"])
            out["cells"].append({"method": m, "bits": int(b), "measured_dfid": measured,
                                 "naive_bound_dfid": float(bound),
                                 "exceeds_bound": bool(measured > bound)})
        for col in ("fid", "fid_inception"):
            if any(r[col] for r in mrows.values()) and fp[col]:
                fit = fit_slope(rows, method=m, column=col,
                                floor=None if col == "fid" else 0.0)
                out["slopes"].setdefault(m, {})[col] = {
                    "slope": fit.slope, "ci95": [fit.ci_low, fit.ci_high],
                    "bits_used": fit.bits.tolist()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(out, f, indent=2, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v)
    os.replace(tmp, path)
    print(ds, {k: out["constants"][k] for k in ("lipschitz_x", "lipschitz_theta", "lip_features")})
    for m, s in out["slopes"].items():
        print(f"  {m:20s} {s}")
