#!/usr/bin/env bash
# GPU calls: the plan against its peers at equal honest bits per weight on the three committed models
# (the MNIST UNet, the FashionMNIST UNet, the FashionMNIST DiT), budgets 2, 2.5, 3, 4 ->
# $OUT/plan_<model>.csv, with the plan's per-tensor choices in $OUT/choices.tgz and the logs in $OUT/logs.tgz.
# The three models run in turn in one process: each call evaluates
# what is missing until DEADLINE_S seconds into the call, then stops (HARD_S hard), keeps the samples
# under runs/plan_work, and returns the csv files.  A later call on the warm machine resumes.
# What travels (built by scripts/gpu_carry.sh, all under .carry/; 64 MiB a call with the 33.4 MB tree):
#   plan_test/     test splits of MNIST + FashionMNIST and the manifest (6.1 MB)
#   wheels_peers/  site.tgz: hqq, gguf, termcolor, torchao, bitsandbytes, pyyaml (5.6 MB)
#   wheels_dask/   dask + distributed, which the sweep engine imports (5.4 MB)
#   inc1..inc6/    the Inception TorchScript file in six parts of 14.6 MB; they collect in
#                  runs/inception_parts and are joined (SHA-256 checked) once all six are there; until then
#                  only classifier FIDs are computed, and the Inception FIDs are added later from the kept
#                  samples (no re-sampling).
# Calls of the 2026-12-02 lease (issue 12: the plan with both code families, floors 1-3; the committed peer
# rows in .carry/plan_results, plan rows removed, so that only the plans and the missing peers are measured):
#   run("DEADLINE_S=500 HARD_S=570 bash scripts/gpu_plan_eval.sh",
#       carry=[".carry/plan_test", ".carry/wheels_peers", ".carry/wheels_dask", ".carry/inc1", ".carry/plan_results"])
#     (522 s: per UNet sensitivity 6-9 s, fitting 30-49 s, the four plans 3-5 s each, cells ~7 s; every UNet
#     cell and 12 of the DiT's)
#   run("DEADLINE_S=200 HARD_S=260 bash scripts/gpu_plan_eval.sh", carry=[".carry/inc2"])          (120 s: the DiT's rest)
#   run("MODELS=dit DEADLINE_S=1 HARD_S=40 bash scripts/gpu_plan_eval.sh", carry=[".carry/inc3", ".carry/inc4"])
#   run("MODELS=dit DEADLINE_S=150 HARD_S=185 bash scripts/gpu_plan_eval.sh", carry=[".carry/inc5", ".carry/inc6"])
#     (170 s: Inception on 33 of the DiT's 38 rows, ~5 s a row); the UNets' Inception needs a further call
#   An earlier first call ran the three models as three processes side by side: each process's torch and numba
#   thread pools on the same 16 cores made the four plans take ~7 min a model, and no cell started in 561 s.
# Environment: MODELS (mnist,fashion_mnist,dit), SAMPLES (5000), FAMILIES (the peers below), PLAN_FAMILIES
# (optimal,minmax), PLAN_FLOORS (1,2,3), DEADLINE_S (480: no new cell after), HARD_S (560).
set -uo pipefail
export PYTHONPATH=.:runs/pylib:runs/pydeps PYTHONUNBUFFERED=1 FMQ_DATA_DIR=runs/plan_data NUMBA_NUM_THREADS=2
export NUMBA_THREADING_LAYER=omp  # numba's parallel kernels are called from several threads (fit_candidates)
start=$(date +%s)
OUT=${OUT:-runs/out}; mkdir -p "$OUT" runs/results runs/inception_parts runs/pylib runs/pydeps runs/plan_data runs/logs
INC_SHA=7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34
[ -d .carry/plan_test ] && cp .carry/plan_test/* runs/plan_data/
if [ -f .carry/wheels_peers/site.tgz ] && [ ! -f runs/pylib/.unpacked ]; then
  tar xzf .carry/wheels_peers/site.tgz -C runs/pylib && touch runs/pylib/.unpacked
fi
if [ -d .carry/wheels_dask ] && [ ! -f runs/pydeps/.unpacked ]; then
  python3 -c "import glob, zipfile; [zipfile.ZipFile(w).extractall('runs/pydeps') for w in glob.glob('.carry/wheels_dask/*.whl')]" \
    && touch runs/pydeps/.unpacked
fi
for p in 1 2 3 4 5 6; do [ -f .carry/inc$p/part ] && cp .carry/inc$p/part runs/inception_parts/$p; done
if [ ! -f runs/inception/default_1.pt ] && [ "$(ls runs/inception_parts | wc -l)" = 6 ]; then
  mkdir -p runs/inception && cat runs/inception_parts/{1,2,3,4,5,6} > runs/inception/default_1.pt
  echo "$INC_SHA  runs/inception/default_1.pt" | sha256sum -c || rm -f runs/inception/default_1.pt
fi
INC=(); [ -f runs/inception/default_1.pt ] && INC=(--inception runs/inception/default_1.pt)
echo "inception parts: $(ls runs/inception_parts | tr '\n' ' ') -> ${INC[*]:-no inception yet}"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
FILTER="Failed to load\|kernels-community\|_pytree.py\|it/s]\|s/it]\|tensor/s]\|s/tensor]"
PEERS=hqq:g64,hqq:g128,naive:uniform_minmax,rule:uniform_mse,rule:uniform_minmax,rule:lloyd_max,rule:equal_mass,gguf,nf4,int4
# rows measured before (carried in .carry/plan_results, e.g. the committed peers) are done rows: not measured again
[ -d .carry/plan_results ] && cp -n .carry/plan_results/*.csv runs/results/ 2>/dev/null
used=$(( $(date +%s) - start ))
# one process, the models in turn: three side by side on the 16 cores (each with torch's and numba's
# thread pools) spent 7 minutes on the plans alone in the call of 2026-12-02 and reached no cell
timeout -k 5 $(( ${HARD_S:-560} - used )) python3 scripts/gpu_plan_eval.py --models "${MODELS:-mnist,fashion_mnist,dit}" \
  --samples "${SAMPLES:-5000}" --families "${FAMILIES:-$PEERS}" --plan-families "${PLAN_FAMILIES:-optimal,minmax}" \
  --plan-bit-floors "${PLAN_FLOORS:-1,2,3}" --n-boot-inception 10 --deadline $(( ${DEADLINE_S:-480} - used )) \
  --prepare-reserve 120 --out-dir runs/results --work runs/plan_work "${INC[@]}" 2>&1 \
  | grep --line-buffered -v "$FILTER" | tr '\r' '\n' | grep --line-buffered -v "it/s]\|s/it]" > runs/logs/plan.log
grep -v "^$" runs/logs/plan.log | tail -n 60
echo "call: $(( $(date +%s) - start )) s"
cp runs/results/plan_{mnist,fashion_mnist,dit}.csv "$OUT"/ 2>/dev/null  # at most 8 files come back
(cd runs/results && ls plan_choices_*.csv >/dev/null 2>&1 && tar czf "$OUT/choices.tgz" plan_choices_*.csv)
tar czf "$OUT/logs.tgz" runs/logs
ls -la "$OUT"
