"""CPU: the package's half-quadratic fit against the ``hqq`` package on the FashionMNIST DiT.

Where the plan lost to HQQ on the DiT at 4 bits (``results/plan_dit.csv``), HQQ's layout made of the
plan's own ``half_quadratic`` fits moved the samples' law 2.2 times as far as the ``hqq`` package did
(``results/plan_layout_dit_cpu.json``, groups of 128).  This script asks whether the fit is worse.

For every tensor the peer quantizes (:func:`fmq_theory.harness.peers.quantize_peer`) and each setting
(bits, group size), the squared error per weight of:

* ``ours``: :mod:`fmq_theory.quantizers.half_quadratic`, the plan's option (float16 scale and offset);
* ``hqq``: the package with its defaults (its first zero point rounded at 4 bits);
* ``hqq_unrounded``: the package with ``round_zero=False``, the same optimiser from the unrounded start.

At 4 bits the three weight sets in HQQ's layout (float16 where the peer keeps float16) are also
sampled from the plan's noise (256 draws of seed 1, balanced labels, midpoint, 10 steps) and scored
by the plan's shift (:func:`fmq_theory.plan.selection.distribution_shift`) against full precision::

    PYTHONPATH=. python scripts/half_quadratic_vs_hqq_cpu.py   # ~8 min on 2 cores -> results/half_quadratic_vs_hqq_dit_cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fmq_theory import __version__
from fmq_theory._util import file_sha256, write_atomic
from fmq_theory.flow.solvers import balanced_labels, make_noise
from fmq_theory.harness.checkpoints import load_trained_model
from fmq_theory.harness.models.unet import unet_adapter
from fmq_theory.harness.peers import _hqq, quantize_peer
from fmq_theory.plan.candidates import Candidate, fit_candidate
from fmq_theory.plan.selection import distribution_shift, sampled

CHECKPOINT = Path("checkpoints/dit_fashion_mnist")
#: (bits, group size); the shift is sampled at 4 bits, where the plan lost.
SETTINGS = ((1, 128), (2, 128), (3, 128), (4, 128), (4, 64))
SHIFT_BITS = 4


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--out", default="results/half_quadratic_vs_hqq_dit_cpu.json")
    args = p.parse_args()
    start = time.perf_counter()
    model = load_trained_model(CHECKPOINT).model.eval()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    noise = make_noise(args.samples, (1, 28, 28), seed=1)
    adapter = unet_adapter(model, balanced_labels(args.samples, model.config.num_classes), 0.0)
    reference = sampled(model, state, noise, adapter=adapter, solver="midpoint", steps=10)
    rows = []
    for bits, group in SETTINGS:
        peer = quantize_peer(state, family=f"hqq:g{group}", setting=f"b{bits}")
        names = [k for k, f in peer.tensor_format.items() if f != "fp16"]
        sets = {kind: {k: (v.half().float() if peer.tensor_format.get(k) == "fp16" else v) for k, v in state.items()}
                for kind in ("ours", "hqq", "hqq_unrounded")}
        for k in names:
            sets["ours"][k] = fit_candidate(state[k], Candidate("half_quadratic", bits, f"group:{group}", "float16"),
                                            sensitivity=None).restored(torch.float32)
            sets["hqq"][k] = peer.state_dict[k].float()
            sets["hqq_unrounded"][k] = _hqq(state[k], bits, group, round_zero=False)[0]
        n = sum(state[k].numel() for k in names)
        for kind, weights in sets.items():
            mse = sum(float(((weights[k].double() - state[k].double()) ** 2).sum()) for k in names) / n
            row = {"bits": bits, "group": group, "kind": kind, "tensors": len(names), "weights": n, "mse": mse}
            if bits == SHIFT_BITS:
                x = sampled(model, weights, noise, adapter=adapter, solver="midpoint", steps=10)
                row["shift"], row["shift_low"], row["shift_high"] = distribution_shift(x, reference)
            rows.append(row)
            print(f"b{bits} g{group} {kind}: mse {mse:.5e}" + (f", shift {row['shift']:.4g}" if "shift" in row else "")
                  + f" ({time.perf_counter() - start:.0f} s)", flush=True)
    out = {"command": "PYTHONPATH=. python scripts/half_quadratic_vs_hqq_cpu.py", "version": __version__,
           "checkpoint_sha256": file_sha256(CHECKPOINT / "model.safetensors"), "samples": args.samples,
           "noise_seed": 1, "solver": "midpoint", "steps": 10, "rows": rows,
           "seconds": round(time.perf_counter() - start, 1)}
    write_atomic(args.out, lambda tmp: Path(tmp).write_text(json.dumps(out, indent=1) + "\n"))


if __name__ == "__main__":
    main()
