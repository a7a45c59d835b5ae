"""The Triton kernels of ``benchmarks/gpu_triton.py`` against the CPU quantizers, run on the
CPU by Triton's interpreter (``TRITON_INTERPRET=1``; skipped where Triton is not installed).

Exact equality (tolerance 0, compared as bit patterns) of codes, levels and dequantized
weights with ``quantize(..., granularity="channel")``: tie-free rows, rows of a few tied
values with ``-0.0``, ``+0.0`` and subnormals among them, row lengths that are not a multiple
of ``2**bits`` nor a power of two.  Rows are tiny: the interpreter runs a program in numpy.
"""

import functools
import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ["TRITON_INTERPRET"] = "1"  # read when the kernels are decorated, at import
pytest.importorskip("triton")
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
    """The sort-free kernel (``select=True``) and the sorting one give the CPU's codes,
    levels and dequantized weights bit for bit, ties put on one level as the CPU does."""
    w = rows_of(kind, rows=rows, n=n, seed=seed)
    cpu = quantize(w, method="equal_mass", bits=bits, granularity="channel")
    for select in (True, False):
        codes, out, levels = gpu_triton.equal_mass_rows_triton(torch.from_numpy(w), bits=bits, select=select)
        assert bit_equal(codes.numpy(), cpu.codes), select
        assert bit_equal(levels.numpy(), cpu.levels.astype(np.float32)), select
        assert bit_equal(out.numpy(), cpu.dequantize()), select


def test_equal_mass_kernel_takes_rows_it_can_hold():
    with pytest.raises(ValueError, match="n=8 "):
        gpu_triton.equal_mass_rows_triton(torch.zeros(2, 8), bits=4, select=True)


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
