"""Probe for issue 12: does error-compensating rounding (GPTQ) help at 3 bits, data-free?

Not part of the package: an experiment whose answer decides whether the plan gets a GPTQ-style
rounding family.  For every linear and ungrouped convolution weight of a committed model, both arms
use the same per-output-channel uniform min/max grid of ``2**bits`` levels, so they store the same
scales and offsets and have the same honest bits per weight; only the codes differ:

- ``rtn``: each weight to its nearest level (the package's per-channel ``uniform_minmax``);
- ``gptq``: weights rounded one input column at a time, each column's error pushed onto the columns
  not yet rounded through the inverse of the layer's input second moment ``H = E[x x^T]``
  (:func:`fmq_theory.plan.compensation.compensated`: Frantar et al. 2023, "GPTQ: Accurate
  post-training quantization for generative pre-trained transformers", ICLR), damped by 1% of its
  mean diagonal.

Data-free: ``H`` comes from the layer inputs met while the full-precision model samples from
Gaussian noise (:func:`fmq_theory.plan.compensation.input_moments`: ``--calibration`` draws, midpoint,
10 steps, a seed apart from the FID noise); no training or test image is used.  Biases, norms and embeddings stay as they are in both arms.
Each arm's classifier FID on ``--samples`` draws, with the paired 95% interval of its change
(:func:`fmq_theory.bounds.certificate.certify_fid`), and the output-weighted error
``sum_layers tr(D H D^T)`` of the weight error ``D``, are written to ``--out`` (JSON).

Run (CPU, 2 cores: on a UNet ~90 s of calibration and ~90 s per 500 samples per arm, on the DiT 21 s and ~145 s)::

    PYTHONPATH=. python scripts/probe_gptq.py --dataset mnist --samples 500 --bits 3 \
        --out results/probes/gptq_mnist_b3_n500.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch.nn as nn

from fmq_theory._util import write_atomic
from fmq_theory.bounds.certificate import certify_fid
from fmq_theory.flow.frechet import gaussian_fit
from fmq_theory.harness.context import load_context
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.plan.candidates import dequantized
from fmq_theory.plan.compensation import compensated, input_moments, output_error
from fmq_theory.quantizers import quantize

CALIBRATION_SEED = 123  # the FID noise is seed 0


def quantized_copy(model: nn.Module, moments: dict, *, bits: int, arm: str) -> tuple[nn.Module, float]:
    """A copy of ``model`` with the weight of every layer of ``moments`` (parameter name -> ``H``) on its
    per-output-channel ``uniform_minmax`` grid of ``bits``, rounded by ``arm`` (``"rtn"`` or ``"gptq"``);
    and the summed output error ``tr(D H D^T)``."""
    copied = copy.deepcopy(model)
    params = dict(copied.named_parameters())
    weighted = 0.0
    for name, h in moments.items():
        weight = params[name].data
        w = weight.reshape(weight.shape[0], -1).double()
        qt = quantize(w, method="uniform_minmax", bits=bits, granularity="channel")
        q = dequantized(qt if arm == "rtn" else compensated(w, qt, h))
        weighted += output_error(w, q, h)
        params[name].data = q.reshape(weight.shape).to(weight.dtype)
    return copied, weighted


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("mnist", "fashion_mnist"), default="mnist")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="a committed model folder (default checkpoints/<dataset>; e.g. checkpoints/dit_fashion_mnist)")
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--calibration", type=int, default=64)
    p.add_argument("--bits", type=int, default=3)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if not 2 <= args.bits <= 8:
        raise SystemExit(f"--bits {args.bits}: must be 2..8")
    ctx = load_context(dataset=args.dataset, samples=args.samples, seed=0, device="cpu", checkpoint=args.checkpoint)
    model = ctx.model.eval()
    start = time.perf_counter()
    cal = torch.randn((args.calibration, *ctx.noise.shape[1:]),
                      generator=torch.Generator().manual_seed(CALIBRATION_SEED))
    cal_labels = None if ctx.labels is None else ctx.labels[:args.calibration]
    moments = input_moments(model, cal, adapter=unet_adapter(model, cal_labels, 0.0), solver="midpoint", steps=10)
    params = dict(model.named_parameters())
    result = {"dataset": args.dataset, "checkpoint_sha256": ctx.trained.sha256, "samples": args.samples,
              "calibration_draws": args.calibration, "bits": args.bits, "layers": len(moments),
              "weights_rounded": sum(params[name].numel() for name in moments),
              "parameters": sum(p.numel() for p in model.parameters()),
              "calibration_s": round(time.perf_counter() - start, 1), "feature_net": ctx.classifier.name, "arms": {}}
    print(f"calibration: {len(moments)} layers, {result['calibration_s']} s", flush=True)
    ref = gaussian_fit(torch.as_tensor(ctx.real_features, dtype=torch.float64))
    f_fp = ctx.sample_features(model)
    for arm in ("rtn", "gptq"):
        start = time.perf_counter()
        q, weighted = quantized_copy(model, moments, bits=args.bits, arm=arm)
        cert = certify_fid(f_fp, ctx.sample_features(q), reference_mean=ref[0], reference_cov=ref[1], n_boot=200,
                           seed=0)
        result["arms"][arm] = {"fid": cert.fid_q, "fid_fp": cert.fid_fp, "dfid": cert.measured_dfid,
                               "dfid_low": cert.dfid_low, "dfid_high": cert.dfid_high,
                               "output_weighted_error": weighted, "seconds": round(time.perf_counter() - start, 1)}
        print(f"{args.dataset} b={args.bits} {arm}: {json.dumps(result['arms'][arm])}", flush=True)
    write_atomic(args.out, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=1) + "\n"))
    return result


if __name__ == "__main__":
    main()
