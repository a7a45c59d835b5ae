#!/usr/bin/env bash
# GPU call: `fmq bound-check` for MNIST and FashionMNIST (issue 7), one call for both.
# Run on the device machine from the repo root, with the committed checkpoints
# (checkpoints/{mnist,fashion_mnist}/, checkpoints/classifier_*.safetensors) and the prepared
# arrays carried in .carry/harness_data:
#   mkdir -p .carry/harness_data && cp data/{mnist,fashion_mnist}.npz data/manifest.json .carry/harness_data/
#   run(command="bash scripts/gpu_bound_check.sh", carry=[".carry/harness_data", ".carry/wheels_dask"])
# Writes $OUT/bound_check_<dataset>.csv, $OUT/bound_check_<dataset>.png, $OUT/bound_check.log.
# Each dataset stops starting new cells after TIME_LIMIT seconds (default 200).
#
# The committed results/bound_check_{mnist,fashion_mnist}.csv came from eight calls on one H100
# (a dataset's 21 cells take ~8 minutes with the trajectory certificate at b=4, more than one
# 10-minute call holds), then merged on the CPU:
#   common="CERT_SAMPLES=32 GAIN_SAMPLES=32 PRED_SAMPLES=1000 DRAWS=2"
#   $common DATASETS=mnist BITS=2:8 CERT_BITS=4 TIME_LIMIT=420 bash scripts/gpu_bound_check.sh   # b=2,4,8 + equal_mass b=3
#   $common DATASETS=mnist BITS=3,5,6,7 CERT_BITS=16 TIME_LIMIT=480 bash scripts/gpu_bound_check.sh
#   $common DATASETS=fashion_mnist BITS=2:8 CERT_BITS=4 TIME_LIMIT=460 bash scripts/gpu_bound_check.sh
#   $common DATASETS=fashion_mnist BITS=5,6,7 CERT_BITS=16 TIME_LIMIT=480 bash scripts/gpu_bound_check.sh
#   # the b=4 cells again, trajectory certificate on 512 instead of 32 samples (same ~60 s):
#   $common DATASETS=mnist BITS=4 CERT_BITS=4 CERT_SAMPLES=512 TIME_LIMIT=500 bash scripts/gpu_bound_check.sh
#   $common DATASETS=fashion_mnist BITS=4 CERT_BITS=4 CERT_SAMPLES=512 TIME_LIMIT=500 bash scripts/gpu_bound_check.sh
#   # and the b=2 and b=8 cells with the trajectory certificate:
#   $common DATASETS=mnist BITS=2,8 CERT_BITS=2,8 CERT_SAMPLES=512 TIME_LIMIT=470 bash scripts/gpu_bound_check.sh
#   $common DATASETS=fashion_mnist BITS=2,8 CERT_BITS=2,8 CERT_SAMPLES=512 TIME_LIMIT=470 bash scripts/gpu_bound_check.sh
#   python scripts/merge_bound_check.py --dataset mnist call1/....csv call2/....csv call5/....csv call7/....csv
#   python scripts/merge_bound_check.py --dataset fashion_mnist call3/....csv call4/....csv call6/....csv call8/....csv
# (CERT_BITS=16 names no bit width of the grid: no trajectory certificate in that call.)
# Cells run twice (a cut-short call's last cell) agreed to every printed digit: the runs are
# deterministic for the fixed seed, and the merge checks it.
set -euo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1 FMQ_DATA_DIR=.carry/harness_data
source scripts/gpu_pydeps.sh  # Dask from the carried .carry/wheels_dask (the fmq CLI imports it)
OUT=${OUT:-runs/bound_check}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/bound_check.log"
python3 -c "import importlib.util as u; print('numba', bool(u.find_spec('numba')))" | tee -a "$OUT/bound_check.log"
start=$(date +%s)
for ds in ${DATASETS:-mnist fashion_mnist}; do
  python3 -m fmq_theory bound-check --dataset "$ds" --device cuda \
      --samples ${SAMPLES:-5000} --cert-samples ${CERT_SAMPLES:-64} --pred-samples ${PRED_SAMPLES:-2000} \
      --gain-samples ${GAIN_SAMPLES:-64} --draws ${DRAWS:-2} --solver ${SOLVER:-midpoint} --steps ${STEPS:-10} \
      --bits ${BITS:-2:8} --cert-bits ${CERT_BITS:-2:8} --n-boot ${N_BOOT:-100} --time-limit ${TIME_LIMIT:-200} \
      --out "$OUT/bound_check_$ds.csv" --figure "$OUT/bound_check_$ds.png" 2>&1 \
      | tr '\r' '\n' | grep -v "it/s\]$" | tee -a "$OUT/bound_check.log"
  echo "$ds done after $(( $(date +%s) - start )) s" | tee -a "$OUT/bound_check.log"
done
ls -la "$OUT"
