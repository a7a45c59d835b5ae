"""Exact step counts of the two schedules of the Triton ``lloyd_max`` DP kernel, on the CPU.

The middle layers of the exact 1-D k-means DP (:func:`fmq_theory.quantizers.torch_rows.torch_layers`)
search, depth by depth of a divide and conquer, a window of candidate splits for every node.
The Triton kernel (``benchmarks/gpu_triton.py``, one program per row) can lay those searches
on its lanes in two ways:

* the previous schedule: a depth of at most 4 nodes searches one node's window 128
  candidates at a time; a deeper one gives each of 128 nodes one lane that walks its
  window, so that a step lasts as long as the widest window of its 128 nodes;
* flattened: the depth's windows laid end to end and searched ``tile`` candidates at a time
  (plus one step per ``tile`` nodes to place the windows and one to write the results).

This script solves the DP on rows of N(0, 1) weights, reads every node's window back from
the optimal splits, and counts for each schedule the serial steps per row and the share of
lane-steps that evaluate a candidate.  These are counts, not timings: a lane that waits
still occupies its SIMT slot, so the lane share bounds the speed-up of a kernel whose time
goes into evaluating candidates, and the serial steps that of one bound by latency.  The
timings are ``benchmarks/gpu.py``'s.

    PYTHONPATH=. python benchmarks/lloyd_schedule.py --out benchmarks/lloyd_schedule.json   # b = 4; ~10 s
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from fmq_theory.quantizers.torch_rows import schedule, torch_layers


def windows(x: np.ndarray, n_levels: int) -> list[list[np.ndarray]]:
    """Per middle layer, per depth, the width of every node's window of candidate splits,
    as the kernel computes it from the optimal splits of the layer (at least 0)."""
    v = np.sort(x.astype(np.float64))
    v = v - v.mean()
    n = v.size
    p1 = torch.as_tensor(np.concatenate([[0.0], np.cumsum(v)]))[None]
    p2 = torch.as_tensor(np.concatenate([[0.0], np.cumsum(v * v)]))[None]
    positions = torch.arange(n + 1)
    counts = positions.clamp_min(1).to(torch.float64)
    prev = torch.clamp_min(p2 - p1 * p1 / counts, 0.0)
    prev[:, 0] = torch.inf
    forbidden = torch.zeros((1, n + 1), dtype=torch.bool)
    splits, _ = torch_layers(p1, p2, forbidden, prev, n_levels)
    layers = []
    for cells, split in enumerate(splits, start=2):
        opt = np.concatenate([[cells - 1], split[0, :n].numpy(), [n - 1]])
        layers.append([np.maximum(np.minimum(opt[right.numpy()], mid.numpy() - 1) - opt[left.numpy()] + 1, 0)
                       for mid, left, right in schedule(n, "cpu")])
    return layers


def previous_steps(widths: np.ndarray, lanes: int = 128) -> int:
    """Serial steps of one depth in the previous schedule."""
    if widths.size <= 4:
        return sum(math.ceil(int(w) / lanes) for w in widths)
    return sum(int(widths[g:g + lanes].max()) for g in range(0, widths.size, lanes))


def flat_steps(widths: np.ndarray, tile: int) -> tuple[int, int]:
    """Serial steps of one depth flattened, and those of them that evaluate candidates."""
    search = math.ceil(int(widths.sum()) / tile)
    return search + 2 * math.ceil(widths.size / tile), search


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--lengths", type=int, nargs="+", default=[3072, 12288, 15360])
    parser.add_argument("--tiles", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    for n in args.lengths:
        layers = windows(rng.standard_normal(n), 2**args.bits)
        candidates = sum(int(w.sum()) for layer in layers for w in layer)
        steps = sum(previous_steps(w) for layer in layers for w in layer)
        rows.append(dict(row_length=n, schedule="previous", lanes=128, serial_steps=steps,
                         lane_share=candidates / (steps * 128)))
        for tile in args.tiles:
            counts = [flat_steps(w, tile) for layer in layers for w in layer]
            rows.append(dict(row_length=n, schedule="flattened", lanes=tile, serial_steps=sum(c[0] for c in counts),
                             lane_share=candidates / (sum(c[1] for c in counts) * tile)))
    print("| row length | schedule | lanes | serial steps per row | lane-steps on a candidate |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['row_length']} | {r['schedule']} | {r['lanes']} | {r['serial_steps']} | {r['lane_share']:.3f} |")
    if args.out:
        args.out.write_text(json.dumps(dict(bits=args.bits, seed=args.seed, rows=rows), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
