#!/usr/bin/env bash
# One GPU lease, four chained calls on a warm nvidia-h200 (state stays on its disk under runs/):
# the paper's 55.7M network trained and evaluated (scripts/gpu_paper_arch.py -> paper_arch_mnist.csv),
# and the plan against every peer on the MNIST UNet, the FashionMNIST UNet, the FashionMNIST DiT and
# that network (scripts/gpu_plan_eval.py -> plan_<model>.csv, plan_choices_<model>_<budget>.csv).
# Both evaluations run every cell through the sweep engine (fmq_theory.harness.engine.run_cells),
# keep their samples, and add the Inception FIDs once the Inception file is complete (call 4).
#
# What travels (git-ignored, under .carry/; 64 MiB per call with the ~32.7 MB tree):
#   harness_data/  MNIST train+test (11.5 MB)     plan_test/    MNIST + FashionMNIST test splits (6.1 MB)
#   wheels_peers/  site.tgz: hqq, gguf, torchao, bitsandbytes (5.7 MB)
#   wheels_dask/   dask + distributed wheels (5.4 MB; scripts/gpu_pydeps.sh says how they were made)
#   inc_{a,b,c,d}/ the Inception TorchScript file (87.3 MB, SHA-256 below) cut in four parts:
#     head -c 5300000 F > inc_a/part; tail -c +5300001 F | head -c 34000000 > inc_b/part;
#     tail -c +39300001 F | head -c 34000000 > inc_c/part; tail -c +73300001 F > inc_d/part
# Calls (each right after the previous one returns; ~1,650 s of device time in all):
#   run("bash scripts/gpu_lease.sh 1", carry=[".carry/harness_data", ".carry/plan_test", ".carry/wheels_peers",
#                                              ".carry/wheels_dask", ".carry/inc_a"], timeout_s=600)
#   run("bash scripts/gpu_lease.sh 2", carry=[".carry/inc_b"], timeout_s=600)
#   run("bash scripts/gpu_lease.sh 3", carry=[".carry/inc_c"], timeout_s=600)
#   run("bash scripts/gpu_lease.sh 4", carry=[".carry/inc_d"], timeout_s=600)
# Knobs (environment): TRAIN_MIN (7.5), SAMPLES (5000), PAPER_SAMPLES (2000), S1/S2/S3/S4 (seconds of
# work per call: 520, 300, 170, 330).  Call 4 first runs the speed benchmark (benchmarks/gpu.py) of a
# checkout carried as .carry/bench (git archive of its fmq_theory/ and benchmarks/), when there is one.
# Measured in the lease of 2026-12-01 (H200; see the closing note of that day):
#   - training concurrent with the plan evaluation ran at 888 images/s (6.7 epochs in 7.5 min); alone the
#     same network trained at 1,670 images/s before: TRAIN_ALONE=1 TRAIN_MIN=9 reaches 15 epochs;
#   - the plan evaluation of one 1.7M model: sensitivity 7 s, fitting 37 s, peers 75 s, 54 cells in ~215 s
#     (5k samples + 1k pairs each);
#   - the paper's network: the plan's candidate fitting (46 options per tensor, 55.7M weights) did not
#     finish within one call when fitted tensor by tensor (about 6.6 s per 590k weights on one core,
#     ~10 min in all); it now fits on every core (fit_candidates(workers=16)), not yet run there.
set -uo pipefail
STAGE=${1:?stage 1-4}
export PYTHONUNBUFFERED=1 NUMBA_NUM_THREADS=12 OMP_NUM_THREADS=12  # cores left for the training loop
OUT=${OUT:-runs/out}
mkdir -p "$OUT" runs/logs runs/results runs/inception_parts runs/pylib runs/pydeps runs/data_mnist runs/plan_data
INC_SHA=7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34
for p in a b c d; do [ -f .carry/inc_$p/part ] && cp .carry/inc_$p/part runs/inception_parts/$p; done
if [ ! -f runs/inception/default_1.pt ] && [ -f runs/inception_parts/d ] && [ -f runs/inception_parts/a ]; then
  mkdir -p runs/inception && cat runs/inception_parts/{a,b,c,d} > runs/inception/default_1.pt
  echo "$INC_SHA  runs/inception/default_1.pt" | sha256sum -c || rm -f runs/inception/default_1.pt
fi
[ -d .carry/harness_data ] && cp -r .carry/harness_data/. runs/data_mnist/
[ -d .carry/plan_test ] && cp .carry/plan_test/* runs/plan_data/
if [ -f .carry/wheels_peers/site.tgz ] && [ ! -f runs/pylib/.unpacked ]; then
  tar xzf .carry/wheels_peers/site.tgz -C runs/pylib && touch runs/pylib/.unpacked
fi
if [ -d .carry/wheels_dask ] && [ ! -f runs/pydeps/.unpacked ]; then
  python3 -c "import glob, zipfile; [zipfile.ZipFile(w).extractall('runs/pydeps') for w in glob.glob('.carry/wheels_dask/*.whl')]" \
    && touch runs/pydeps/.unpacked
fi
export PYTHONPATH=.:runs/pylib:runs/pydeps
INC=(); [ -f runs/inception/default_1.pt ] && INC=(--inception runs/inception/default_1.pt)
echo "stage $STAGE: inception parts $(ls runs/inception_parts | tr '\n' ' ') -> ${INC[*]:-no inception yet}"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
FILTER="Failed to load\|kernels-community\|_pytree.py\|it/s]\|s/it]\|batch/s]\|s/batch]\|tensor/s]\|s/tensor]"

plan_small() {  # $1 seconds: the MNIST UNet, the FashionMNIST UNet and the DiT
  FMQ_DATA_DIR=runs/plan_data python3 scripts/gpu_plan_eval.py --models mnist,fashion_mnist,dit \
    --samples "${SAMPLES:-5000}" --deadline "$1" --out-dir runs/results --work runs/plan_work "${INC[@]}" 2>&1 \
    | grep --line-buffered -v "$FILTER"
}
plan_paper() {  # $1 seconds: the paper's network, once trained (fewer families: 55.7M weights each)
  [ -f runs/paper_arch_mnist/train.json ] || { echo "plan_paper: no trained network yet"; return; }
  FMQ_DATA_DIR=runs/plan_data python3 scripts/gpu_plan_eval.py --models paper_arch --budgets 2,3,4 \
    --families hqq:g64,gguf,nf4,naive:uniform_minmax,rule:uniform_mse --samples "${PAPER_SAMPLES:-2000}" \
    --pairs 500 --batch-size 1000 --deadline "$1" --out-dir runs/results --work runs/plan_work "${INC[@]}" 2>&1 \
    | grep --line-buffered -v "$FILTER"
}
paper_eval() {  # $1 seconds
  FMQ_DATA_DIR=runs/data_mnist python3 scripts/gpu_paper_arch.py evaluate --fid-samples 10000 --nfe-samples 1000 \
    --samples "${PAPER_SAMPLES:-2000}" --latent-images 5000 --bits 2 3 4 --batch-size 1000 --budget-s "$1" \
    "${INC[@]}" 2>&1 | grep --line-buffered -v "$FILTER"
}

start=$(date +%s)
case "$STAGE" in
  1)
    (FMQ_DATA_DIR=runs/data_mnist python3 scripts/gpu_paper_arch.py train --minutes "${TRAIN_MIN:-7.5}" \
       --batch-size 512 2>&1 | grep --line-buffered -v "$FILTER" > runs/logs/train.log) &
    [ -z "${TRAIN_ALONE:-}" ] && { plan_small "${S1:-520}" > runs/logs/small1.log 2>&1 & }
    wait
    cat runs/logs/train.log; [ -f runs/logs/small1.log ] && cat runs/logs/small1.log ;;
  2|3|4)
    if [ "$STAGE" = 4 ] && [ -d .carry/bench ]; then  # the speed benchmark first, on an idle GPU
      (cd .carry/bench && mkdir -p "$OUT/bench" && PYTHONPATH=.:$PWD/../../runs/pydeps python3 benchmarks/gpu.py --out "$OUT/bench" 2>&1 \
        | grep --line-buffered -v "$FILTER" > ../../runs/logs/bench.log); cat runs/logs/bench.log
    fi
    secs=$(case "$STAGE" in 2) echo "${S2:-300}";; 3) echo "${S3:-170}";; 4) echo "${S4:-330}";; esac)
    paper_eval "$secs" > runs/logs/paper$STAGE.log 2>&1 &
    plan_small "$secs" > runs/logs/small$STAGE.log 2>&1 &
    plan_paper "$secs" > runs/logs/plan_paper$STAGE.log 2>&1 &
    wait
    cat runs/logs/paper$STAGE.log runs/logs/small$STAGE.log runs/logs/plan_paper$STAGE.log ;;
esac
echo "stage $STAGE: $(( $(date +%s) - start )) s"
cp runs/results/plan_*.csv "$OUT"/ 2>/dev/null
cp runs/paper_arch_mnist/paper_arch_mnist.csv runs/paper_arch_mnist/train.json "$OUT"/ 2>/dev/null
tar czf "$OUT/logs.tgz" runs/logs
ls -la "$OUT"
