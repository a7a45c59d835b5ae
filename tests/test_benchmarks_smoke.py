"""``benchmarks/run.py --smoke`` still runs and writes well-formed JSON (no speed assertion:
smoke sizes are tiny and the numbers mean nothing; ``make bench`` is the real run)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "equal_mass_channel_vs_reference", "equal_mass_channel_vs_sort", "equal_mass_tensor_vs_sort",
    "lloyd_max_vs_kmeans", "uniform_vs_numpy", "w2_vs_pot", "rho_tables",
    "memory_equal_mass", "memory_uniform_minmax", "memory_lloyd_max",
    "lloyd_max_tensor_b2_vs_ckmeans", "lloyd_max_tensor_b4_vs_ckmeans", "lloyd_max_tensor_b6_vs_ckmeans",
    "lloyd_max_channel_vs_ckmeans", "weighted_channel_vs_ckmeans", "pwlq_channel_vs_uniform_mse",
    "plan_fit_workers_vs_one",
}
FIELDS = {"case": str, "ours_s": float, "peer": str, "peer_s": float, "ratio": float, "target": str, "met": bool,
          "note": str}


def test_smoke_run_writes_every_case(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("ot")
    pytest.importorskip("mpmath")
    pytest.importorskip("ckmeans_1d_dp")
    out = tmp_path / "latest.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--output", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert {row["case"] for row in rows} == CASES
    assert len(rows) == len(CASES)
    for row in rows:
        for key, kind in FIELDS.items():
            assert isinstance(row[key], kind), (row["case"], key, row[key])
        for key in ("ours_s", "peer_s", "ratio"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["case"], key, row[key])
        assert row["ratio"] == pytest.approx(row["ours_s"] / row["peer_s"])
    assert all(row["case"] in proc.stdout for row in rows)  # the printed table has every case
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_gpu_script_dry_run_on_cpu(tmp_path):
    """``benchmarks/gpu.py --device cpu`` runs its torch paths on tiny sizes and finds them
    equal to the CPU quantizers (the Triton kernels need a GPU: reported, not run), and its
    sensitivity stage times both probe precisions and the vectorized passes, whose estimates
    agree with the first."""
    pytest.importorskip("torch")
    # one thread: beside the book's build on CI's 2 cores, torch's thread team spinning against it made the
    # run ~7x slower (47 s alone, over 300 s under that load); single-threaded it takes ~53 s alone
    single = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    # tests/test_gpu_triton.py sets TRITON_INTERPRET=1 for the whole process (where Triton is installed):
    # inherited, it would run every Triton kernel here under the interpreter, past the timeout
    single.pop("TRITON_INTERPRET", None)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--rows", "16",
                           "--cols", "128", "--lloyd-rows", "4", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, env=single)
    assert proc.returncode == 0, proc.stderr[-3000:]
    methods = json.loads((tmp_path / "gpu.json").read_text())["methods"]
    by_path = {(m["method"], m["path"]): m for m in methods}
    assert by_path[("equal_mass", "torch (sort + cumsum + scatter)")]["max_abs_diff_vs_cpu"] == 0.0
    assert by_path[("uniform_minmax", "torch eager")]["equal_to_cpu"] is True
    lloyd = by_path[("lloyd_max", "torch level-synchronous D&C DP")]
    assert lloyd["per_length"] and all(r["codes_equal_cpu_fraction"] == 1.0 for r in lloyd["per_length"])
    assert "EXTRAPOLATED" in proc.stdout
    sens = next(m for m in methods if m["method"] == "sensitivity")  # a width-8 paper network on the CPU
    assert math.isfinite(sens["sampling_s"]) and sens["sampling_s"] > 0
    assert sens["device_sums_bytes"] == 8 * sens["parameters"]  # one replicate's float64 sums, not 8's
    passes = sens["passes"]
    assert (passes[0]["precision"], passes[0]["batches_per_pass"]) == ("float32", 1)  # the reference
    assert {p["precision"] for p in passes} == {"float32", "bfloat16 autocast"}
    assert any(p["batches_per_pass"] > 1 for p in passes)
    for p in passes:
        assert "error" not in p, p
        assert math.isfinite(p["seconds"]) and p["seconds"] > 0 and p["share_of_sampling"] > 0
        assert p["estimated_peak_bytes"] > 8 * sens["parameters"]  # the sums and more
    for p in passes[1:]:  # bfloat16 within 5% of float32; the vectorized float32 passes to float32 rounding
        bound = 0.05 if p["precision"] != "float32" else 1e-4
        assert p["tensors"] > 0 and p["median_relative_difference"] < bound, p
    assert "sensitivity pass" in proc.stdout


def test_gpu_script_only_quantizers_with_triton_interpreter(tmp_path):
    """``benchmarks/gpu.py --only equal_mass,uniform_minmax`` (the lead's short GPU run) on the
    CPU, its Triton kernels run by Triton's interpreter: no lloyd_max stage; every equal_mass
    path (the radix path at each launch configuration) and every uniform_minmax launch
    configuration equal to the CPU quantizer (the sort-free paths also equal to the sorting
    kernel on every row, each radix row counted in one route); one fastest configuration of
    each grid; every row with both times and their ratios."""
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--rows", "4",
                           "--cols", "48", "--bits", "2", "--only", "equal_mass,uniform_minmax", "--repeats", "1",
                           "--uniform-rows-per-program", "1,4", "--uniform-warps", "4", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=dict(os.environ, TRITON_INTERPRET="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["stages"] == ["equal_mass", "uniform_minmax"]
    methods = result["methods"]
    assert {m["method"] for m in methods} == {"equal_mass", "uniform_minmax"}
    for m in methods:
        for key in ("seconds", "seconds_back_to_back", "ratio_to_floor", "ratio_to_floor_back_to_back"):
            assert math.isfinite(m[key]) and m[key] > 0, (m["path"], key)
    by_path = {m["path"]: m for m in methods}
    torch_path = by_path["torch (sort + cumsum + scatter)"]
    assert torch_path["max_abs_diff_vs_cpu"] == 0.0 and torch_path["equal_to_unchunked"] is True
    assert by_path["triton fused (row sorted in registers)"]["equal_to_cpu"] is True
    select = by_path["triton fused sort-free (K-1 order statistics by bitwise binary search)"]
    assert select["equal_to_cpu"] is True and select["equal_to_sort_kernel"] is True
    radix = [m for m in methods if "rows_by_route" in m]
    assert len(radix) >= 2 and len({(m["tile"], m["num_warps"]) for m in radix}) == len(radix)
    for m in radix:
        assert m["equal_to_cpu"] is True and m["equal_to_sort_kernel"] is True, m["path"]
        assert sum(m["rows_by_route"].values()) == 4, m["rows_by_route"]
    assert sum(m["best_of_grid"] for m in radix) == 1
    assert "equal_mass Triton radix: fastest exact configuration" in proc.stdout
    grid = [m for m in methods if "rows_per_program" in m]
    assert {(m["rows_per_program"], m["num_warps"]) for m in grid} == {(1, 4), (4, 4)}
    assert all(m["equal_to_cpu"] is True for m in grid)
    assert sum(m["best_of_grid"] for m in grid) == 1
    assert "fastest exact configuration" in proc.stdout
    assert "EXTRAPOLATED" not in proc.stdout


def test_gpu_script_rejects_unknown_stage(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--only", "equal_mass,lloyd",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "--only 'equal_mass,lloyd'" in proc.stderr
