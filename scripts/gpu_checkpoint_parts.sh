#!/usr/bin/env bash
# The paper's 55.7M network between GPU machines, in parts that fit the device tool's limits: 8 files of
# 16 MiB come back per call, 64 MiB (tree included) travel per call. What travels is model.safetensors, the
# network with its EMA averages in place (223 MB for 55.7M weights: 14 parts), checked against train.json's
# model_sha256; the run's ema.safetensors holds the live weights too (445,415,648 bytes, 28 parts: on 2026-12-04
# the 14 parts sent of it were half of it, and the network was not kept). Runs trained before 2026-12-04 have no
# model.safetensors.
# Twice (2026-12-03 and the period before) the trained network was lost with the machine before the plan
# measured a row; with its parts kept here, a later call or a later lease starts from them instead of training,
# but only within one session: runs/saved and .carry are git-ignored, and a new session's checkout (2026-12-05)
# held neither kept network.
#
#   on the GPU machine, after training (four calls: 14 parts of 16,000,000 bytes, at most 4 per call, since
#   a call brings back 64 MiB together; on 2026-12-03 parts 5-7 of a call of 7 were left out as over it):
#     bash scripts/gpu_checkpoint_parts.sh send runs/paper_arch_mnist "$OUT" 1 4   # then 5 8, 9 12, 13 14
#   here, from the calls' files_at folders (the parts are checked against train.json's SHA-256 once all are in):
#     bash scripts/gpu_checkpoint_parts.sh keep /work/.device/N runs/saved/paper_arch_mnist
#     bash scripts/gpu_checkpoint_parts.sh carry runs/saved/paper_arch_mnist .carry/pa_mnist [BYTES]
#       -> .carry/pa_mnist1..pa_mnistN (gpu_lease.sh joins .carry/pa_$DATASET*), pieces of at most BYTES
#          (default 50,000,000: one per call beside a tree of at most
#          12 MB, i.e. with the model checkpoints moved out; 5 calls for 223 MB. The device tool's count of the tree
#          is more than its bytes (the refusal below fits a count in 4 KiB blocks): on 2026-12-06 a 56,004,865-byte piece beside a tree of 10.96 MB (12.29 MB in
#          blocks) was refused as over 64 MiB, and passed once the tree was 7.6 MB in blocks; 37,200,000 makes six pieces
#          with ~20 MB beside each for data or an Inception part, as gpu_lease.sh did on 2026-12-04)
#   on the GPU machine, one carried folder per call (gpu_lease.sh does this for every .carry/pa_$DATASET*/ it finds):
#     bash scripts/gpu_checkpoint_parts.sh join .carry/pa_mnistK runs/paper_arch_mnist
set -euo pipefail
PART=16000000  # bytes of a returned part (under 16 MiB)
FILE=model.safetensors  # the network with its averages in place (fmq_theory.harness.checkpoints.load_training_run)
cmd=${1:?send, keep, carry or join}
recorded_sha256() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['model_sha256'])" "$1"; }
case "$cmd" in
  send)  # RUN OUT FIRST LAST: parts FIRST..LAST of RUN/$FILE into OUT, with train.json
    run=$2 out=$3 first=$4 last=$5
    size=$(stat -c %s "$run/$FILE")
    for ((i = first; i <= last && (i - 1) * PART < size; i++)); do
      dd if="$run/$FILE" of="$out/model.part$(printf %02d "$i")" bs=$PART skip=$(( i - 1 )) count=1 status=none
    done
    echo "parts $first..$(( i - 1 )) of $(( (size + PART - 1) / PART )) ($size bytes)"
    cp "$run/train.json" "$out/train.json"
    ls -la "$out" ;;
  keep)  # FILES_AT SAVED: a call's returned parts added to SAVED; the whole file checked once complete
    src=$2 saved=$3
    mkdir -p "$saved"
    cp "$src"/model.part* "$src/train.json" "$saved/"
    want=$(recorded_sha256 "$saved/train.json")
    if cat "$saved"/model.part* | sha256sum | grep -q "^$want "; then echo "$saved: complete, SHA-256 $want"
    else echo "$saved: $(ls "$saved"/model.part* | wc -l) parts, not complete yet"; fi ;;
  carry)  # SAVED PREFIX [BYTES]: the checked file cut in carried folders PREFIX1..PREFIXn of at most BYTES each
    saved=$2 prefix=$3 most=${4:-50000000}
    want=$(recorded_sha256 "$saved/train.json")
    cat "$saved"/model.part* > "$saved/$FILE"
    sha256sum "$saved/$FILE" | grep -q "^$want " || { echo "$saved: parts missing or corrupt" >&2; exit 1; }
    n=$(( ($(stat -c %s "$saved/$FILE") + most - 1) / most ))
    for ((k = 1; k <= n; k++)); do
      mkdir -p "$prefix$k"
      dd if="$saved/$FILE" of="$prefix$k/model.piece$k" bs=$most skip=$(( k - 1 )) count=1 status=none
      cp "$saved/train.json" "$prefix$k/" && echo "$n" > "$prefix$k/pieces"
    done
    du -sh "$prefix"* ;;
  join)  # CARRIED RUN: a carried piece kept on the machine's disk; RUN/$FILE made once all are in
    carried=$2 run=$3
    mkdir -p "$run.parts" "$run"
    cp "$carried"/model.piece* "$carried/train.json" "$carried/pieces" "$run.parts/"
    want=$(recorded_sha256 "$run.parts/train.json") n=$(cat "$run.parts/pieces")
    if [ "$(ls "$run.parts"/model.piece* | wc -l)" = "$n" ]; then
      for ((k = 1; k <= n; k++)); do cat "$run.parts/model.piece$k"; done > "$run/$FILE.tmp"
      if sha256sum "$run/$FILE.tmp" | grep -q "^$want "; then
        mv "$run/$FILE.tmp" "$run/$FILE" && cp "$run.parts/train.json" "$run/train.json"
        echo "$run/$FILE: joined, SHA-256 $want"
      else rm -f "$run/$FILE.tmp"; echo "$run: the joined pieces do not match $want" >&2; exit 1; fi
    else echo "$run: $(ls "$run.parts"/model.piece* | wc -l) of $n pieces"; fi ;;
  *) echo "unknown command $cmd: send, keep, carry or join" >&2; exit 2 ;;
esac
