"""GPU: train the small DiT velocity field on FashionMNIST and check it samples.

Run from the repository root (see scripts/gpu_train_dit.sh for the device command)::

    PYTHONPATH=. FMQ_DATA_DIR=.carry/fmnist_data python3 scripts/gpu_train_dit.py --out runs/checkpoints/dit_fashion_mnist

Trains :class:`fmq_theory.harness.models.dit.DiT` with :func:`fmq_theory.harness.train.train`
(EMA, bf16 autocast, seeded), writes the checkpoint folder through
:func:`fmq_theory.harness.checkpoints.save_checkpoint`, then reloads it through
:func:`fmq_theory.harness.checkpoints.load_trained_model`, samples ``--check-samples`` images
(midpoint, 10 steps, balanced labels, seed 0) and prints the classifier-feature FID against
the test split when the test split and classifier are at hand (a sanity check; the
evaluation proper is scripts/gpu_plan_eval.py).  ``--hidden/--depth`` shrink it for a CPU
dry run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fmq_theory.flow.frechet import fid_from_features
from fmq_theory.flow.solvers import balanced_labels, make_noise, sample
from fmq_theory.harness.checkpoints import load_trained_model, save_checkpoint, update_card
from fmq_theory.harness.data import load
from fmq_theory.harness.features.classifier import ClassifierFeatures, classifier_checkpoint
from fmq_theory.harness.models.dit import DiTConfig
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.train import TrainConfig, to_uint8, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--hidden", type=int, default=160)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--patch", type=int, default=2)
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--time-limit", type=float, default=210.0)
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--check-samples", type=int, default=5000)
    args = p.parse_args()

    mcfg = DiTConfig(hidden=args.hidden, depth=args.depth, num_heads=args.heads, patch=args.patch)
    tcfg = TrainConfig(dataset=args.dataset, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       warmup=args.warmup, ema_decay=0.9995, seed=0, limit_train=args.limit_train,
                       time_limit_s=args.time_limit)
    result = train(mcfg, tcfg, device=args.device, progress=False)
    out = Path(args.out)
    save_checkpoint(out, result.ema_model, result.card(train_config=tcfg, device=args.device))
    loss = result.losses
    print(f"trained DiT {json.dumps(mcfg.to_dict())}: {result.ema_model.num_parameters()} parameters, "
          f"{result.steps} steps in {result.wall_time_s:.1f} s "
          f"({result.steps * args.batch_size / result.wall_time_s:.0f} images/s), "
          f"loss first-100 {loss[:100].mean():.4f} last-500 {loss[-500:].mean():.4f}", flush=True)
    for k in range(0, len(loss), max(1, len(loss) // 10)):
        print(f"  step {k}: loss (mean of 100) {loss[k:k + 100].mean():.4f}")

    loaded = load_trained_model(out, device=args.device)
    cfg = loaded.model.config
    n = args.check_samples
    noise = make_noise(n, (cfg.in_channels, cfg.image_size, cfg.image_size), seed=0)
    labels = balanced_labels(n, cfg.num_classes)
    t0 = time.perf_counter()
    res = sample(loaded.model, noise, adapter=unet_adapter(loaded.model, labels, 0.0), solver="midpoint",
                 steps=10, clip=(-1.0, 1.0), batch_size=2500, autocast=args.device != "cpu")
    wall = time.perf_counter() - t0
    u8 = to_uint8(res.x)
    clf = ClassifierFeatures(classifier_checkpoint(args.dataset), device=args.device)
    real = load(args.dataset, "test").images
    fid = fid_from_features(clf.features(torch.as_tensor(real)), clf.features(u8))
    print(f"sampled {n} images (midpoint 10 steps, NFE {res.nfe}) in {wall:.1f} s; "
          f"classifier FID vs {real.shape[0]} test images: {fid:.3f}")
    update_card(out, check_fid_classifier=round(float(fid), 4), check_samples=n, check_solver="midpoint",
                check_steps=10)


if __name__ == "__main__":
    main()
