"""The sensitivity pass's device memory, estimated on the CPU, against the peaks measured on a GPU (issue 12).

Usage (as benchmarks/sensitivity_memory_cpu.json was made, 2 cores, ~1 min)::

    PYTHONPATH=. python scripts/sensitivity_memory_cpu.py --measured benchmarks/gpu_h200_sensitivity.json \\
        --out benchmarks/sensitivity_memory_cpu.json

The model is the benchmark's (``benchmarks/gpu.py --only sensitivity``): the paper's 55.7M
network with random weights drawn as there, its pass on 256 noise draws in batches of 32, 8
replicates, midpoint, 10 steps.  :func:`fmq_theory.plan.pass_memory` measures what autograd saves
for one and two rows on the CPU and adds up the pass's terms.  The GPU peaks in ``--measured``
were taken by the code of their day (its ``torch`` and date are in that file): 8 R bytes a parameter
of float64 sums on the device (one replicate's, 8, since 41a8654) and, in a vectorized pass, two
solver steps' activations at once (one since the pullback is dropped before the next is made); the
estimate of *then* adds those back, so that it is compared with what was measured, and the
estimate of *now* is what the next lease's ``benchmarks/gpu.py`` should see (it records
``estimated_peak_bytes`` beside each pass's peak).
"""
import argparse
import json
import os
import time
from pathlib import Path

import torch

from fmq_theory import __version__
from fmq_theory.flow.solvers import make_noise
from fmq_theory.harness.models.paper_unet import PaperUNet, PaperUNetConfig
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.plan import pass_memory


def paper_network() -> PaperUNet:
    """The benchmark's model: the zero-initialised layers drawn too (benchmarks/gpu.py)."""
    torch.manual_seed(0)
    model = PaperUNet(PaperUNetConfig())
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                torch.nn.init.kaiming_uniform_(p, a=5**0.5)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measured", required=True, help="a benchmarks/gpu.py json with the sensitivity stage")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    run = json.loads(Path(args.measured).read_text())
    measured = next(m for m in run["methods"] if m["method"] == "sensitivity")
    model = paper_network()
    config = model.config
    probes = make_noise(measured["plan_samples"], (config.in_channels, config.image_size, config.image_size), seed=1)
    n = sum(p.numel() for p in model.parameters())
    replicates = measured["replicates"]
    rows = []
    for entry in measured["passes"]:
        autocast, k = entry["precision"] != "float32", entry["batches_per_pass"]
        t0 = time.perf_counter()
        now = pass_memory(model, probes, adapter=unet_adapter(model, None, 0.0), solver="midpoint", steps=10,
                          replicates=replicates, batch_size=measured["batch_size"], autocast=autocast,
                          batches_per_pass=k)
        then = now.total + 8 * (replicates - 1) * n + (now.activations if k > 1 else 0)
        rows.append({"precision": entry["precision"], "batches_per_pass": k, "per_row_bytes": now.per_row,
                     "shared_bytes": now.shared, "estimate_now_bytes": now.total, "estimate_then_bytes": then,
                     "peak_bytes": entry.get("peak_bytes"),
                     "then_over_peak": then / entry["peak_bytes"] if entry.get("peak_bytes") else None,
                     "seconds": round(time.perf_counter() - t0, 2)})
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps({
        "provenance": f"scripts/sensitivity_memory_cpu.py --measured {args.measured}, run on {time.strftime('%Y-%m-%d')} "
                      f"on {os.cpu_count()} CPU cores, fmq_theory {__version__}, torch {torch.__version__}",
        "measured_on": run["gpu"],
        "parameters": n, "plan_samples": measured["plan_samples"], "batch_size": measured["batch_size"],
        "replicates": replicates, "passes": rows}, indent=1))


if __name__ == "__main__":
    main()
