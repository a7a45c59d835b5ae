"""Slopes of log2(dFID) vs bits and the naive bound chain with constants from the real models.

Usage: python scripts/bound_compare.py [--samples 4 --times 5 --iters 15]
Writes results/bound_{mnist,fashion_mnist}.json (constants with their labels, per-cell
measured dFID next to the chain's bound, fitted slopes with 95% intervals). Runs on the CPU.
The constants (:func:`fmq_theory.harness.bound_check.probe_constants`) are named for what they
are: ``lipschitz_x_lower`` and ``lipschitz_theta_lower`` are the largest Jacobian norms found
along sampled trajectories, ``lip_features_upper`` the product of the classifier's layer norms.
``--reuse-constants`` takes them from the existing json, so the file is regenerated with the same
numbers (the committed ``lipschitz_*_lower`` came from an earlier power-iteration probe, equal to
the present one to about 7 significant digits; ``lip_features_upper`` is the exact-layer-norm
bound of :func:`fmq_theory.bounds.constants.lip_features_upper`).
"""
import argparse
import json
import math
import os
from pathlib import Path

import torch

from fmq_theory._util import write_atomic
from fmq_theory.harness.bound_check import probe_constants
from fmq_theory.harness.checkpoints import load_trained_model
from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint
from fmq_theory.results.schema import SWEEP
from fmq_theory.results.slopes import fit_slope, noise_floor
from fmq_theory.theory.fid_chain import fid_bound_vs_bits

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
    rows = SWEEP.read(Path("results") / f"{ds}.csv")
    fp = next(r for r in rows if r["method"] == "none")
    path = Path("results") / f"bound_{ds}.json"
    if args.reuse_constants:
        constants = json.loads(path.read_text())["constants"]
    else:
        lm = load_trained_model(Path("checkpoints") / ds)
        clf = ClassifierFeatures(classifier_checkpoint(ds))
        probe, lip_features_upper = probe_constants(lm.model, clf.net, samples=args.samples, times=args.times,
                                                    iterations=args.iters, steps=fp["steps"])
        constants = {"lipschitz_x_lower": probe.lipschitz_x_lower, "lipschitz_theta_lower": probe.lipschitz_theta_lower,
                     "lip_features_upper": lip_features_upper,
                     "labels": {"lipschitz_x_lower": "lower estimate (Lanczos on dv/dx along trajectories)",
                                "lipschitz_theta_lower": "lower estimate (power iteration on dv/dtheta along "
                                                         "trajectories)",
                                "lip_features_upper": "upper bound (product of the layers' norm bounds: SVD, DFT "
                                                      "of the circular convolution; x 1/2)"},
                     "per_point_lipschitz_x": probe.lipschitz_x_per_point.ravel().tolist(),
                     "per_point_lipschitz_theta": probe.lipschitz_theta_per_point.ravel().tolist(),
                     "times": probe.times.repeat(args.samples).tolist(),
                     "probe": {k: getattr(args, k) for k in ("samples", "times", "iters")}}
    methods = sorted({r["method"] for r in rows} - {"none"})
    out = {"dataset": ds, "constants": constants,
           "fid_fp": fp["fid"], "feature_net": fp["feature_net"],
           "noise_floor_fid": noise_floor(rows), "cells": [], "slopes": {}}
    for m in methods:
        mrows = {r["bits"]: r for r in rows if r["method"] == m}
        curve = fid_bound_vs_bits(method=m, distortions={b: r["weight_mse"] for b, r in mrows.items()},
                                  n_params=fp["n_weights"],
                                  lipschitz_theta=constants["lipschitz_theta_lower"],
                                  lipschitz_x=constants["lipschitz_x_lower"],
                                  lip_features=constants["lip_features_upper"],
                                  fid_fp=fp["fid"], solver=fp["solver"], steps=fp["steps"])
        for b, bound in zip(curve.bits, curve.delta_fid):
            measured = mrows[int(b)]["fid"] - fp["fid"]
            out["cells"].append({"method": m, "bits": int(b), "measured_dfid": measured,
                                 "naive_bound_dfid": float(bound),
                                 "exceeds_bound": bool(measured > bound)})
        for col in ("fid", "fid_inception"):
            if any(r[col] is not None for r in mrows.values()) and fp[col] is not None:
                fit = fit_slope(rows, method=m, column=col,
                                floor=None if col == "fid" else 0.0)
                out["slopes"].setdefault(m, {})[col] = {
                    "slope": fit.slope, "ci95": [fit.ci_low, fit.ci_high],
                    "bits_used": fit.bits.tolist()}
    text = json.dumps(out, indent=2, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))
    print(ds, {k: out["constants"][k] for k in ("lipschitz_x_lower", "lipschitz_theta_lower", "lip_features_upper")})
    for m, s in out["slopes"].items():
        print(f"  {m:20s} {s}")
