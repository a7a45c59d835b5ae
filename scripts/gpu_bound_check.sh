#!/usr/bin/env bash
# GPU call: `fmq bound-check` for one or both datasets (issue 16: certified W2, certified sqrt(FID)
# change, estimated trajectory on a few cells).  Run on the device machine from the repo root, with
# the committed checkpoints (checkpoints/{mnist,fashion_mnist}/, checkpoints/classifier_*.safetensors)
# and the prepared arrays carried in .carry/harness_data:
#   mkdir -p .carry/harness_data && cp data/{mnist,fashion_mnist}.npz data/manifest.json .carry/harness_data/
# One 10-minute call per dataset (21 cells each):
#   run(command="DATASETS=mnist bash scripts/gpu_bound_check.sh", carry=[".carry/harness_data", ".carry/wheels_dask"], timeout_s=600)
#   run(command="DATASETS=fashion_mnist bash scripts/gpu_bound_check.sh", carry=[".carry/harness_data", ".carry/wheels_dask"], timeout_s=600)
# (a CPU dry run: PYTHON=.venv/bin/python DEVICE=cpu SAMPLES=20 TRAJ_SAMPLES=2 PRED_SAMPLES=4 GAIN_SAMPLES=2
#  DRAWS=1 STEPS=2 BITS=8 TRAJ_BITS=8 N_BOOT=4 BATCH_SIZE=20 DATASETS=mnist OUT=/tmp/dry bash scripts/gpu_bound_check.sh)
# then on the CPU:
#   python scripts/merge_bound_check.py --dataset mnist <files_at>/bound_check_mnist.csv
#   python scripts/merge_bound_check.py --dataset fashion_mnist <files_at>/bound_check_fashion_mnist.csv
# Writes $OUT/bound_check_<dataset>.csv (rewritten after every cell), $OUT/bound_check_<dataset>.png,
# $OUT/bound_check_<dataset>.log.
#
# Measured on one H200 (issue 16): MNIST 465 s, FashionMNIST 453 s per call (set-up 34 s).
# Budget (H100 timings of the previous tables): a cell without the trajectory estimate ~17 s
# (5000 paired samples + features + bootstrap ~4 s, prediction on 1000 samples ~9 s, dither ~4 s;
# certified_w2 and the sqrt(FID) certificate cost nothing extra), the trajectory estimate ~55 s
# per cell whatever its sample count (latency-bound Lanczos), set-up ~40 s: 40 + 21 x 17 + 2 x 55
# ~ 510 s per dataset.  So the trajectory estimate runs on lloyd_max at b=2 and b=8 only
# (TRAJ_BITS, TRAJ_METHODS), and no cell starts after TIME_LIMIT=470 s (cells run b=2, 4, 8 first,
# so a cut-short call still spans the bit range; the missing cells can be run with BITS=... in a
# second call and merged).
set -euo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1 FMQ_DATA_DIR=${FMQ_DATA_DIR:-.carry/harness_data}
source scripts/gpu_pydeps.sh  # Dask from the carried .carry/wheels_dask (the fmq CLI imports it)
OUT=${OUT:-runs/bound_check}; mkdir -p "$OUT"
start=$(date +%s)
for ds in ${DATASETS:-mnist fashion_mnist}; do
  log="$OUT/bound_check_$ds.log"
  { nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } | tee "$log"
  "${PYTHON:-python3}" -m fmq_theory bound-check --dataset "$ds" --device "${DEVICE:-cuda}" \
      --samples "${SAMPLES:-5000}" --trajectory-samples "${TRAJ_SAMPLES:-32}" --pred-samples "${PRED_SAMPLES:-1000}" \
      --gain-samples "${GAIN_SAMPLES:-32}" --draws "${DRAWS:-2}" --solver "${SOLVER:-midpoint}" --steps "${STEPS:-10}" \
      --methods "${METHODS:-equal_mass,lloyd_max,uniform_minmax}" --bits "${BITS:-2:8}" \
      --trajectory-bits "${TRAJ_BITS:-2,8}" --trajectory-methods "${TRAJ_METHODS:-lloyd_max}" \
      --n-boot "${N_BOOT:-100}" --batch-size "${BATCH_SIZE:-1000}" --time-limit "${TIME_LIMIT:-470}" \
      --out "$OUT/bound_check_$ds.csv" --figure "$OUT/bound_check_$ds.png" 2>&1 \
      | tr '\r' '\n' | grep -v "it/s\]$" | tee -a "$log"
  echo "$ds done after $(( $(date +%s) - start )) s" | tee -a "$log"
done
ls -la "$OUT"
