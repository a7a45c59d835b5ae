#!/usr/bin/env bash
# GPU call (issue 17): one sweep of 9 cells (MNIST committed checkpoint; full precision + the
# paper's 4 methods x bits 2, 4; 5000 samples, midpoint 10 steps, latent metrics) run twice,
# each in a fresh process: in-process (--scheduler none) and through the Dask engine on one
# worker; then the wall times, the overhead per cell and the row differences.
#   run(command="bash scripts/gpu_engine_bench.sh", carry=[".carry/harness_data", ".carry/wheels_dask"])
# Writes $OUT/{none,local}.{csv,json}, $OUT/engine_bench.json and $OUT/engine_bench.log.
# Expected: about 3 minutes on one H100/H200.  CPU dry run (tiny):
#   DEVICE=cpu SIZES="--samples 16 --steps 1 --no-latent --real-images 200 --bits 2 --methods equal_mass log2" \
#     PYDEPS=0 bash scripts/gpu_engine_bench.sh
set -euo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1 FMQ_DATA_DIR=${FMQ_DATA_DIR:-.carry/harness_data}
OUT=${OUT:-runs/engine_bench}; mkdir -p "$OUT" runs
[ "${PYDEPS:-1}" = 1 ] && source scripts/gpu_pydeps.sh
[ "${DEVICE:-cuda}" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
start=$(date +%s)
for mode in none local; do
  python3 scripts/gpu_engine_bench.py --mode $mode --out "$OUT" --device ${DEVICE:-cuda} ${SIZES:-} 2>&1 \
    | tr '\r' '\n' | grep -v "it/s\]$\|cell/s\]$\|s/cell\]$" | tee -a "$OUT/engine_bench.log"
  echo "$mode done after $(( $(date +%s) - start )) s" | tee -a "$OUT/engine_bench.log"
done
python3 scripts/gpu_engine_bench.py --mode compare --out "$OUT" | tee -a "$OUT/engine_bench.log"
