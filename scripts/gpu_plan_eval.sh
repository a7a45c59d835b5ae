#!/usr/bin/env bash
# GPU calls: the plan against every peer at equal honest bits per weight, on the MNIST UNet, the
# FashionMNIST UNet and the FashionMNIST DiT, budgets 2, 2.5, 3, 4 -> $OUT/plan_<model>.csv.
# Resumable on a warm machine: every call evaluates what is missing until BUDGET_S seconds
# (default 420) have passed, keeps the samples under runs/plan_work, and returns the csv files.
# What travels (make once with the commands in /tmp/h/status/12b.txt, all under .carry/):
#   plan_test/         test splits of MNIST + FashionMNIST and the manifest (6 MB)
#   wheels_peers/      site.tgz: hqq, gguf, pyyaml(cp312), termcolor, torchao, bitsandbytes
#                      (only its cpu + cuda130 libraries) unpacked (5.5 MB)
#   plan_inc{1,2,3}/   the Inception TorchScript file in three parts (29 MB each), one per call;
#                      they collect in runs/inception_parts and are joined (SHA-256 checked) once
#                      all three are there; until then only classifier FIDs are computed and the
#                      Inception FIDs are added later from the kept samples (no re-sampling).
# The DiT comes from runs/checkpoints/dit_fashion_mnist (the training call on the same warm
# machine) or else from the committed checkpoints/dit_fashion_mnist.
# Calls (each right after the previous one returns):
#   run("bash scripts/gpu_plan_eval.sh", carry=[".carry/plan_test", ".carry/wheels_peers"])
#   run("bash scripts/gpu_plan_eval.sh", carry=[".carry/plan_inc1"])
#   run("bash scripts/gpu_plan_eval.sh", carry=[".carry/plan_inc2"])
#   run("bash scripts/gpu_plan_eval.sh", carry=[".carry/plan_inc3"])   # then again until no cell is left
# Environment: MODELS, SAMPLES (10000), FAMILIES (all), PLAN (--with-plan | --no-with-plan), BUDGET_S.
set -uo pipefail
export PYTHONPATH=.:runs/pylib PYTHONUNBUFFERED=1 FMQ_DATA_DIR=runs/plan_data
OUT=${OUT:-runs/out}; mkdir -p "$OUT" runs/results runs/inception_parts runs/pylib runs/plan_data
INC_SHA=7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34
[ -d .carry/plan_test ] && cp .carry/plan_test/* runs/plan_data/
if [ -f .carry/wheels_peers/site.tgz ] && [ ! -f runs/pylib/.unpacked ]; then
  tar xzf .carry/wheels_peers/site.tgz -C runs/pylib && touch runs/pylib/.unpacked
fi
for i in 1 2 3; do [ -f .carry/plan_inc$i/part ] && cp .carry/plan_inc$i/part runs/inception_parts/part$i; done
[ -d .carry/plan_results ] && cp -n .carry/plan_results/*.csv runs/results/ 2>/dev/null
if [ ! -f runs/inception/default_1.pt ] && [ -f runs/inception_parts/part1 ] && [ -f runs/inception_parts/part2 ] && [ -f runs/inception_parts/part3 ]; then
  mkdir -p runs/inception && cat runs/inception_parts/part{1,2,3} > runs/inception/default_1.pt
  echo "$INC_SHA  runs/inception/default_1.pt" | sha256sum -c || rm -f runs/inception/default_1.pt
fi
INC_ARGS=(); [ -f runs/inception/default_1.pt ] && INC_ARGS=(--inception runs/inception/default_1.pt)
DIT=checkpoints/dit_fashion_mnist
[ -f runs/checkpoints/dit_fashion_mnist/model.safetensors ] && DIT=runs/checkpoints/dit_fashion_mnist
echo "inception parts: $(ls runs/inception_parts | tr '\n' ' ') args: ${INC_ARGS[*]:-none}; dit: $DIT"
python3 scripts/gpu_plan_eval.py --models ${MODELS:-mnist,fashion_mnist,dit} --checkpoint dit=$DIT \
  --samples ${SAMPLES:-10000} --families ${FAMILIES:-all} ${PLAN:---with-plan} --deadline ${BUDGET_S:-420} \
  --out-dir runs/results --work runs/plan_work "${INC_ARGS[@]}" 2>&1 | grep -v "Failed to load\|kernels-community\|_pytree.py"
cp runs/results/plan_*.csv "$OUT"/ 2>/dev/null
ls -la "$OUT"
