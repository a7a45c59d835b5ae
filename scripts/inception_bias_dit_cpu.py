"""CPU experiment: the sampled prediction's bootstrap bias correction in InceptionV3's features, on the DiT.

On the committed FashionMNIST DiT the GPU's Inception predictions (``results/plan_dit.csv``,
1,000 pairs in 2,048 features) run 5 to 16 FID above the measured change on most cells, and
those rows predate ``SampledDFID.bias``.  This run makes the same prediction on the CPU, with
the GPU run's protocol (``scripts/gpu_plan_eval.py``'s ``Measure``: 5,000 full-precision
samples of seed 0, 1,000 pairs of seed 2, the 10,000 test images as the reference), for a few
peer cells, and records it plain and debiased (``SampledDFID.debiased``) beside the GPU's
measured Inception dFID of the same cell; the 1,000 pairs are also cut into two disjoint
halves (M = 500), which show how the plain and debiased values move with M and give the
split-half extrapolation in 1/M (:mod:`fmq_theory.results.sampled_bias` reads it from the
means at M/2 and M).  Only the pairs of
each cell are sampled (the measured change stays the GPU's: 5,000 quantized samples through
InceptionV3 would take ~10 minutes a cell here).  The CPU samples without the GPU's autocast,
so its plain value is a re-draw of the GPU's prediction, not a copy.  On 2 CPU cores the set-up
takes ~25 minutes to sample (5,000 + 1,000 images at ~4.3 a second) and ~40 to take the
reference's and the samples' InceptionV3 features (5-14 images a second; kept in ``--work``
under a digest of the images; the full-precision samples are kept there too, under a digest of
the model, noise and sampler, so a second run with the same ``--work`` neither samples nor takes
their features again), and each
cell ~6-9 minutes.  ``results/inception_bias_dit_cpu.json`` holds four cells, per-channel
``uniform_minmax`` and HQQ at group 128 at 3 and 4 bits, with the control variate (plain,
debiased, extrapolated) and the paired difference of the pairs' own FIDs
(``SampledDFID.paired``), from a run of 3,176 s::

    PYTHONPATH=. FMQ_DATA_DIR=<folder with fashion_mnist.npz> python scripts/inception_bias_dit_cpu.py \\
        --inception <InceptionV3 TorchScript file> --n-boot 40 --n-boot-half 4 \\
        --settings hqq:g128@4,rule:uniform_minmax@3,rule:uniform_minmax@4,hqq:g128@3

Writes ``results/inception_bias_dit_cpu.json`` (``--out``) after every cell.
"""
import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, "scripts")
import gpu_plan_eval as g  # noqa: E402  (scripts/ is a folder of scripts, not a package)

from fmq_theory.bounds import sampled_dfid  # noqa: E402
from fmq_theory.harness.peers import peer_at_budget  # noqa: E402
from fmq_theory.results.schema import PLAN  # noqa: E402

args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("--inception", required=True, help="TorchScript InceptionV3 file (SHA-256 7ff4a85c...)")
args.add_argument("--settings", default="rule:uniform_minmax@4,hqq:g128@4,rule:uniform_minmax@3,hqq:g128@3",
                  help="peer families at the budget their setting is nearest, family@budget, a comma list")
args.add_argument("--samples", type=int, default=5000, help="full-precision samples (the GPU run's 5,000)")
args.add_argument("--pairs", type=int, default=1000, help="noise draws of the prediction (the GPU run's 1,000)")
args.add_argument("--real-images", type=int, default=None, help="test images of the reference (default: all 10,000)")
args.add_argument("--n-boot", type=int, default=60, help="bootstrap replicates of the prediction on all pairs")
args.add_argument("--n-boot-half", type=int, default=30, help="bootstrap replicates of each half's prediction")
args.add_argument("--gpu-rows", default="results/plan_dit.csv", help="the GPU's measured rows of the same cells")
args.add_argument("--out", default="results/inception_bias_dit_cpu.json")
args.add_argument("--work", default="runs/inception_bias_dit_cpu")
args = args.parse_args()
start = time.perf_counter()
torch.manual_seed(0)
setup = g.Setup(name="dit", checkpoint=g.MODELS["dit"][1], samples=args.samples, pairs=args.pairs,
                batch_size=1000, n_boot=100,
                n_boot_inception=args.n_boot, inception=args.inception, device="cpu", work=args.work,
                real_images=args.real_images)
measure = g.Measure(setup)
print(f"reference, full-precision samples and their Inception features in {time.perf_counter() - start:.0f} s",
      flush=True)
gpu = {(r["method"], r["setting"]): r for r in PLAN.read(args.gpu_rows) if r.get("fid_inception") is not None}
state = {k: v.detach().cpu() for k, v in measure.ctx.model.state_dict().items()}
half = setup.pairs // 2


def predict(pairs_fp, pairs_q, *, n_boot: int) -> dict:
    p = sampled_dfid(measure.inc_fp, pairs_fp, pairs_q, reference_mean=measure.ref_inc[0],
                     reference_cov=measure.ref_inc[1], n_boot=n_boot, seed=g.SEED)
    return {"value": p.value, "low": p.low, "high": p.high, "bias": p.bias, "debiased": p.debiased,
            "extrapolated": p.extrapolated, "paired": p.paired, "paired_low": p.paired_low,
            "paired_high": p.paired_high, "paired_extrapolated": p.paired_extrapolated}


rows = []
for spec in args.settings.split(","):
    family, budget = spec.split("@")
    t0 = time.perf_counter()
    q = peer_at_budget(state, family=family, budget=float(budget), cache={})
    model = copy.deepcopy(measure.ctx.model)
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in q.state_dict.items()}, strict=True)
    model.eval()
    pairs_u8 = g.to_uint8(measure.generate(model, measure.pair_noise, measure.pair_labels)[0])
    inc_q = measure._dev(measure._cached_inception(g._safe(q.label) + "_pairs", pairs_u8))
    ref = gpu[(family, q.setting)]
    every = predict(measure.inc_fp_pairs, inc_q, n_boot=args.n_boot)
    halves = [predict(measure.inc_fp_pairs[i:i + half], inc_q[i:i + half], n_boot=args.n_boot_half)
              for i in (0, half)]
    # by_size as scripts/sampled_bias_dit_cpu.py writes it (fmq_theory.results.sampled_bias reads both runs)
    by_size = {str(m): {k: [p[k] for p in preds] for k in preds[0]} for m, preds in ((half, halves), (setup.pairs, [every]))}
    rows.append({"method": family, "setting": q.setting, "bits_per_weight": q.bits_per_weight,
                 "dfid": ref["dfid_inception"], "dfid_low": ref["dfid_inception_low"],
                 "dfid_high": ref["dfid_inception_high"], "gpu_predicted_dfid": ref["predicted_dfid_inception"],
                 "by_size": by_size, "seconds": round(time.perf_counter() - t0, 1)})
    print(f"{q.label}: GPU measured {ref['dfid_inception']:.2f}, GPU predicted {ref['predicted_dfid_inception']:.2f}; "
          f"CPU plain {every['value']:.2f}, debiased {every['debiased']:.2f} (M={setup.pairs}); halves plain "
          f"{np.mean([h['value'] for h in halves]):.2f}, debiased {np.mean([h['debiased'] for h in halves]):.2f} "
          f"; paired {every['paired']:.2f} [{every['paired_low']:.2f}, {every['paired_high']:.2f}], extrapolated "
          f"{every['paired_extrapolated']:.2f} ({rows[-1]['seconds']:.0f} s)", flush=True)
    Path(args.out).write_text(json.dumps({
        "provenance": f"scripts/inception_bias_dit_cpu.py, run on {time.strftime('%Y-%m-%d')} on {os.cpu_count()} "
                      f"CPU cores in {time.perf_counter() - start:.0f} s",
        "model": f"dit ({setup.checkpoint})", "samples": setup.samples, "pairs": setup.pairs,
        "feature_net": measure.inception.name, "inception_sha256": measure.inception.sha256,
        "feature_dim": int(measure.inc_fp.shape[1]), "n_boot": args.n_boot, "n_boot_half": args.n_boot_half,
        "measured": f"dfid: the GPU's measured Inception dFID of the cell ({args.gpu_rows}, 5,000 samples)",
        "gpu_rows": args.gpu_rows, "rows": rows}, indent=1))
print("wrote", args.out)
