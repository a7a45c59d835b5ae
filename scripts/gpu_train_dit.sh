#!/usr/bin/env bash
# GPU call: train the small DiT velocity field (about 2.9M parameters, patch 2, hidden 160,
# depth 6, adaLN-zero) on FashionMNIST for at most TIME_LIMIT seconds (default 210), reload
# it through harness/checkpoints.py and sample a 5k classifier-FID sanity check.
# Needs the full FashionMNIST arrays (train + test), carried in .carry/fmnist_data:
#   mkdir -p .carry/fmnist_data && cp data/fashion_mnist.npz data/manifest.json .carry/fmnist_data/
#   run(command="bash scripts/gpu_train_dit.sh", carry=[".carry/fmnist_data"], timeout_s=420)
# Returns $OUT/dit_fashion_mnist/{model.safetensors, model_card.json, MODEL_CARD.md} (about 11.5 MB)
# and $OUT/train_dit.log; commit the folder as checkpoints/dit_fashion_mnist/.
set -euo pipefail
export PYTHONPATH=. PYTHONUNBUFFERED=1 FMQ_DATA_DIR=.carry/fmnist_data
OUT=${OUT:-runs/out}; mkdir -p "$OUT" runs/checkpoints
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 scripts/gpu_train_dit.py --out runs/checkpoints/dit_fashion_mnist \
    --time-limit ${TIME_LIMIT:-210} --steps ${STEPS:-8000} 2>&1 | tee "$OUT/train_dit.log"
cp -r runs/checkpoints/dit_fashion_mnist "$OUT/"
ls -la "$OUT" "$OUT/dit_fashion_mnist"
