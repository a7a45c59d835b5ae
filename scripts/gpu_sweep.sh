#!/usr/bin/env bash
# GPU sweep calls: `fmq experiment` for MNIST then FashionMNIST, every method x bits 2..8,
# 10k samples per cell, midpoint 10 steps (NFE 20), resumable, under a per-call deadline.
# The cells run through the sweep engine (fmq_theory.harness.engine) on a one-worker Dask
# LocalCluster (--scheduler local --workers 1); Dask comes from the carried wheels
# (.carry/wheels_dask, scripts/gpu_pydeps.sh), so every call also carries ".carry/wheels_dask".
# The Inception TorchScript file (87 MB) is too large for one call's 64 MiB: it travels in
# three parts, one per call, in .carry/hx_inc{1,2,3}/part (made by scripts/split_inception.sh);
# the parts collect in runs/inception_parts/ on the warm machine and are joined (SHA-256
# checked) once all three are there. Until then the Inception cells are deferred.
# Test splits travel in .carry/hx_test (test arrays + manifest); partial results can be
# carried back in .carry/hx_results. Calls (issue each right after the previous returns):
#   run("bash scripts/gpu_sweep.sh", carry=[".carry/hx_test", ".carry/hx_inc1", ".carry/wheels_dask"])
#   run("bash scripts/gpu_sweep.sh", carry=[".carry/hx_inc2"])
#   run("bash scripts/gpu_sweep.sh", carry=[".carry/hx_inc3"])
#   run("bash scripts/gpu_sweep.sh")            # until no cell is left
set -uo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1 FMQ_DATA_DIR=.carry/hx_test
OUT=${OUT:-runs/out}; mkdir -p "$OUT" runs/results runs/grids runs/inception_parts
source scripts/gpu_pydeps.sh
DEADLINE=$(( $(date +%s) + ${BUDGET_S:-500} ))
INC_SHA=7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34
for i in 1 2 3; do [ -f .carry/hx_inc$i/part ] && cp .carry/hx_inc$i/part runs/inception_parts/part$i; done
[ -d .carry/hx_results ] && cp -n .carry/hx_results/*.csv runs/results/ 2>/dev/null
INC_ARGS=(--defer-inception-cells)
if [ ! -f runs/inception/default_1.pt ] && [ -f runs/inception_parts/part3 ] && [ -f runs/inception_parts/part1 ] && [ -f runs/inception_parts/part2 ]; then
  mkdir -p runs/inception && cat runs/inception_parts/part{1,2,3} > runs/inception/default_1.pt
  echo "$INC_SHA  runs/inception/default_1.pt" | sha256sum -c || rm -f runs/inception/default_1.pt
fi
[ -f runs/inception/default_1.pt ] && INC_ARGS=(--inception runs/inception/default_1.pt)
ls runs/inception_parts; echo "inception args: ${INC_ARGS[*]}"
for ds in mnist fashion_mnist; do
  python3 -m fmq_theory experiment --dataset $ds --methods all --bits 2:8 --granularity channel \
    --samples 10000 --solver midpoint --steps 10 --seed 0 --batch-size 5000 --device cuda \
    --scheduler local --workers 1 \
    --out runs/results/$ds.csv --grid-dir runs/grids --deadline $DEADLINE "${INC_ARGS[@]}" \
    2>&1 | tr '\r' '\n' | grep -E "sweep|rows|rror|Traceback|File|line" | tail -n 4
done
python3 - <<'PY'
from pathlib import Path
from fmq_theory.results.schema import SWEEP
for ds in ("mnist", "fashion_mnist"):
    path = Path(f"runs/results/{ds}.csv")
    if not path.is_file():
        continue
    rows = SWEEP.read(path)
    inc = sum(1 for r in rows if r["fid_inception"] is not None)
    print(f"{ds}: {len(rows)} rows, {inc} with Inception FID")
    for r in rows[-3:]:
        print(" ", r["method"], r["bits"], "fid", f"{r['fid']:.5g}", "inc", r["fid_inception"], "psnr", f"{r['psnr']:.4g}",
              "ssim", f"{r['ssim']:.4g}", "wall", r["wall_s"])
PY
cp runs/results/*.csv "$OUT"/ 2>/dev/null
tar czf "$OUT/grids.tgz" -C runs grids
