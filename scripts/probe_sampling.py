"""Time paired sampling of a trained checkpoint on the GPU (plans the sweep's budget).

Usage: python3 scripts/probe_sampling.py CHECKPOINT_DIR [N]
Prints seconds for N samples with midpoint steps 10/20, bf16 autocast on/off, two batch sizes.
"""
import sys
import time

import torch

from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.checkpoints import load_trained_model
from fmq_theory.harness.models.unet import unet_adapter

folder = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
lm = load_trained_model(folder, device="cuda")
noise = make_noise(n, (1, 28, 28), seed=0)
labels = balanced_labels(n, 10)
sample(lm.model, noise[:500], adapter=unet_adapter(lm.model, labels[:500]), steps=2, clip=(-1.0, 1.0), autocast=True)
for steps, ac, bs in ((10, True, 5000), (20, True, 5000), (10, False, 5000), (10, True, 2500)):
    torch.cuda.synchronize()
    t = time.perf_counter()
    r = sample(lm.model, noise, adapter=unet_adapter(lm.model, labels), steps=steps, clip=(-1.0, 1.0),
               autocast=ac, batch_size=bs)
    torch.cuda.synchronize()
    print(f"midpoint steps={steps} nfe={r.nfe} autocast={ac} batch={bs}: "
          f"{time.perf_counter() - t:.2f} s for {n}")
