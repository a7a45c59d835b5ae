"""Running the plan's file with its codes kept packed, against full precision, on the CPU (issue 12).

Usage (as results/plan_runtime_cpu.json was made, 2 cores, ~27 min in all)::

    fmq plan checkpoints/mnist --budget 2,3,4 -o runs/plans/mnist.safetensors   # mnist_b{2.0,3.0,4.0}.safetensors
    fmq plan checkpoints/dit_fashion_mnist --budget 3 -o runs/plans/dit_b3.safetensors
    PYTHONPATH=. python scripts/plan_runtime_cpu.py --samples 64 --repeats 3 --out results/plan_runtime_cpu.json \\
        --plans mnist=checkpoints/mnist:runs/plans/mnist_b2.0.safetensors,...,dit=checkpoints/dit_fashion_mnist:runs/plans/dit_b3.safetensors

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
  :mod:`fmq_theory.plan.runtime` says why).

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


def _median_seconds(draw, repeats: int) -> float:
    draw()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        draw()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(checkpoint: str, plan_path: str, *, samples: int, repeats: int) -> dict:
    """One row: the plan file at ``plan_path`` run packed, against its checkpoint at full precision."""
    fp = load_plan_model(checkpoint)  # read (and, for a run folder, its hash checked) once; the others are copies
    cfg = fp.config
    noise = make_noise(samples, (cfg.in_channels, cfg.image_size, cfg.image_size), seed=1)
    labels = balanced_labels(samples, cfg.num_classes) if cfg.num_classes else None
    plan = load_plan(plan_path)
    dequantized = copy.deepcopy(fp)
    dequantized.load_state_dict(plan.state_dict(), strict=True)
    packed = load_quantized_model(copy.deepcopy(fp), plan)
    with torch.no_grad():
        same = bool(torch.equal(_sampler(packed, noise, labels)(), _sampler(dequantized, noise, labels)()))
    fp_s = _median_seconds(_sampler(fp, noise, labels), repeats)
    packed_s = _median_seconds(_sampler(packed, noise, labels), repeats)
    rebuilt = [m for m in packed.modules() if isinstance(m, PackedTensor)]
    largest = max((math.prod(m.shape) * m.dtype.itemsize for m in rebuilt), default=0)
    return {"checkpoint": os.path.basename(os.path.normpath(checkpoint)), "plan_file": os.path.basename(plan_path),
            "budget": plan.budget_bits, "bits_per_weight": plan.bits_per_weight,
            "n_weights": sum(c.n_weights for c in plan.choices), "packed_tensors": len(rebuilt),
            "fp_resident_bytes": resident_bytes(fp), "packed_resident_bytes": resident_bytes(packed),
            "plan_file_bytes": os.path.getsize(plan_path), "largest_rebuilt_bytes": largest,
            "fp_sampling_s": fp_s, "packed_sampling_s": packed_s, "samples_equal_dequantized": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", required=True,
                        help="comma list of NAME=CHECKPOINT:PLAN_FILE (a plan file written by `fmq plan`)")
    parser.add_argument("--out", required=True, help="JSON file written")
    parser.add_argument("--samples", type=int, default=256, help="noise draws sampled per run (one batch)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per model (median)")
    args = parser.parse_args()
    items = []
    for item in args.plans.split(","):
        name, _, rest = item.partition("=")
        checkpoint, _, plan_path = rest.partition(":")
        if not (name and checkpoint and plan_path):
            raise ValueError(f"argument --plans: {item!r} is not NAME=CHECKPOINT:PLAN_FILE")
        items.append((name, checkpoint, plan_path))
    rows = []
    for name, checkpoint, plan_path in tqdm(items, desc="plan runtime", unit="plan"):
        rows.append({"model": name, **measure(checkpoint, plan_path, samples=args.samples, repeats=args.repeats)})
    doc = {"version": __version__, "command": "python scripts/plan_runtime_cpu.py " + " ".join(
               f"--{k} {v}" for k, v in vars(args).items()),
           "device": "cpu", "machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
           "protocol": {"samples": args.samples, "solver": "midpoint", "steps": STEPS, "nfe": 2 * STEPS,
                        "noise_seed": 1, "repeats": args.repeats},
           "rows": rows}
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(args.out)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
