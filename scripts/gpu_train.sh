#!/usr/bin/env bash
# GPU call 1: train the MNIST and FashionMNIST flow-matching UNets (EMA, safetensors + card).
# Run on the device machine from the repo root with the prepared arrays carried in .carry/harness_data:
#   mkdir -p .carry/harness_data && cp data/{mnist,fashion_mnist}.npz data/manifest.json .carry/harness_data/
#   run(command="bash scripts/gpu_train.sh", carry=[".carry/harness_data", ".carry/wheels_dask"])
# Writes $OUT/checkpoints.tgz (both checkpoint folders), $OUT/train.log.
set -euo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1 FMQ_DATA_DIR=.carry/harness_data
source scripts/gpu_pydeps.sh  # Dask from the carried .carry/wheels_dask (the fmq CLI imports it)
OUT=${OUT:-runs/out}; mkdir -p "$OUT" runs
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 - <<'PY'
import importlib
for m in ("torch", "numpy", "scipy", "safetensors", "torchdiffeq", "tqdm", "numba", "ot", "sklearn", "sympy", "matplotlib"):
    try:
        mod = importlib.import_module(m); print(m, getattr(mod, "__version__", "?"))
    except Exception as e:
        print(m, "MISSING", type(e).__name__)
PY
for ds in mnist fashion_mnist; do
  python3 -m fmq_theory train --dataset "$ds" --device cuda --steps ${STEPS:-40000} \
      --batch-size 512 --lr 8e-4 --warmup 500 --ema-decay 0.9995 --seed 0 \
      --time-limit ${TIME_LIMIT:-220} --out "runs/checkpoints/$ds" 2>&1 | tr '\r' '\n' | grep -v "^train .*it/s\]$" | tail -n 5 | tee -a "$OUT/train.log"
done
python3 scripts/probe_sampling.py runs/checkpoints/mnist 10000 2>&1 | tee -a "$OUT/train.log"
tar czf "$OUT/checkpoints.tgz" -C runs checkpoints
ls -la "$OUT"
