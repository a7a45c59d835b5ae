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
``gpu_plan_eval.evaluate_cell``.  Since the third run (2026-12-04) each row also carries
:func:`candidate_scores` (the network's own pooled features, 4x4-pooled pixels, and the classifier's
features as a yardstick that is not data-free); a variant whose weights equal an earlier one's at the
same budget is not measured again (``same_as``); ``--eval-budgets`` measures the FID change at those
budgets only, and ``--save-samples`` keeps every distinct variant's 256 draws for
``scripts/plan_variant_features_cpu.py``.  With ``--inception FILE`` (since 2026-12-06) each measured
variant also carries its Inception FID change, the issue's protocol, beside the classifier's.  One row
per variant; the file is rewritten after every budget::

    PYTHONPATH=. python scripts/gpu_plan_variants.py --models dit --budgets 2,3 --match-peer hqq:g128

CPU dry run: ``--device cpu --samples 64 --pairs 16 --plan-samples 16 --models dit --budgets 3`` (with
``--inception``, add ``--real-images 256``: InceptionV3 on all 10,000 test images takes over 15 min on 2 cores).
On the CPU, with no GPU lent (2026-12-05; 2 cores, ~45 min), the MNIST UNet's default variants
(``--groupings any``) at HQQ g128's bits with 2,000 samples each::

    PYTHONPATH=. python scripts/gpu_plan_variants.py --device cpu --models mnist --budgets 2.3582,3.6206 \\
        --floors 1,2,3 --groupings any --samples 2000 --pairs 500 \\
        --save-samples runs/variants/variant_samples_mnist_cpu.npz --out runs/variants/pv_mnist_cpu.json
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, "scripts")
from gpu_plan_eval import (MODELS, PLAN_SEED, SOLVER, STEPS, Measure, Setup, _safe,  # noqa: E402
                           evaluate_cell, matched_budgets)

from fmq_theory.flow.frechet import frechet_distance, gaussian_fit  # noqa: E402
from fmq_theory.flow.solvers import balanced_labels, make_noise  # noqa: E402
from fmq_theory.harness.models.unet import unet_adapter  # noqa: E402
from fmq_theory.harness.train import to_uint8  # noqa: E402
from fmq_theory.plan import fit_candidates, plan_quantization, weight_sensitivity  # noqa: E402
from fmq_theory.plan.candidates import CODE_FAMILIES  # noqa: E402
from fmq_theory.plan.selection import GROUPINGS, check_groupings, diagonal_w2, displacement, distribution_shift, sampled  # noqa: E402


#: The measured columns of a variant's row (None where its budget is not measured), and with ``--inception``
#: the Inception ones too.
MEASURED = ("fid", "dfid", "dfid_low", "dfid_high", "psnr")
MEASURED_INCEPTION = ("fid_inception", "dfid_inception", "dfid_inception_low", "dfid_inception_high")

#: Times at which the full-precision network looks at a sample for the self-feature scores (1: the sample itself).
FEATURE_TIMES = (1.0, 0.5)


def weights_digest(state: dict) -> str:
    """SHA-256 of the tensors of ``state`` (float32 on the host) in key order: a variant's identity, so that
    a plan met again is not measured again, and another machine's rebuild can be checked against it."""
    return hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()


def feature_modules(model: torch.nn.Module) -> tuple:
    """The full-precision network's own layers whose pooled outputs are the self-features: the UNets'
    latent modules (last down layer, middle block); the DiT's middle and last blocks."""
    if hasattr(model, "latent_modules"):
        return model.latent_modules()
    depth = len(model.blocks)
    return (f"blocks.{depth // 2}", f"blocks.{depth - 1}")


def self_features(model: torch.nn.Module, x: torch.Tensor, labels, *, t: float) -> torch.Tensor:
    """``(n, d)`` float64: the named layers' outputs of the full-precision ``model`` at time ``t`` on
    ``t x + (1 - t) z`` (``z`` fixed noise of seed 7), mean-pooled over space or tokens and concatenated.
    Data-free: only the model and its own samples."""
    device = next(model.parameters()).device
    x = x.to(device)
    z = make_noise(x.shape[0], tuple(x.shape[1:]), seed=7).to(device)
    out = {}
    hooks = [model.get_submodule(name).register_forward_hook(
        lambda _m, _i, o, name=name: out.__setitem__(name, o)) for name in feature_modules(model)]
    try:
        with torch.no_grad():
            model(t * x + (1 - t) * z, torch.full((x.shape[0],), t, device=device),
                  None if labels is None else labels.to(device))
    finally:
        for h in hooks:
            h.remove()
    pooled = [o.mean(dim=(2, 3)) if o.ndim == 4 else o.mean(dim=1) for o in (out[n] for n in feature_modules(model))]
    return torch.cat(pooled, dim=1).double().cpu()


def feature_sets(model, x, labels, classifier) -> dict:
    """The feature sets :func:`candidate_scores` compares: the self-features at each of
    :data:`FEATURE_TIMES`, the 4x4-pooled pixels, and the classifier's features (all float64)."""
    sets = {f"t{t:g}": self_features(model, x, labels, t=t) for t in FEATURE_TIMES}
    sets["pool4"] = torch.nn.functional.avg_pool2d(x.float(), 4).flatten(1).double()
    sets["clf"] = torch.as_tensor(classifier.features(to_uint8(x.clamp(-1, 1))), dtype=torch.float64)
    return sets


def candidate_scores(variant: dict, reference: dict) -> dict:
    """Scores tried as replacements of the pixel ``shift``, from two :func:`feature_sets`: Frechet and
    diagonal W2 distances of the full-precision network's self-features (data-free), the diagonal one of
    4x4-pooled pixels (data-free), and, as a non-data-free yardstick of what 256 draws can resolve, the
    classifier-feature Frechet distance."""
    row = {}
    for t in FEATURE_TIMES:
        a, b = variant[f"t{t:g}"], reference[f"t{t:g}"]
        row[f"feat_fd_t{t:g}"] = frechet_distance(*gaussian_fit(a), *gaussian_fit(b))
        row[f"feat_diag_t{t:g}"] = diagonal_w2(a, b)
    row["pool4_diag"] = diagonal_w2(variant["pool4"], reference["pool4"])
    row["clf_fd"] = frechet_distance(*gaussian_fit(variant["clf"]), *gaussian_fit(reference["clf"]))
    return row


def scores(x: torch.Tensor, reference: torch.Tensor) -> dict:
    """The data-free scores of samples ``x`` against the full-precision ``reference`` (same noise).

    ``w2_diag`` is summed over entries, ``shift`` (the plan's ranking score since this file's first
    run, :func:`~fmq_theory.plan.selection.distribution_shift`) is the same per entry, with its interval.
    """
    msd, low, high = displacement(x, reference)
    shift, shift_low, shift_high = distribution_shift(x, reference)
    a, b = x.reshape(x.shape[0], -1).double(), reference.reshape(reference.shape[0], -1).double()
    fd = frechet_distance(*gaussian_fit(a), *gaussian_fit(b))
    return {"msd": msd, "msd_low": low, "msd_high": high, "fd_pixel": fd, "w2_diag": shift * a.shape[1], "shift": shift,
            "shift_low": shift_low, "shift_high": shift_high}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="dit")
    p.add_argument("--checkpoint", action="append", default=[], help="MODEL=FOLDER (default: see MODELS)")
    p.add_argument("--budgets", default="2,3")
    p.add_argument("--match-peer", action="append", default=[], help="also the b2-b4 bits per weight of this peer")
    p.add_argument("--floors", default="1,2,3")
    p.add_argument("--groupings", default=",".join(GROUPINGS),
                   help="of the variants measured (e.g. 'any', the plan's default: half the variants)")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--pairs", type=int, default=1000)
    p.add_argument("--plan-samples", type=int, default=256)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--work", default="runs/plan_variants")
    p.add_argument("--eval-budgets", default=None,
                   help="measure the FID change only at these budgets (a comma list; default: all); the others are scored only")
    p.add_argument("--save-samples", default=None,
                   help="write every distinct variant's samples from the plan's noise (uint8) and the full-precision ones here (.npz)")
    p.add_argument("--inception", default=None,
                   help="TorchScript InceptionV3 file: each measured variant also gets its Inception FID change")
    p.add_argument("--real-images", type=int, default=None,
                   help="real test images of the FID's reference (default all; fewer for a CPU dry run)")
    p.add_argument("--out", default="runs/results/plan_variants.json")
    args = p.parse_args()
    folders = dict(item.split("=", 1) for item in args.checkpoint)
    floors = [int(f) for f in args.floors.split(",")]
    groupings = check_groupings(args.groupings.split(","))
    rows, start, saved = [], time.perf_counter(), {}
    eval_budgets = None if args.eval_budgets is None else {float(b) for b in args.eval_budgets.split(",") if b}
    for name in args.models.split(","):
        model_start = time.perf_counter()
        setup = Setup(name=name, checkpoint=folders.get(name, MODELS[name][1]), samples=args.samples,
                      pairs=args.pairs, batch_size=args.samples, n_boot=100, n_boot_inception=10, inception=args.inception,
                      device=args.device, work=args.work, real_images=args.real_images)
        measure = Measure(setup)
        model = measure.ctx.model
        noise = make_noise(args.plan_samples, measure.event, seed=PLAN_SEED).to(measure.device)
        n_classes = model.config.num_classes
        labels = balanced_labels(args.plan_samples, n_classes).to(measure.device) if n_classes else None
        adapter = unet_adapter(model, labels, 0.0)
        seen = {}  # the variants' weights' digest -> their row: a plan met again is not measured again
        sens = weight_sensitivity(model, noise, adapter=adapter, solver=SOLVER, steps=STEPS, replicates=8,
                                  batch_size=32, seed=PLAN_SEED, progress=False)
        fitted = fit_candidates(model, sensitivity=sens, workers=min(16, os.cpu_count() or 1), progress=False)
        reference = sampled(model, model.state_dict(), noise, adapter=adapter, solver=SOLVER, steps=STEPS)
        saved[f"{name}/reference"] = to_uint8(reference.clamp(-1, 1)).numpy()
        reference_sets = feature_sets(model, reference, labels, measure.ctx.classifier)  # once per model
        budgets = [float(b) for b in args.budgets.split(",") if b]
        for peer in args.match_peer:
            budgets += matched_budgets(model, family=peer)
        print(f"[{name}] sensitivity and fitting {time.perf_counter() - model_start:.1f} s; budgets {budgets}", flush=True)
        for budget in budgets:
            for family, floor, grouping in itertools.product(CODE_FAMILIES, floors, groupings):
                try:
                    plan = plan_quantization(model, budget_bits=budget, noise=noise, fitted=fitted,
                                             bit_floors=(floor,), families=(family,), groupings=(grouping,),
                                             adapter=adapter, progress=False)
                except ValueError:  # no plan of this floor within the budget
                    continue
                state = {k: v.detach().cpu().float().contiguous() for k, v in plan.state_dict().items()}
                digest = weights_digest(state)
                head = {"model": name, "budget": budget, "family": family, "floor": floor, "grouping": grouping,
                        "bits_per_weight": plan.bits_per_weight, "additive": plan.predicted_delta.value,
                        "weights_sha256": digest}
                if digest in seen:
                    rows.append({**seen[digest], **head, "same_as": seen[digest]["label"]})
                    print(json.dumps(rows[-1]), flush=True)
                    continue
                label = f"variant_{family}_f{floor}_{grouping}@{budget:g}"
                if eval_budgets is None or budget in eval_budgets:
                    save_file(state, str(measure.work / "weights" / f"{_safe(label)}.safetensors"))
                    row = evaluate_cell(measure, label=label, budget=budget,
                                        fields={"method": "plan", "setting": f"{family} floor {floor} {grouping}",
                                                "bits_per_weight": plan.bits_per_weight})
                else:
                    row = {}
                x = sampled(model, state, noise, adapter=adapter, solver=SOLVER, steps=STEPS)
                saved[f"{name}/{label}"] = to_uint8(x.clamp(-1, 1)).numpy()
                rows.append({**head, "label": label, **scores(x, reference),
                             **candidate_scores(feature_sets(model, x, labels, measure.ctx.classifier), reference_sets),
                             **{k: row.get(k) for k in MEASURED + (MEASURED_INCEPTION if args.inception else ())}})
                seen[digest] = {k: v for k, v in rows[-1].items() if k not in head}
                print(json.dumps(rows[-1]), flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({
                "command": "scripts/gpu_plan_variants.py " + " ".join(sys.argv[1:]), "device": str(measure.device),
                "samples": args.samples, "plan_samples": args.plan_samples,
                "seconds": round(time.perf_counter() - start, 1), "rows": rows}, indent=1))
            if args.save_samples:
                np.savez_compressed(args.save_samples, **saved)


if __name__ == "__main__":
    main()
