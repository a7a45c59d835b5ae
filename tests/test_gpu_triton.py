"""The Triton kernels of ``benchmarks/gpu_triton.py`` against the CPU quantizers, run on the
CPU by Triton's interpreter (``TRITON_INTERPRET=1``; skipped where Triton is not installed).

Exact equality (tolerance 0, compared as bit patterns) of codes, levels and dequantized
weights with ``quantize(..., granularity="channel")``: tie-free rows, rows of a few tied
values with ``-0.0``, ``+0.0`` and subnormals among them, row lengths that are not a multiple
of ``2**bits`` nor a power of two.  Rows are tiny: the interpreter runs a program in numpy.
CI has neither Triton nor a GPU, so there the whole module is skipped; run it where Triton is
installed (any version whose interpreter runs on the installed torch).
"""

import functools
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

os.environ["TRITON_INTERPRET"] = "1"  # read when the kernels are decorated, at import
pytest.importorskip("triton", reason="Triton not installed (CI): the kernels run under its interpreter")
torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_triton  # noqa: E402

from fmq_theory import quantize  # noqa: E402
from fmq_theory.quantizers.torch_rows import lloyd_max_rows  # noqa: E402

# the interpreter computes the masked-off lanes too (inf - inf in padding and empty cells)
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
TIED = np.array([-1.5, -0.0, 0.0, 0.25, 2.0, 3e-39, -3e-39], dtype=np.float32)


def rows_of(kind, *, rows, n, seed):
    rng = np.random.default_rng(seed)
    if kind == "tie-free":
        return rng.standard_normal((rows, n)).astype(np.float32)
    return rng.choice(TIED, size=(rows, n))


def bit_equal(a, b):
    return a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("kind, rows, n, bits, seed", [
    ("tie-free", 3, 133, 4, 0), ("tie-free", 2, 64, 2, 1), ("tied", 3, 150, 3, 2), ("tied", 2, 37, 1, 3),
    ("tied", 1, 200, 4, 4),
])
def test_equal_mass_kernels_equal_cpu_quantizer(kind, rows, n, bits, seed):
    """Every path (the sorting kernel, the 32-pass bisection, the radix path) gives the CPU's
    codes, levels and dequantized weights bit for bit, ties put on one level as the CPU does."""
    w = rows_of(kind, rows=rows, n=n, seed=seed)
    cpu = quantize(w, method="equal_mass", bits=bits, granularity="channel")
    for path in gpu_triton.EQUAL_MASS_PATHS:
        codes, out, levels = gpu_triton.equal_mass_rows_triton(torch.from_numpy(w), bits=bits, path=path)
        assert bit_equal(codes.numpy(), cpu.codes), path
        assert bit_equal(levels.numpy(), cpu.levels.astype(np.float32)), path
        assert bit_equal(out.numpy(), cpu.dequantize()), path


def radix_rows(kind, *, rows, n, seed):
    """Rows for the radix path's property test, one ``kind`` at a time: tie-free; rounded to
    bfloat16 (ties within the histogram's bins, as in weights stored in bfloat16); a few tied
    values (signed zeros, subnormals); a coarse grid (runs of ties across bins); few distinct
    values; constant; one outlier per row (the rest in a few bins)."""
    rng = np.random.default_rng(seed)
    if kind == "tie-free":
        w = rng.standard_normal((rows, n)) * rng.uniform(1e-3, 1e3)
    elif kind == "bf16":
        w = torch.from_numpy(rng.standard_normal((rows, n)).astype(np.float32)).to(torch.bfloat16).float().numpy()
    elif kind == "tied":
        w = rng.choice(TIED, size=(rows, n))
    elif kind == "grid":
        w = np.round(rng.standard_normal((rows, n)) * 4) / 4
    elif kind == "few":
        w = rng.choice(rng.standard_normal(int(rng.integers(1, 20))), size=(rows, n))
    elif kind == "constant":
        w = np.full((rows, n), rng.standard_normal())
    else:  # "outlier"
        w = rng.standard_normal((rows, n))
        w[np.arange(rows), rng.integers(0, n, rows)] = 1e6
    return w.astype(np.float32)


@settings(max_examples=max(1, settings().max_examples // 4))  # the interpreter: ~0.1-0.5 s a row
@given(kind=st.sampled_from(["tie-free", "bf16", "tied", "grid", "few", "constant", "outlier"]), rows=st.integers(1, 6),
       n=st.integers(16, 300), bits=st.integers(1, 4), tile=st.sampled_from([16, 64, 1024]),
       seed=st.integers(0, 2**32 - 1))
@example(kind="tie-free", rows=3, n=300, bits=4, tile=64, seed=0).via("route 0, several tiles")
@example(kind="outlier", rows=2, n=200, bits=4, tile=1024, seed=1).via("route 1: candidates beyond capacity")
@example(kind="tied", rows=4, n=40, bits=2, tile=16, seed=0).via("routes 0 and 2")
@example(kind="bf16", rows=2, n=300, bits=4, tile=64, seed=5).via("routes 0 and 2, several tiles")
@example(kind="constant", rows=1, n=16, bits=4, tile=16, seed=4).via("every weight in bin 0, n = 2**bits")
def test_radix_path_equals_cpu_quantizer_and_sort_kernel(kind, rows, n, bits, tile, seed):
    """The radix path's codes, levels and dequantized weights equal the CPU quantizer's and the
    sorting kernel's bit for bit, whatever route each row takes and however it is tiled."""
    w = radix_rows(kind, rows=rows, n=n, seed=seed)
    cpu = quantize(w, method="equal_mass", bits=bits, granularity="channel")
    codes, out, levels, route = gpu_triton.equal_mass_radix_rows_triton(torch.from_numpy(w), bits=bits, tile=tile)
    assert bit_equal(codes.numpy(), cpu.codes)
    assert bit_equal(levels.numpy(), cpu.levels.astype(np.float32))
    assert bit_equal(out.numpy(), cpu.dequantize())
    assert set(route.tolist()) <= {0, 1, 2}
    for ours, theirs in zip((codes, out, levels),
                            gpu_triton.equal_mass_rows_triton(torch.from_numpy(w), bits=bits, path="sort")):
        assert bit_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("row, bits, candidates, route", [
    (np.arange(64) - 20.0, 2, None, 0),  # thresholds and first values among the candidates
    (np.arange(64) - 20.0, 2, 2, 1),  # more candidates (6) than lanes: sorted whole
    ([0, 0, 0, 0, 0, 0, 1, 2], 1, None, 2),  # t_0 = 0 ties with the rest of bin 0: cell 1's first value, 1,
    # is the smallest of bin 128, not held
    ([0, 0, 0, 0, 1, 1, 1, 1], 1, None, 0),  # t_0 last of bin 0 by rank: bin 128, the next, held too
])
def test_radix_routes(row, bits, candidates, route):
    """Each route of the radix path is taken where it should be, and gives the CPU's result."""
    w = np.asarray([row], dtype=np.float32)
    cpu = quantize(w, method="equal_mass", bits=bits, granularity="channel")
    codes, out, levels, taken = gpu_triton.equal_mass_radix_rows_triton(torch.from_numpy(w), bits=bits,
                                                                        candidates=candidates)
    assert taken.tolist() == [route]
    assert bit_equal(codes.numpy(), cpu.codes)
    assert bit_equal(levels.numpy(), cpu.levels.astype(np.float32))
    assert bit_equal(out.numpy(), cpu.dequantize())


def test_equal_mass_kernel_takes_rows_it_can_hold():
    for path in gpu_triton.EQUAL_MASS_PATHS:
        with pytest.raises(ValueError, match="n=8 "):
            gpu_triton.equal_mass_rows_triton(torch.zeros(2, 8), bits=4, path=path)


def test_equal_mass_path_is_checked():
    with pytest.raises(ValueError, match="path='select'"):
        gpu_triton.equal_mass_rows_triton(torch.zeros(2, 64), bits=2, path="select")


@pytest.mark.parametrize("option, match", [(dict(tile=24), "tile=24 "), (dict(candidates=3), "candidates=3 "),
                                           (dict(candidates=128), "candidates=128 ")])
def test_radix_launch_configuration_is_checked(option, match):
    with pytest.raises(ValueError, match=match):  # rows of 64: at most 64 candidate lanes
        gpu_triton.equal_mass_radix_rows_triton(torch.zeros(2, 64), bits=2, **option)


@pytest.mark.parametrize("rows_per_program, num_warps", [(1, None), (2, 4), (4, 8)])
def test_uniform_launch_configurations_equal_cpu_quantizer(rows_per_program, num_warps):
    """Every launch configuration gives the CPU's codes and dequantized weights bit for bit:
    a row count not divisible by the rows per program, a constant row (scale 0), signed zeros,
    and a row whose quotients hit exact halves (round half to even: 0.5 -> 0, 1.5 -> 2)."""
    w = np.concatenate([rows_of("tie-free", rows=3, n=70, seed=5), rows_of("tied", rows=1, n=70, seed=6),
                        np.full((1, 70), 0.75, np.float32),
                        np.resize(np.array([0.0, 0.5, 1.0, 1.5, 3.0], np.float32), (1, 70))])
    for bits in (2, 4):
        cpu = quantize(w, method="uniform_minmax", bits=bits, granularity="channel")
        codes, out, _, _ = gpu_triton.uniform_minmax_rows_triton(
            torch.from_numpy(w), bits=bits, rows_per_program=rows_per_program, num_warps=num_warps)
        assert bit_equal(codes.numpy(), cpu.codes)
        assert bit_equal(out.numpy(), cpu.dequantize())


@pytest.mark.parametrize("flat, tile, bits, n, seed", [
    (True, 16, 4, 133, 7), (True, 32, 5, 90, 8), (True, 256, 3, 257, 9), (False, 128, 4, 150, 10),
])
def test_lloyd_kernel_schedules_equal_cpu_quantizer(flat, tile, bits, n, seed):
    """Both schedules of the DP kernel give the CPU ``lloyd_max``'s codes and levels bit for
    bit: a tie-free row and rows of a coarse grid (many equal values, so many forbidden
    splits).  Tiles of 16-32 lanes on rows of ~100 make the flattened schedule's windows span
    several steps and several windows share one step."""
    rng = np.random.default_rng(seed)
    w = np.concatenate([rng.standard_normal((1, n)), np.round(rng.standard_normal((2, n)) * 6) / 6]).astype(np.float32)
    cpu = quantize(w, method="lloyd_max", bits=bits, granularity="channel")
    codes, levels = lloyd_max_rows(torch.from_numpy(w), bits=bits, layers=functools.partial(
        gpu_triton.triton_layers, flat=flat, tile=tile))
    assert bit_equal(codes.numpy(), cpu.codes)
    assert bit_equal(levels.numpy(), cpu.levels.astype(np.float32))


def test_lloyd_kernel_rejects_a_tile_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="tile=24 "):
        gpu_triton.triton_layers(*(torch.zeros(1, 9, dtype=torch.float64),) * 2, torch.zeros(1, 9, dtype=torch.bool),
                                 torch.zeros(1, 9, dtype=torch.float64), 4, tile=24)
