"""Running the plan's file with its codes kept packed, against full precision, on the CPU or a GPU (issue 12).

Usage (as results/plan_runtime_cpu.json was made, 2 cores, ~27 min in all)::

    fmq plan checkpoints/mnist --budget 2,3,4 -o runs/plans/mnist.safetensors   # mnist_b{2.0,3.0,4.0}.safetensors
    fmq plan checkpoints/dit_fashion_mnist --budget 3 -o runs/plans/dit_b3.safetensors
    PYTHONPATH=. python scripts/plan_runtime.py --samples 64 --repeats 3 --out results/plan_runtime_cpu.json \\
        --plans mnist=checkpoints/mnist:runs/plans/mnist_b2.0.safetensors,...,dit=checkpoints/dit_fashion_mnist:runs/plans/dit_b3.safetensors

On a GPU (``--device cuda``; results/plan_runtime_gpu_b{1,64,1000}.json, one call per batch size, the
command in ``scripts/gpu_lease.sh``'s "Thirty-fifth period" entry) the same rows also give each model's working device memory while it samples (the peak of
``torch.cuda.max_memory_allocated`` over a draw, less what was allocated before it: the models
held at rest are not in it, so a deployment holds the model's resident bytes plus that), and
the wall times are taken between device synchronisations.

For each plan file: the model of its checkpoint at full precision and with every quantized tensor
swapped for a packed one (:func:`fmq_theory.plan.load_quantized_model`), each sampling the same
``--samples`` Gaussian noise draws (seed 1; midpoint, 10 steps, 20 NFE, one batch):

* bytes held at rest (:func:`fmq_theory.plan.resident_bytes`: parameters and buffers, packed codes
  and levels included) and the plan file's size;
* the largest tensor a forward rebuilds at a time (its full-precision bytes): the packed model adds at
  most that, plus its unpacking's intermediates, to the memory of a forward;
* sampling wall time, the median of ``--repeats`` runs after a warm-up, for both models in turn;
* whether the packed model's samples equal, bit for bit, those of the full-precision architecture
  loaded with the plan's dequantized state dict (they must: the module docstring of
  :mod:`fmq_theory.plan.runtime` says why), and their largest absolute difference.

The threads torch uses are the machine's (``torch.get_num_threads()``, recorded).
"""
import argparse
import copy
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from fmq_theory import __version__
from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.plan_sweep import load_plan_model
from fmq_theory.plan import load_plan, load_quantized_model, resident_bytes
from fmq_theory.plan.runtime import PackedTensor

STEPS = 10  # midpoint steps (20 NFE), the plan page's protocol


def _sampler(model, noise, labels):
    def draw():
        return sample(model, noise, adapter=unet_adapter(model, labels), solver="midpoint", steps=STEPS,
                      clip=(-1.0, 1.0), batch_size=len(noise)).x
    return draw


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_seconds(draw, repeats: int, device: torch.device) -> float:
    draw()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        draw()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _working_bytes(draw, device: torch.device) -> int | None:
    """Peak device memory allocated while ``draw`` runs, beyond what was allocated before it
    (``None`` off a GPU)."""
    if device.type != "cuda":
        return None
    _sync(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    draw()
    _sync(device)
    return int(torch.cuda.max_memory_allocated(device) - before)


def measure(checkpoint: str, plan_path: str, *, samples: int, repeats: int, device: torch.device) -> dict:
    """One row: the plan file at ``plan_path`` run packed, against its checkpoint at full precision."""
    fp = load_plan_model(checkpoint)  # read (and, for a run folder, its hash checked) once; the others are copies
    cfg = fp.config
    noise = make_noise(samples, (cfg.in_channels, cfg.image_size, cfg.image_size), seed=1).to(device)
    labels = balanced_labels(samples, cfg.num_classes).to(device) if cfg.num_classes else None
    plan = load_plan(plan_path)
    dequantized = copy.deepcopy(fp)
    dequantized.load_state_dict(plan.state_dict(), strict=True)
    packed = load_quantized_model(copy.deepcopy(fp), plan).to(device)
    fp, dequantized = fp.to(device), dequantized.to(device)
    with torch.no_grad():
        a, b = _sampler(packed, noise, labels)(), _sampler(dequantized, noise, labels)()
        same, max_diff = bool(torch.equal(a, b)), float((a - b).abs().max())
    fp_s = _median_seconds(_sampler(fp, noise, labels), repeats, device)
    packed_s = _median_seconds(_sampler(packed, noise, labels), repeats, device)
    working = {"fp_working_bytes": _working_bytes(_sampler(fp, noise, labels), device),
               "packed_working_bytes": _working_bytes(_sampler(packed, noise, labels), device)}
    rebuilt = [m for m in packed.modules() if isinstance(m, PackedTensor)]
    largest = max((math.prod(m.shape) * m.dtype.itemsize for m in rebuilt), default=0)
    return {"checkpoint": os.path.basename(os.path.normpath(checkpoint)), "plan_file": os.path.basename(plan_path),
            "budget": plan.budget_bits, "bits_per_weight": plan.bits_per_weight,
            "n_weights": sum(c.n_weights for c in plan.choices), "packed_tensors": len(rebuilt),
            "fp_resident_bytes": resident_bytes(fp), "packed_resident_bytes": resident_bytes(packed),
            "plan_file_bytes": os.path.getsize(plan_path), "largest_rebuilt_bytes": largest,
            "fp_sampling_s": fp_s, "packed_sampling_s": packed_s, "samples_equal_dequantized": same,
            "samples_max_abs_diff": max_diff} | (working if device.type == "cuda" else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", required=True,
                        help="comma list of NAME=CHECKPOINT:PLAN_FILE (a plan file written by `fmq plan`)")
    parser.add_argument("--out", required=True, help="JSON file written")
    parser.add_argument("--samples", type=int, default=256, help="noise draws sampled per run (one batch)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per model (median)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, or cuda for the GPU rows")
    args = parser.parse_args()
    device = torch.device(args.device)
    items = []
    for item in args.plans.split(","):
        name, _, rest = item.partition("=")
        checkpoint, _, plan_path = rest.partition(":")
        if not (name and checkpoint and plan_path):
            raise ValueError(f"argument --plans: {item!r} is not NAME=CHECKPOINT:PLAN_FILE")
        items.append((name, checkpoint, plan_path))
    rows = []
    for name, checkpoint, plan_path in tqdm(items, desc="plan runtime", unit="plan"):
        rows.append({"model": name, **measure(checkpoint, plan_path, samples=args.samples, repeats=args.repeats,
                                              device=device)})
    doc = {"version": __version__, "command": "python scripts/plan_runtime.py " + " ".join(
               f"--{k} {v}" for k, v in vars(args).items()),
           "device": device.type, "machine": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                              else platform.processor() or platform.machine()),
           "torch_threads": torch.get_num_threads(),
           "protocol": {"samples": args.samples, "solver": "midpoint", "steps": STEPS, "nfe": 2 * STEPS,
                        "noise_seed": 1, "repeats": args.repeats},
           "rows": rows}
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(args.out)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
