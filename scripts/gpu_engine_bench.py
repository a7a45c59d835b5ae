"""The sweep engine against the in-process loop on the same cells (issue 17).

Usage: python scripts/gpu_engine_bench.py --mode {none,local,compare} [--out DIR] [sweep sizes]

``--mode none`` runs the sweep in this process (``scheduler="none"``); ``--mode local`` runs the
same cells through the engine on a one-worker Dask ``LocalCluster`` (after timing the start of an
empty one-worker cluster whose worker imports torch and fmq_theory); each mode writes
``DIR/<mode>.csv`` and ``DIR/<mode>.json`` (wall time of the ``run_sweep`` call, sum of the
cells' own ``wall_s``).  Run each mode in a fresh process, so that both pay their own CUDA start; both run every
cell on ``--threads`` torch threads (CPU sums depend on the count).
``--mode compare`` writes ``DIR/engine_bench.json``: both wall times, the overhead per cell
``(T_engine - T_in_process) / cells``, its part left after the cluster start, and how far the
two runs' rows differ (every column but ``wall_s``).
"""
import argparse
import json
import math
import time
from pathlib import Path

import dask
import torch
from distributed import Client, LocalCluster

from fmq_theory import __version__
from fmq_theory.harness.sweep import SweepConfig, run_sweep
from fmq_theory.results.schema import SWEEP
from fmq_theory.vocab import PAPER_METHODS

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--mode", required=True, choices=["none", "local", "compare"])
parser.add_argument("--out", default="runs/engine_bench")
parser.add_argument("--dataset", default="mnist")
parser.add_argument("--methods", nargs="+", default=list(PAPER_METHODS))
parser.add_argument("--bits", type=int, nargs="+", default=[2, 4])
parser.add_argument("--samples", type=int, default=5000)
parser.add_argument("--steps", type=int, default=10)
parser.add_argument("--batch-size", type=int, default=5000)
parser.add_argument("--latent-images", type=int, default=1000)
parser.add_argument("--inversion-images", type=int, default=250)
parser.add_argument("--real-images", type=int, default=None)
parser.add_argument("--latent", action=argparse.BooleanOptionalAction, default=True)
parser.add_argument("--device", default="cuda")
parser.add_argument("--threads", type=int, default=8, help="torch threads of every cell, both modes")


def cluster_start_s() -> float:
    """Seconds to start and close an empty one-worker LocalCluster whose worker imports the stack."""
    t0 = time.perf_counter()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit=0) as cluster, Client(cluster) as client:
        client.run(__import__, "fmq_theory.harness.sweep")
    return time.perf_counter() - t0


def compare(out: Path) -> None:
    """Both runs side by side: ``engine_bench.json``."""
    runs = {m: json.loads((out / f"{m}.json").read_text()) for m in ("none", "local")}
    rows = {m: {SWEEP.row_key(r): r for r in SWEEP.read(out / f"{m}.csv")} for m in ("none", "local")}
    same_keys = rows["none"].keys() == rows["local"].keys()
    worst, differing = 0.0, set()
    for key in rows["none"].keys() & rows["local"].keys():
        a, b = rows["none"][key], rows["local"][key]
        for col in a:
            if col == "wall_s" or a[col] == b[col]:
                continue
            differing.add(col)
            if isinstance(a[col], float) and isinstance(b[col], float) and math.isfinite(a[col]):
                worst = max(worst, abs(a[col] - b[col]) / max(abs(a[col]), 1e-300))
    n = runs["none"]["cells"]
    t_none, t_local = runs["none"]["wall_s"], runs["local"]["wall_s"]
    summary = {
        "cells": n, "in_process_wall_s": t_none, "engine_wall_s": t_local,
        "in_process_cells_wall_s": runs["none"]["cells_wall_s"], "engine_cells_wall_s": runs["local"]["cells_wall_s"],
        "overhead_per_cell_s": (t_local - t_none) / n, "cluster_start_s": runs["local"]["cluster_start_s"],
        "overhead_per_cell_after_start_s": (t_local - runs["local"]["cluster_start_s"] - t_none) / n,
        "same_cells": same_keys, "differing_columns": sorted(differing), "max_relative_difference": worst,
        "config": runs["none"]["config"], "device_name": runs["none"]["device_name"],
        "torch": torch.__version__, "dask": runs["local"]["dask"], "version": __version__,
    }
    (out / "engine_bench.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


def sweep(args, out: Path) -> None:
    """One mode's sweep: ``<mode>.csv`` and ``<mode>.json``."""
    cfg = SweepConfig(dataset=args.dataset, methods=tuple(args.methods), bits=tuple(args.bits), samples=args.samples,
                      steps=args.steps, batch_size=args.batch_size, latent=args.latent, latent_images=args.latent_images,
                      inversion_images=args.inversion_images, inception_cells="none:32", real_images=args.real_images)
    csv = out / f"{args.mode}.csv"
    csv.unlink(missing_ok=True)
    info = {"mode": args.mode, "config": {k: v for k, v in vars(args).items() if k not in ("mode", "out")},
            "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"}
    if args.mode == "local":
        info["dask"] = dask.__version__
        info["cluster_start_s"] = cluster_start_s()
        print(f"empty one-worker cluster: start + worker imports + close {info['cluster_start_s']:.2f} s", flush=True)
    report = run_sweep(cfg, out=csv, device=args.device, progress=True, scheduler=args.mode,
                       workers=1 if args.mode == "local" else None, threads=args.threads)
    rows = SWEEP.read(csv)
    info.update(cells=len(rows), wall_s=report.wall_s, cells_wall_s=sum(r["wall_s"] for r in rows),
                failed=len(report.failed), dashboard=report.dashboard)
    (out / f"{args.mode}.json").write_text(json.dumps(info, indent=2))
    print(f"{args.mode}: {len(rows)} cells in {report.wall_s:.2f} s (cells' own wall {info['cells_wall_s']:.2f} s), "
          f"{len(report.failed)} failed", flush=True)
    for r in rows:
        print(f"  {r['method']:>18s} b={r['bits']}  fid {r['fid']:.6g}  psnr {r['psnr']:.5g}  wall {r['wall_s']} s", flush=True)


if __name__ == "__main__":  # the cluster's worker processes re-import this file: run nothing then
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    compare(out) if args.mode == "compare" else sweep(args, out)
