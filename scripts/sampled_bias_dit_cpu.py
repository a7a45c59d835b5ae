"""CPU experiment: the sampled prediction's bias, and its bootstrap correction, on the DiT.

``fmq_theory.bounds.sampled_dfid`` estimates the change of the feature covariance from ``M``
pairs; with ``M`` near or below the feature dimension the plug-in estimate runs above the
measured change (the plan page, "Predicted against measured").  This run measures that bias on
the committed FashionMNIST DiT in the classifier's features, where a small ``M`` puts the
estimate in the regime of the 1,000 pairs in InceptionV3's 2,048 features: full-precision and
quantized samples from the evaluation's noise (seed 0) give the measured dFID with its paired
interval (as ``scripts/gpu_plan_eval.py``), and the ``--pairs`` other draws (seed 2) are cut into
disjoint sets of each size ``M``, each set giving one prediction, plain, debiased
(``SampledDFID.debiased``) and the paired difference of the set's own FIDs (``SampledDFID.paired``).  About 25 minutes on 2 CPU cores (the DiT samples ~5 images a second there)::

    PYTHONPATH=. FMQ_DATA_DIR=<folder with fashion_mnist.npz> python scripts/sampled_bias_dit_cpu.py

Writes ``results/sampled_bias_dit_cpu.json`` (``--out``).
"""
import argparse
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

args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("--samples", type=int, default=2000)
args.add_argument("--pairs", type=int, default=512)
args.add_argument("--sizes", default="32,64,128,256", help="pair-set sizes M, a comma list")
args.add_argument("--max-sets", type=int, default=16, help="disjoint sets per size, at most")
args.add_argument("--settings", default="rule:uniform_minmax@4,rule:uniform_minmax@3",
                  help="peer families at the budget their setting is nearest, family@budget, a comma list")
args.add_argument("--n-boot", type=int, default=100)
args.add_argument("--out", default="results/sampled_bias_dit_cpu.json")
args.add_argument("--work", default="runs/sampled_bias_dit_cpu")
args = args.parse_args()
sizes = [int(s) for s in args.sizes.split(",")]
if max(sizes) > args.pairs:
    raise SystemExit(f"--sizes {args.sizes}: a size exceeds --pairs {args.pairs}")
torch.manual_seed(0)
start = time.perf_counter()
setup = g.Setup(name="dit", checkpoint=g.MODELS["dit"][1], samples=args.samples, pairs=args.pairs,
                batch_size=min(args.samples, 1000), n_boot=args.n_boot, n_boot_inception=10, inception=None,
                device="cpu", work=args.work, real_images=None)
measure = g.Measure(setup)
state = {k: v.detach().cpu() for k, v in measure.ctx.model.state_dict().items()}
clf = measure.ctx.classifier
rows = []
for spec in args.settings.split(","):
    family, budget = spec.split("@")
    q = peer_at_budget(state, family=family, budget=float(budget), cache={})
    fields = {"method": family, "setting": q.setting, "bits_per_weight": q.bits_per_weight}
    g.save_file({k: v.float().contiguous() for k, v in q.state_dict.items()},
                str(measure.work / "weights" / f"{g._safe(q.label)}.safetensors"))
    row = g.evaluate_cell(measure, label=q.label, budget=q.bits_per_weight, fields=fields)
    pairs_q = measure._dev(clf.features(torch.from_numpy(np.load(measure.work / f"{g._safe(q.label)}.pairs.npy"))))
    by_size = {}
    for m in sizes:
        preds = [sampled_dfid(measure.f_fp, measure.f_fp_pairs[i:i + m], pairs_q[i:i + m],
                              reference_mean=measure.ref[0], reference_cov=measure.ref[1], n_boot=args.n_boot,
                              seed=k)
                 for k, i in enumerate(range(0, min(args.pairs // m, args.max_sets) * m, m))]
        by_size[str(m)] = {k: [getattr(p, k) for p in preds] for k in ("value", "debiased", "paired")}
        print(f"{q.label} M={m}: measured {row['dfid']:.3f}, plain {np.mean(by_size[str(m)]['value']):.3f}, "
              f"debiased {np.mean(by_size[str(m)]['debiased']):.3f}, paired {np.mean(by_size[str(m)]['paired']):.3f} "
              f"over {len(preds)} sets", flush=True)
    rows.append({k: row.get(k) for k in ("method", "setting", "bits_per_weight", "fid", "fid_fp", "dfid", "dfid_low",
                                         "dfid_high", "predicted_dfid")} | {"by_size": by_size})
Path(args.out).write_text(json.dumps({
    "provenance": f"scripts/sampled_bias_dit_cpu.py, run on {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU "
                  f"cores in {time.perf_counter() - start:.0f} s",
    "model": f"dit ({setup.checkpoint})", "samples": args.samples, "pairs": args.pairs,
    "feature_net": clf.name, "feature_dim": int(measure.f_fp.shape[1]), "n_boot": args.n_boot, "rows": rows},
    indent=1))
print("wrote", args.out)
