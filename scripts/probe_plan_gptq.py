"""Probe for issue 12: the committed plan with its codes chosen by error-compensating rounding.

Not part of the package: an experiment that decides whether :func:`fmq_theory.plan.plan_quantization`
gets a compensated rounding step.  The plan of ``results/plan_choices_<model>_<budget>.csv`` (its
per-tensor method, bits, grouping and side-information dtype, as the GPU chose them) is fitted
again here, and then written two ways into one set of levels, at the same bytes:

- ``rtn``: every weight to its nearest level (the plan as committed);
- ``compensated``: the weights of every linear and ungrouped convolution layer rounded column by
  column with each column's error pushed onto the next through the layer's input second moment
  (:func:`fmq_theory.plan.compensation.compensated`, GPTQ with static groups).

The moments come from the full-precision model's own sampling from Gaussian noise (``--calibration``
draws, seed 123, apart from the FID noise of seed 0): no image is used.  Each arm's classifier FID on
``--samples`` draws, with the paired 95% interval of its change
(:func:`fmq_theory.bounds.certificate.certify_fid`), its honest bits per weight and its summed output
error ``sum tr(D H D^T)`` go to ``--out`` (JSON); and the score the plan would choose between the arms by,
the shift of the samples' law from full precision (:func:`fmq_theory.plan.selection.distribution_shift`,
per entry, with its bootstrap interval) on ``--selection-draws`` draws of the plan's own noise (seed 1,
balanced labels, as ``scripts/gpu_plan_eval.py`` plans), so that the choice of
``plan_quantization(roundings=("nearest", "compensated"))`` can be read against the FIDs.

Run (CPU, 2 cores)::

    PYTHONPATH=. python scripts/probe_plan_gptq.py --model mnist --budget 3 --samples 1000 \
        --out results/probes/plan_gptq_mnist_b3_n1000.json
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch

from fmq_theory._util import write_atomic
from fmq_theory.bounds.certificate import certify_fid
from fmq_theory.flow.frechet import gaussian_fit
from fmq_theory.flow.solvers import balanced_labels, make_noise
from fmq_theory.harness.context import load_context
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.plan.candidates import Candidate, dequantized, fit_candidate
from fmq_theory.plan.compensation import compensated, input_moments, output_error
from fmq_theory.plan.selection import distribution_shift, sampled

CALIBRATION_SEED = 123  # the FID noise is seed 0
PLAN_SEED = 1  # the plan's own noise (scripts/gpu_plan_eval.py)
MODELS = {"mnist": ("mnist", None), "fashion_mnist": ("fashion_mnist", None),
          "dit": ("fashion_mnist", "checkpoints/dit_fashion_mnist")}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="mnist")
    p.add_argument("--budget", default="3", help="the budget as in results/plan_choices_<model>_<budget>.csv")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--calibration", type=int, default=64)
    p.add_argument("--selection-draws", type=int, default=256, help="draws of the plan's noise the shift is scored on")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    dataset, checkpoint = MODELS[args.model]
    ctx = load_context(dataset=dataset, samples=args.samples, seed=0, device="cpu", checkpoint=checkpoint)
    model = ctx.model.eval()
    state = model.state_dict()
    with open(f"results/plan_choices_{args.model}_{args.budget}.csv") as f:
        choices = list(csv.DictReader(f))
    start = time.perf_counter()
    cal = torch.randn((args.calibration, *ctx.noise.shape[1:]), generator=torch.Generator().manual_seed(CALIBRATION_SEED))
    cal_labels = None if ctx.labels is None else ctx.labels[:args.calibration]
    moments = input_moments(model, cal, adapter=unet_adapter(model, cal_labels, 0.0), solver="midpoint", steps=10)
    calibration_s = time.perf_counter() - start
    arms = {"rtn": {}, "compensated": {}}
    nbytes, errors = 0, {"rtn": 0.0, "compensated": 0.0}
    n_total = sum(int(r["n_weights"]) for r in choices)
    for r in choices:
        w = state[r["name"]]
        fit = fit_candidate(w, Candidate(r["method"], int(r["bits"]), r["granularity"], r["storage"]), sensitivity=None)
        nbytes += fit.nbytes
        if r["method"] in ("float16", "float32"):
            for arm in arms.values():
                arm[r["name"]] = fit.stored.to(w.dtype)
            continue
        arms["rtn"][r["name"]] = dequantized(fit.stored)
        comp = compensated(w, fit.stored, moments[r["name"]]) if r["name"] in moments else fit.stored
        arms["compensated"][r["name"]] = dequantized(comp)
        if r["name"] in moments:
            for arm in arms:
                errors[arm] += output_error(w, arms[arm][r["name"]], moments[r["name"]])
    result = {"model": args.model, "budget": args.budget, "checkpoint_sha256": ctx.trained.sha256,
              "bits_per_weight": 8 * nbytes / n_total, "samples": args.samples, "calibration_draws": args.calibration,
              "calibration_s": round(calibration_s, 1), "feature_net": ctx.classifier.name,
              "compensated_tensors": sum(r["name"] in moments and r["method"] not in ("float16", "float32")
                                         for r in choices), "arms": {}}
    print(f"{args.model} @ {args.budget}: {result['bits_per_weight']:.4f} bits/weight, calibration {calibration_s:.1f} s",
          flush=True)

    ref = gaussian_fit(torch.as_tensor(ctx.real_features, dtype=torch.float64))
    f_fp = ctx.sample_features(model)
    plan_noise = make_noise(args.selection_draws, tuple(ctx.noise.shape[1:]), seed=PLAN_SEED)
    n_classes = model.config.num_classes
    plan_adapter = unet_adapter(model, balanced_labels(args.selection_draws, n_classes) if n_classes else None, 0.0)
    selection = dict(adapter=plan_adapter, solver="midpoint", steps=10)
    x_fp = sampled(model, state, plan_noise, **selection)
    result["selection_draws"] = args.selection_draws
    for arm, weights in arms.items():
        start = time.perf_counter()
        shift, shift_low, shift_high = distribution_shift(sampled(model, {**state, **weights}, plan_noise, **selection),
                                                          x_fp)
        model.load_state_dict({**state, **weights})
        cert = certify_fid(f_fp, ctx.sample_features(model), reference_mean=ref[0], reference_cov=ref[1], n_boot=200, seed=0)
        result["arms"][arm] = {"fid": cert.fid_q, "fid_fp": cert.fid_fp, "dfid": cert.measured_dfid,
                               "dfid_low": cert.dfid_low, "dfid_high": cert.dfid_high,
                               "output_weighted_error": errors[arm], "shift": shift, "shift_low": shift_low,
                               "shift_high": shift_high, "seconds": round(time.perf_counter() - start, 1)}
        print(f"{arm}: {json.dumps(result['arms'][arm])}", flush=True)
    model.load_state_dict(state)
    write_atomic(args.out, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=1) + "\n"))
    return result


if __name__ == "__main__":
    main()
