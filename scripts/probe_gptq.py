"""Probe for issue 12: does error-compensating rounding (GPTQ) help at 3 bits, data-free?

Not part of the package: an experiment whose answer decides whether the plan gets a GPTQ-style
rounding family.  For every conv and linear weight of a committed UNet, both arms use the same
per-output-channel uniform min/max grid of ``2**bits`` levels, so they store the same codes, scales
and offsets and have the same honest bits per weight; only the rounding differs:

- ``rtn``: each weight to its nearest level (the package's per-channel ``uniform_minmax``);
- ``gptq``: weights rounded one input column at a time, each column's error pushed onto the columns
  not yet rounded through the inverse of the layer's input second moment ``H = E[x x^T]``
  (Frantar et al. 2023, "GPTQ: Accurate post-training quantization for generative pre-trained
  transformers", ICLR), damped by 1% of its mean diagonal.

Data-free: ``H`` comes from the layer inputs met while the full-precision model samples from
Gaussian noise (``--calibration`` draws, midpoint, 10 steps, a seed apart from the FID noise); no
training or test image is used.  Biases, norms and embeddings stay as they are in both arms.
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
import torch.nn.functional as F

from fmq_theory._util import write_atomic
from fmq_theory.bounds.certificate import certify_fid
from fmq_theory.flow.frechet import gaussian_fit
from fmq_theory.flow.solvers import sample
from fmq_theory.harness.context import load_context
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.sweep import to_uint8
from fmq_theory.quantizers.torch_rows import affine_dequantize_rows, uniform_minmax_rows

CALIBRATION_SEED = 123  # the FID noise is seed 0


def layer_inputs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The rows ``module``'s weight multiplies: im2col columns of a convolution, last-axis rows of a linear."""
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise ValueError(f"grouped convolution (groups={module.groups}) is not handled")
        cols = F.unfold(x, module.kernel_size, dilation=module.dilation, padding=module.padding, stride=module.stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return x.reshape(-1, x.shape[-1])


def input_moments(model: nn.Module, layers: dict, *, noise: torch.Tensor, labels) -> dict:
    """``E[x x^T]`` of each layer's inputs over the full-precision model's own sampling trajectories."""
    sums, counts, hooks = {}, {}, []
    for name, module in layers.items():
        def hook(mod, inp, out, name=name):
            rows = layer_inputs(mod, inp[0].detach())
            sums[name] = sums.get(name, 0) + (rows.T @ rows).double()
            counts[name] = counts.get(name, 0) + rows.shape[0]
        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            sample(model, noise, adapter=unet_adapter(model, labels, 0.0), solver="midpoint", steps=10,
                   clip=(-1.0, 1.0), batch_size=noise.shape[0])
    finally:
        for h in hooks:
            h.remove()
    return {name: sums[name] / counts[name] for name in layers}


def rtn_round(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Round to nearest: the package's per-channel ``uniform_minmax``, in the dtype of ``w``."""
    return affine_dequantize_rows(*uniform_minmax_rows(w, bits=bits))


def on_grid(w: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor, bits: int) -> torch.Tensor:
    """Each row of ``w`` rounded onto its row's ``uniform_minmax`` grid (``scale`` and ``offset`` of
    :func:`~fmq_theory.quantizers.torch_rows.uniform_minmax_rows`, shape (rows, 1)); a constant row's
    grid (``scale == 0``) is its one value."""
    step = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.clamp(torch.round((w - offset) / step), 0, 2**bits - 1) * scale + offset


def gptq_round(w: torch.Tensor, h: torch.Tensor, bits: int, *, damp: float = 0.01, block: int = 128) -> torch.Tensor:
    """``w`` (rows x inputs, float64) rounded column by column onto its rows' grids, each column's error
    compensated on the later columns through the upper Cholesky factor of ``(H + damp mean(diag H) I)^-1``."""
    w, h = w.clone(), h.clone()
    _, scale, offset = uniform_minmax_rows(w, bits=bits)
    scale, offset = scale[:, None], offset[:, None]
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    h += damp * torch.diag(h).mean() * torch.eye(h.shape[0], dtype=h.dtype)
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    out = torch.empty_like(w)
    for a in range(0, w.shape[1], block):
        b = min(a + block, w.shape[1])
        err = torch.empty_like(w[:, a:b])
        for i in range(a, b):
            out[:, i] = on_grid(w[:, i:i + 1], scale, offset, bits)[:, 0]
            err[:, i - a] = (w[:, i] - out[:, i]) / u[i, i]
            w[:, i:b] -= err[:, i - a:i - a + 1] * u[i, i:b]
        w[:, b:] -= err @ u[a:b, b:]
    return out


def quantized_copy(model: nn.Module, layers: dict, moments: dict, *, bits: int, arm: str) -> tuple[nn.Module, float]:
    """A copy of ``model`` with every layer's weight rounded by ``arm``; and the summed ``tr(D H D^T)``."""
    copied = copy.deepcopy(model)
    modules = dict(copied.named_modules())
    weighted = 0.0
    for name in layers:
        weight = modules[name].weight.data
        w = weight.reshape(weight.shape[0], -1).double()
        q = rtn_round(w, bits) if arm == "rtn" else gptq_round(w, moments[name], bits)
        d = q - w
        weighted += float(torch.einsum("oi,ij,oj->", d, moments[name], d))
        modules[name].weight.data = q.reshape(weight.shape).to(weight.dtype)
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
    layers = {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    covered = sum(m.weight.numel() for m in layers.values())
    start = time.perf_counter()
    cal = torch.randn((args.calibration, *ctx.noise.shape[1:]),
                      generator=torch.Generator().manual_seed(CALIBRATION_SEED))
    cal_labels = None if ctx.labels is None else ctx.labels[:args.calibration]
    moments = input_moments(model, layers, noise=cal, labels=cal_labels)
    result = {"dataset": args.dataset, "checkpoint_sha256": ctx.trained.sha256, "samples": args.samples,
              "calibration_draws": args.calibration, "bits": args.bits, "layers": len(layers),
              "weights_rounded": covered, "parameters": sum(p.numel() for p in model.parameters()),
              "calibration_s": round(time.perf_counter() - start, 1), "feature_net": ctx.classifier.name, "arms": {}}
    print(f"calibration: {len(layers)} layers, {result['calibration_s']} s", flush=True)

    def features(m):
        with torch.no_grad():
            x = sample(m, ctx.noise, adapter=unet_adapter(m, ctx.labels, 0.0), solver="midpoint", steps=10,
                       clip=(-1.0, 1.0), batch_size=500).x
        return torch.as_tensor(ctx.classifier.features(to_uint8(x)), dtype=torch.float64)

    ref = gaussian_fit(torch.as_tensor(ctx.real_features, dtype=torch.float64))
    f_fp = features(model)
    for arm in ("rtn", "gptq"):
        start = time.perf_counter()
        q, weighted = quantized_copy(model, layers, moments, bits=args.bits, arm=arm)
        cert = certify_fid(f_fp, features(q), reference_mean=ref[0], reference_cov=ref[1], n_boot=200, seed=0)
        result["arms"][arm] = {"fid": cert.fid_q, "fid_fp": cert.fid_fp, "dfid": cert.measured_dfid,
                               "dfid_low": cert.dfid_low, "dfid_high": cert.dfid_high,
                               "output_weighted_error": weighted, "seconds": round(time.perf_counter() - start, 1)}
        print(f"{args.dataset} b={args.bits} {arm}: {json.dumps(result['arms'][arm])}", flush=True)
    write_atomic(args.out, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=1) + "\n"))
    return result


if __name__ == "__main__":
    main()
