"""Tests of fmq_theory.io.packing: layout, round trips, numba kernel == numpy twin, bad input.

Oracles: the layout written out with Python integers (code i shifted by i*b bits into one
big little-endian integer), and the plain-numpy twin.  Everything is exact (integers), so
every comparison is equality.
"""

import doctest
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fmq_theory.io import packing
from fmq_theory.io.packing import (
    pack_codes,
    pack_codes_numpy,
    packed_nbytes,
    unpack_codes,
    unpack_codes_numpy,
)


def bigint_pack(codes, bits):
    """The documented layout, literally: sum_i code_i * 2**(i*bits), little-endian bytes."""
    stream = 0
    for i, c in enumerate(codes):
        stream |= int(c) << (i * bits)
    return np.frombuffer(stream.to_bytes((len(codes) * bits + 7) // 8, "little"), dtype=np.uint8)


@st.composite
def codes_and_bits(draw, max_size=300):
    bits = draw(st.integers(1, 8))
    codes = draw(st.lists(st.integers(0, 2**bits - 1), max_size=max_size))
    return np.array(codes, dtype=np.uint8), bits


@given(codes_and_bits())
@example((np.array([], dtype=np.uint8), 5))
@example((np.array([255] * 9, dtype=np.uint8), 8))
@example((np.array([1] * 17, dtype=np.uint8), 1))
def test_pack_matches_layout_and_round_trips(case):
    codes, bits = case
    expected = bigint_pack(codes, bits)
    for pack, unpack in ((pack_codes, unpack_codes), (pack_codes_numpy, unpack_codes_numpy)):
        packed = pack(codes, bits)
        assert packed.dtype == np.uint8 and packed.shape == (packed_nbytes(codes.size, bits),)
        np.testing.assert_array_equal(packed, expected)
        restored = unpack(packed, bits, codes.size)
        assert restored.dtype == np.uint8
        np.testing.assert_array_equal(restored, codes)


def test_known_bytes():
    # bits=4: code 2m in the low nibble of byte m, code 2m+1 in the high nibble.
    assert pack_codes(np.array([0x1, 0x2, 0xF]), 4).tolist() == [0x21, 0x0F]
    # bits=3: 8 codes fill exactly 3 bytes; 1|2<<3|3<<6|4<<9|5<<12|6<<15|7<<18 = 0x1F58D1.
    assert pack_codes(np.arange(1, 9) % 8, 3).tolist() == [0xD1, 0x58, 0x1F]
    assert pack_codes(np.array([1, 0, 1, 1, 0, 0, 0, 0, 1]), 1).tolist() == [0b1101, 1]


@pytest.mark.parametrize("bits", range(1, 9))
def test_numba_equals_twin_across_chunks_and_tasks(bits, monkeypatch):
    """Random streams with the twin's chunk and the kernels' parallel task shrunk to 64
    codes, so chunk seams and the multi-task (parallel) kernel path are exercised."""
    monkeypatch.setattr(packing, "_TWIN_CHUNK", 64)
    monkeypatch.setattr(packing, "_PARALLEL_BLOCK", 64)
    rng = np.random.default_rng(bits)
    for n in (64 * 7, 64 * 7 + 5, 1001):
        codes = rng.integers(0, 2**bits, n, dtype=np.uint8)
        packed = pack_codes(codes, bits)
        np.testing.assert_array_equal(packed, pack_codes_numpy(codes, bits))
        np.testing.assert_array_equal(unpack_codes_numpy(packed, bits, n), codes)
        np.testing.assert_array_equal(unpack_codes(packed, bits, n), codes)


def test_numba_kernel_is_used_when_available():
    pytest.importorskip("numba")
    assert packing.numba_available()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32, np.int64])
def test_integer_dtypes_shapes_and_strides(dtype):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 32, (6, 10)).astype(dtype)
    view = base[:, ::3]  # non-contiguous, row-major order is what gets packed
    packed = pack_codes(view, 5)
    np.testing.assert_array_equal(packed, bigint_pack(view.reshape(-1), 5))
    np.testing.assert_array_equal(unpack_codes(packed, 5, view.size).reshape(view.shape), view)


def test_fallback_without_numba_kernels(monkeypatch):
    codes = np.random.default_rng(1).integers(0, 8, 1000, dtype=np.uint8)
    with_kernels = pack_codes(codes, 3)
    monkeypatch.setattr(packing, "_numba_kernels", lambda: None)
    assert not packing.numba_available()
    np.testing.assert_array_equal(pack_codes(codes, 3), with_kernels)
    np.testing.assert_array_equal(unpack_codes(with_kernels, 3, 1000), codes)


def test_import_and_pack_without_numba_installed():
    script = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from fmq_theory.io import packing\n"
        "assert not packing.numba_available()\n"
        "c = np.arange(8) % 4\n"
        "assert packing.unpack_codes(packing.pack_codes(c, 2), 2, 8).tolist() == c.tolist()\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


@pytest.mark.parametrize("bits", [0, 9, -1, True, 2.0, "4"])
def test_bad_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        pack_codes(np.zeros(3, dtype=np.uint8), bits)
    with pytest.raises(ValueError, match="bits"):
        unpack_codes(np.zeros(1, dtype=np.uint8), bits, 3)


@pytest.mark.parametrize("codes, bits", [([0, 4], 2), ([-1, 0], 3), ([256], 8), ([2], 1)])
def test_codes_out_of_range(codes, bits):
    with pytest.raises(ValueError, match="outside 0.."):
        pack_codes(np.array(codes), bits)
    with pytest.raises(ValueError, match="outside 0.."):
        pack_codes_numpy(np.array(codes), bits)


@pytest.mark.parametrize("codes", [np.array([0.0, 1.0]), np.array([True, False])])
def test_non_integer_codes(codes):
    with pytest.raises(TypeError, match="integer"):
        pack_codes(codes, 2)


def test_bad_packed_streams():
    with pytest.raises(ValueError, match="need 2"):
        unpack_codes(np.zeros(3, dtype=np.uint8), 3, 5)
    with pytest.raises(TypeError, match="uint8"):
        unpack_codes(np.zeros(2, dtype=np.int16), 3, 5)
    # 5 codes of 3 bits use 15 bits: the top bit of byte 1 is padding and must be 0.
    for unpack in (unpack_codes, unpack_codes_numpy):
        with pytest.raises(ValueError, match="padding"):
            unpack(np.array([0, 0x80], dtype=np.uint8), 3, 5)
    with pytest.raises(ValueError, match="count"):
        packed_nbytes(-1, 3)


def test_packed_nbytes():
    assert [packed_nbytes(n, 3) for n in (0, 1, 2, 3, 8)] == [0, 1, 1, 2, 3]
    assert packed_nbytes(10**8, 4) == 5 * 10**7


def test_docstring_examples():
    assert doctest.testmod(packing).failed == 0
