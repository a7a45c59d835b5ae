# Sourced by the scripts/gpu_*.sh scripts: makes Dask importable on the GPU machine, which has
# python3.12 and torch but neither pip nor dask.  The wheels (dask, distributed and those of their
# dependencies, about 5 MB) travel in .carry/wheels_dask, made on a machine with pip by
#   pip download --python-version 3.12 --only-binary=:all: --implementation cp \
#     --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
#     -d .carry/wheels_dask "dask[distributed]==2026.8.0"
# and are unpacked (a wheel is a zip of its installed files) into runs/pydeps, put on PYTHONPATH.
# Carry it with every call: run(..., carry=[..., ".carry/wheels_dask"]).
if ! python3 -c "import distributed" 2>/dev/null; then
  python3 - <<'PY'
import glob, zipfile
wheels = sorted(glob.glob(".carry/wheels_dask/*.whl"))
if not wheels:
    raise SystemExit("no wheels in .carry/wheels_dask: carry it (see scripts/gpu_pydeps.sh)")
for whl in wheels:
    zipfile.ZipFile(whl).extractall("runs/pydeps")
print(f"unpacked {len(wheels)} wheels into runs/pydeps")
PY
  export PYTHONPATH="${PYTHONPATH:-.}:$PWD/runs/pydeps"
fi
python3 -c "import dask, distributed; print('dask', dask.__version__, 'distributed', distributed.__version__)"
