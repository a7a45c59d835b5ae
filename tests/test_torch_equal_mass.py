"""The torch (GPU-path) equal-mass quantizer against the paper's reference algorithm."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import peers  # noqa: E402

from fmq_theory.quantizers.torch_equal_mass import (  # noqa: E402
    chunk_bounds, default_chunk_rows, dequantize_rows, equal_mass_rows)


@given(n=st.integers(1, 500), levels=st.sampled_from([2, 4, 8, 16, 256]))
def test_chunk_bounds_are_array_split_sizes(n, levels):
    assume(n >= levels)
    starts, ends = chunk_bounds(n, levels, device="cpu")
    sizes = [len(c) for c in np.array_split(np.arange(n), levels)]
    assert (ends - starts).tolist() == sizes
    assert starts[0] == 0 and ends[-1] == n


@given(rows=st.integers(1, 6), n=st.integers(16, 300), bits=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_matches_paper_reference_on_tie_free_rows(rows, n, bits, seed):
    w = np.random.default_rng(seed).standard_normal((rows, n)).astype(np.float32)
    codes, levels = equal_mass_rows(torch.from_numpy(w), bits=bits)
    ours = dequantize_rows(codes, levels).numpy()
    ref = peers.paper_equal_mass_per_channel(w, bits=bits)
    # both are means of the same float32 values; ours accumulates in float64, the
    # reference in float32 pairwise summation: they differ by float32 rounding only
    np.testing.assert_allclose(ours, ref, rtol=0, atol=8 * np.finfo(np.float32).eps * np.abs(w).max())
    assert codes.dtype == torch.uint8 and int(codes.max()) < 2**bits


@given(rows=st.integers(1, 40), n=st.integers(16, 200), bits=st.integers(1, 4), chunk=st.integers(1, 45),
       tied=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_chunked_rows_equal_unchunked_bit_for_bit(rows, n, bits, chunk, tied, seed):
    """Chunking the rows (the memory knob) changes nothing: codes, levels and dequantized
    weights are identical bit for bit (tolerance 0), ties and signed zeros included."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, n)).astype(np.float32)
    if tied:  # few distinct values, with -0.0 and 0.0 among them
        w = rng.choice(np.array([-1.5, -0.0, 0.0, 0.25, 2.0], dtype=np.float32), size=(rows, n))
    x = torch.from_numpy(w)
    whole_codes, whole_levels = equal_mass_rows(x, bits=bits, chunk_rows=rows)
    codes, levels = equal_mass_rows(x, bits=bits, chunk_rows=chunk)
    assert torch.equal(codes, whole_codes)
    assert np.array_equal(levels.numpy().view(np.uint32), whole_levels.numpy().view(np.uint32))
    whole = dequantize_rows(whole_codes, whole_levels, chunk_rows=rows)
    out = dequantize_rows(codes, levels, chunk_rows=chunk)
    assert np.array_equal(out.numpy().view(np.uint32), whole.numpy().view(np.uint32))
    default_codes, default_levels = equal_mass_rows(x, bits=bits)
    assert torch.equal(default_codes, whole_codes) and torch.equal(default_levels, whole_levels)


@pytest.mark.parametrize("rows, chunk", [(1, 1), (15, 1), (16, 1), (17, 2), (4096, 256), (18432, 1152)])
def test_default_chunk_is_a_sixteenth_of_the_rows(rows, chunk):
    assert default_chunk_rows(rows) == chunk


@pytest.mark.parametrize("bad, match", [
    (dict(weights=torch.zeros(2, 8), bits=2, chunk_rows=0), "chunk_rows must be a positive int or None, got 0"),
    (dict(weights=torch.zeros(2, 8), bits=2, chunk_rows=True), "chunk_rows must be a positive int or None, got True"),
    (dict(weights=torch.zeros(3), bits=2), "2-D floating"),
    (dict(weights=torch.zeros(2, 8), bits=0), "bits=0"),
    (dict(weights=torch.zeros(2, 3), bits=2), "fewer than"),
    (dict(weights=torch.tensor([[0.0, float("nan"), 1.0, 2.0]]), bits=1), "NaN"),
])
def test_bad_input_is_named(bad, match):
    with pytest.raises(ValueError, match=match):
        equal_mass_rows(**bad)
