"""CPU: which score of a variant's samples ranks a model's plan variants as the measured FID does?

``scripts/gpu_plan_variants.py`` measured every variant (code family x bit floor x grouping) of the
plan on the FashionMNIST DiT at HQQ's own bits per weight on the H200 (2026-12-04, the current
half_quadratic fit): its classifier dFID on the evaluation's 5,000 draws, its data-free scores on
the plan's own 256 draws (the diagonal ``shift`` that ranks the variants today, the full-covariance
pixel Frechet distance, the network's own pooled features), and, as a yardstick that is *not*
data-free, the Frechet distance of the 256 draws in the evaluation's classifier features.  With
``--save-samples`` it also kept those 256 samples of every distinct variant (uint8, git-ignored
under ``runs/``).  This script adds feature spaces that need no data, scored on the kept samples:

* three random convolutional networks (fixed seeds; He-scaled Gaussian weights, ReLU, spatial mean
  and max pooled), Frechet and diagonal W2 distances;
* with ``--inception-budgets``, Inception-v3 pool3 features (ImageNet-trained: no FashionMNIST
  image), Frechet and diagonal W2 distances; ~7 min a budget on 2 cores.

It then reports, per score, the *regret* of keeping the variant of least score (its measured dFID
minus the measured best's, per budget), over the plan's default variants (grouping ``any``) and over
all of them, and writes everything to one file::

    PYTHONPATH=. python scripts/plan_variant_features_cpu.py \\
        --rows runs/variants/pv_dit_new.json --rows runs/variants/pv_dit_samples.json \\
        --samples runs/variants/variant_samples.npz --inception-budgets 2.3369,3.5252 \\
        --inception runs/inception/default_1.pt --out results/plan_variant_scores_dit_gpu.json

One model per output file: a GPU file of several models (``--models mnist,fashion_mnist``) is read
once per model with ``--model`` (their budgets coincide, and the summary is keyed by budget)::

    PYTHONPATH=. python scripts/plan_variant_features_cpu.py --rows runs/variants/pv_unets.json \\
        --samples runs/variants/variant_samples_unets.npz --model mnist --out results/plan_variant_scores_mnist_gpu.json

The MNIST UNet's variants measured on the CPU (``scripts/gpu_plan_variants.py --device cpu``, 2026-12-05)::

    PYTHONPATH=. python scripts/plan_variant_features_cpu.py --rows runs/variants/pv_mnist_cpu.json \\
        --samples runs/variants/variant_samples_mnist_cpu.npz --model mnist --out results/plan_variant_scores_mnist_cpu.json

The file records each run's sample count and device (``evaluation``).  Rows of a later ``--rows``
file fill in the dFID that an earlier one measured (``--eval-budgets``).
``--scored`` adds the rows of an earlier output of this script as they are (their kept draws need
not be here), so that a later GPU run extends the file; on 2026-12-04 the DiT at 3 and 2 bits::

    PYTHONPATH=. python scripts/plan_variant_features_cpu.py --scored results/plan_variant_scores_dit_gpu.json \\
        --rows runs/variants/pv_dit_23.json --samples runs/variants/variant_samples_23.npz \\
        --out results/plan_variant_scores_dit_gpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from fmq_theory.flow.frechet import frechet_distance, gaussian_fit
from fmq_theory.harness.features.inception import InceptionFeatures
from fmq_theory.plan.selection import diagonal_w2
from fmq_theory.results.variant_selection import selection_cells

#: Random feature networks: (seed, width of the first layer).
RANDOM_NETS = ((0, 64), (1, 64), (2, 16))
#: The scores whose regret is reported (the GPU's, then this script's).
GPU_SCORES = ("additive", "msd", "shift", "fd_pixel", "pool4_diag", "feat_fd_t1", "feat_fd_t0.5", "clf_fd")


def random_net(seed: int, width: int):
    """``u8 (n, 1, H, W) -> (n, 8 width)``: a fixed random ReLU network, spatial mean and max pooled."""
    g = torch.Generator().manual_seed(seed)
    layers, c = [], 1
    for w, stride in ((width, 1), (2 * width, 2), (4 * width, 2), (4 * width, 1)):
        conv = torch.nn.Conv2d(c, w, 3, stride, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2 / (c * 9)) ** 0.5)
            conv.bias.zero_()
        layers += [conv, torch.nn.ReLU()]
        c = w
    net = torch.nn.Sequential(*layers).eval()

    def features(u8):
        with torch.no_grad():
            h = net(torch.as_tensor(u8).float() / 127.5 - 1)
            return torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1).numpy()
    return features


def distances(a, b) -> tuple:
    """(Frechet distance, diagonal W2 squared summed over entries) between the Gaussian fits of two feature sets."""
    fd = frechet_distance(*gaussian_fit(torch.as_tensor(a, dtype=torch.float64)),
                          *gaussian_fit(torch.as_tensor(b, dtype=torch.float64)))
    return fd, diagonal_w2(a, b) * np.shape(a)[1]


def merged_rows(files) -> list:
    """The rows of the last file, their missing dFIDs filled from the earlier files (same variant key)."""
    measured = {}
    for f in files:
        for r in f["rows"]:
            if r.get("dfid") is not None:
                measured[(r["model"], r["budget"], r["family"], r["floor"], r["grouping"])] = r
    rows = []
    for f in files:
        for r in f["rows"]:
            key = (r["model"], r["budget"], r["family"], r["floor"], r["grouping"])
            if r.get("dfid") is None:
                if key not in measured:
                    raise ValueError(f"no measured dFID for {key}")
                if measured[key]["weights_sha256"] != r["weights_sha256"]:
                    raise ValueError(f"{key}: the files' weights differ (the fit was not reproduced)")
                r = {**r, **{k: measured[key][k] for k in ("fid", "dfid", "dfid_low", "dfid_high", "psnr")}}
            rows.append(r)
    unique = {}
    for r in rows:  # a variant measured in two files: the later row
        unique[(r["model"], r["budget"], r["family"], r["floor"], r["grouping"])] = r
    return list(unique.values())


def one_model(rows, *, model: str | None) -> list:
    """The rows of ``model`` (all of them if None); ``ValueError`` naming ``--model`` unless they are of one
    model: the summary is keyed by budget, and two models at one budget would overwrite each other."""
    kept = [r for r in rows if model is None or r["model"] == model]
    models = sorted({r["model"] for r in rows})
    if not kept:
        raise ValueError(f"--model {model!r}: the rows hold {models}")
    if len({r["model"] for r in kept}) > 1:
        raise ValueError(f"--model: the rows hold several models {models}; score one at a time")
    return kept


def regrets(rows, score: str, groupings) -> dict:
    """Per budget: the measured dFID of the least-``score`` variant minus the measured best's, and Spearman's rho."""
    kept = [r for r in rows if r["grouping"] in groupings and score in r]
    out = {}
    for cell in sorted(selection_cells(kept, scores={score: lambda r: r[score]}), key=lambda c: c.budget):
        pick = cell.picked[score]
        out[str(cell.budget)] = {
            "regret": cell.regret(score), "picked_dfid": pick["dfid"],
            "picked": f"{pick['family']} floor {pick['floor']} {pick['grouping']}",
            "spearman": float(stats.spearmanr([r[score] for r in cell.variants], [r["dfid"] for r in cell.variants])[0])}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", action="append", required=True, help="a plan_variants.json of the GPU (repeatable)")
    p.add_argument("--samples", required=True, help="the --save-samples file of the GPU run")
    p.add_argument("--scored", action="append", default=[],
                   help="an earlier output of this script: its rows are kept as they are (repeatable)")
    p.add_argument("--inception-budgets", default="", help="budgets whose variants also get Inception features")
    p.add_argument("--inception", default=None, help="the Inception TorchScript file (default: fetched)")
    p.add_argument("--model", default=None, help="the model whose rows are scored (needed if the files hold several)")
    p.add_argument("--out", default="results/plan_variant_scores_dit_gpu.json")
    args = p.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    files = [json.loads(Path(p).read_text()) for p in args.rows]
    rows = one_model(merged_rows(files), model=args.model)
    kept = np.load(args.samples)
    extractors = {f"random_net{seed}_w{width}": random_net(seed, width) for seed, width in RANDOM_NETS}
    inception_budgets = {float(b) for b in args.inception_budgets.split(",") if b}
    if inception_budgets:
        net = InceptionFeatures(args.inception)
        extractors["inception"] = lambda u8: net.features(torch.as_tensor(u8), batch_size=64)
    for name, extract in extractors.items():
        cache = {}
        for r in rows:
            if name == "inception" and r["budget"] not in inception_budgets:
                continue
            model, label = r["model"], r.get("same_as") or r["label"]
            if f"{model}/reference" not in cache:
                cache[f"{model}/reference"] = extract(kept[f"{model}/reference"])
            if label not in cache:
                cache[label] = distances(extract(kept[f"{model}/{label}"]), cache[f"{model}/reference"])
            r[f"{name}_fd"], r[f"{name}_diag"] = cache[label]
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    earlier = [json.loads(Path(p).read_text()) for p in args.scored]
    new_keys = {(r["model"], r["budget"]) for r in rows}
    for e in earlier:
        clash = new_keys & {(r["model"], r["budget"]) for r in e["rows"]}
        if clash:
            raise ValueError(f"--scored: {sorted(clash)} are in --rows too")
    rows = one_model([r for e in earlier for r in e["rows"]] + rows, model=None)  # --scored: of the same model
    scores = list(GPU_SCORES) + [f"{n}_{k}" for n in extractors for k in ("fd", "diag")]
    summary = {}
    for label, groupings in (("plan_default_any", ("any",)), ("all_groupings", ("any", "groups"))):
        summary[label] = {}
        for score in scores:
            per = regrets(rows, score, groupings)
            summary[label][score] = {"total_regret": sum(c["regret"] for c in per.values()), "budgets": per}
            print(f"{label:17s} {score:22s} regret {summary[label][score]['total_regret']:7.2f} "
                  f"{[round(c['regret'], 2) for c in per.values()]}")
    runs = [(f.get("samples", 5000), f.get("plan_samples", 256), f.get("device", "cuda")) for f in files]
    evaluations = [e["evaluation"] for e in earlier] + [
        f"classifier FID change, {n:,} samples, midpoint 20 NFE, paired bootstrap ({device})" for n, _, device in runs]
    plan_samples = {e["plan_samples"] for e in earlier} | {m for _, m, _ in runs}
    Path(args.out).write_text(json.dumps({
        "command": "scripts/plan_variant_features_cpu.py",
        "gpu_commands": [c for e in earlier for c in e["gpu_commands"]] + [f["command"] for f in files],
        "plan_samples": plan_samples.pop() if len(plan_samples) == 1 else sorted(plan_samples),
        "evaluation": "; ".join(dict.fromkeys(evaluations)),
        "seconds": round(time.perf_counter() - start, 1), "summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
