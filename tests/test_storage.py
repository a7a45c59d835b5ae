"""Tests of fmq_theory.io.quantized_file: exact save/load round trips, size accounting, atomic
writes, validation of quantized files (float checkpoints: tests/test_float_checkpoint.py).

Every comparison is exact: codes and stored arrays are integers / floats copied bit for
bit, and levels are rebuilt by ``levels_from_stored``, which the quantizer contract
requires to be bit-identical.
"""

import hashlib
import json
import os
import struct
import tempfile

import numpy as np
import pytest
import torch
from _safetensors_files import rewrite_document
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from fmq_theory import _util as _atomic
from fmq_theory._util import atomic_output
from fmq_theory.io import quantized_file as storage
from fmq_theory.quantizers import METHODS, quantize, quantize_state_dict
from fmq_theory.io.quantized_file import (
    FORMAT_VERSION,
    inspect_quantized,
    load_quantized,
    save_quantized,
)

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "digits_cnn.safetensors")
GRANULARITIES = ("tensor", "channel", ("group", 24))


@pytest.fixture(autouse=True)
def one_numba_thread():
    """Run the quantizers' numba kernels on one thread here: these tests check storage,
    and the searches of uniform_mse/pwlq call parallel kernels on tiny groups ~100 times
    per tensor, where waking the thread pool costs far more than the work."""
    try:
        import numba
    except ImportError:  # the quantizers then run their numpy twins
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def assert_same_quantized(loaded, original):
    for attr in ("method", "bits", "granularity", "shape", "dtype", "framework"):
        assert getattr(loaded, attr) == getattr(original, attr), attr
    for attr in ("codes", "levels"):
        a, b = getattr(loaded, attr), np.asarray(getattr(original, attr))
        assert a.dtype == b.dtype and a.shape == b.shape, attr
        np.testing.assert_array_equal(a, b)
    assert set(loaded.stored) == set(original.stored)
    for key, array in original.stored.items():
        assert loaded.stored[key].dtype == array.dtype
        np.testing.assert_array_equal(loaded.stored[key], array)
    x, y = loaded.dequantize(), original.dequantize()
    if isinstance(y, torch.Tensor):
        assert x.dtype == y.dtype and torch.equal(x, y)
    else:
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def leftovers(directory, name):
    return sorted(f for f in os.listdir(directory) if f != name)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_every_method_bits_granularity(method, tmp_path):
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.standard_t(4, size=(6, 40)).astype(np.float32))
    path = tmp_path / "q.safetensors"
    for bits in range(1, 9):
        for granularity in GRANULARITIES:
            qt = quantize(w, method=method, bits=bits, granularity=granularity)
            info = save_quantized(path, {"w": qt})
            assert info.data_bytes == (bits * qt.n_weights + 7) // 8 + qt.overhead_bits // 8
            assert_same_quantized(load_quantized(path).quantized["w"], qt)
    assert leftovers(tmp_path, "q.safetensors") == []


@st.composite
def quantized_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=1, max_size=3)))
    method = draw(st.sampled_from(METHODS))
    bits = draw(st.integers(1, 8))
    granularity = draw(st.sampled_from(["tensor", "channel", ("group", draw(st.integers(1, 20)))]))
    dtype = draw(st.sampled_from(["float32", "float64", "float16", "bfloat16"]))
    framework = "numpy" if dtype == "float64" and draw(st.booleans()) else "torch"
    seed = draw(st.integers(0, 2**32 - 1))
    return shape, method, bits, granularity, dtype, framework, seed


@given(quantized_cases())
def test_round_trip_random_shapes_dtypes(case):
    shape, method, bits, granularity, dtype, framework, seed = case
    values = np.random.default_rng(seed).normal(size=shape)
    w = values if framework == "numpy" else torch.from_numpy(values).to(getattr(torch, dtype))
    qt = quantize(w, method=method, bits=bits, granularity=granularity)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "q.safetensors")
        save_quantized(path, {"w": qt, "step": torch.tensor(7)})
        qsd = load_quantized(path)
        assert_same_quantized(qsd.quantized["w"], qt)
        assert torch.equal(qsd.passthrough["step"], torch.tensor(7))


def test_state_dict_round_trip_and_size_accounting(tmp_path):
    sd = load_file(FIXTURE)
    qsd = quantize_state_dict(sd, method="equal_mass", bits=3)
    path = tmp_path / "digits.safetensors"
    info = save_quantized(path, qsd, metadata={"note": "digits", "seed": 0})

    expected = {}
    for name, qt in qsd.quantized.items():
        stored = sum(a.nbytes for a in qt.stored.values())
        expected[name] = (qt.bits * qt.n_weights + 7) // 8 + stored
        # ceil(bits_per_weight * n / 8), in integers: the stored bits are whole bytes.
        assert expected[name] == -(-(qt.bits * qt.n_weights + qt.overhead_bits) // 8)
    for name, tensor in qsd.passthrough.items():
        expected[name] = tensor.numel() * tensor.element_size()
    assert dict(info.tensor_bytes) == expected
    assert info.file_bytes == os.path.getsize(path)
    (header_len,) = struct.unpack("<Q", open(path, "rb").read(8))
    assert info.header_bytes == 8 + header_len
    assert info.file_bytes - info.header_bytes == sum(expected.values())
    assert "0.weight" in qsd.quantized and "1.num_batches_tracked" in qsd.passthrough

    loaded = load_quantized(path)
    assert list(loaded.quantized) == list(qsd.quantized)
    for name, qt in qsd.quantized.items():
        assert_same_quantized(loaded.quantized[name], qt)
    for name, tensor in qsd.passthrough.items():
        assert loaded.passthrough[name].dtype == tensor.dtype
        assert torch.equal(loaded.passthrough[name], tensor)
    assert loaded.report == qsd.report
    for key, value in qsd.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)

    again = inspect_quantized(path)
    assert again.metadata == {"note": "digits", "seed": 0}
    assert again.format_version == FORMAT_VERSION and again.tensor_bytes == info.tensor_bytes


def test_numpy_passthrough_comes_back_as_numpy(tmp_path):
    qt = quantize(np.linspace(-1, 1, 32), method="uniform_minmax", bits=2)
    counts = np.arange(5, dtype=np.int32)
    save_quantized(tmp_path / "q.safetensors", {"w": qt, "counts": counts})
    back = load_quantized(tmp_path / "q.safetensors").passthrough["counts"]
    assert isinstance(back, np.ndarray) and back.dtype == np.int32
    np.testing.assert_array_equal(back, counts)


def test_save_refuses_bad_input(tmp_path):
    qt = quantize(np.linspace(-1, 1, 32), method="uniform_minmax", bits=2)
    with pytest.raises(ValueError, match="safetensors"):
        save_quantized(tmp_path / "q.pt", {"w": qt})
    with pytest.raises(TypeError, match="metadata"):
        save_quantized(tmp_path / "q.safetensors", {"w": qt}, metadata={"f": object()})
    with pytest.raises(TypeError, match="qsd_or_mapping\\['x'\\]"):
        save_quantized(tmp_path / "q.safetensors", {"x": [1, 2]})
    with pytest.raises(ValueError, match="file key 'w::codes'"):
        save_quantized(tmp_path / "q.safetensors", {"w": qt, "w::codes": torch.zeros(2)})
    wide = quantize(np.linspace(-1, 1, 64), method="uniform_minmax", bits=10)
    with pytest.raises(ValueError, match="bits=10"):
        save_quantized(tmp_path / "q.safetensors", {"w": wide})
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- atomic writes


def _quantized_mapping():
    return {"w": quantize(torch.randn(4, 16), method="equal_mass", bits=2, granularity="channel")}


@pytest.mark.parametrize("failure", ["mid_write", "replace", "interrupt"])
def test_failed_write_leaves_nothing_and_keeps_old_file(failure, tmp_path, monkeypatch):
    path = tmp_path / "out.safetensors"
    path.write_bytes(b"previous contents")
    real_save = storage.save_file

    def partial_save(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as handle:
            handle.truncate(100)
        raise KeyboardInterrupt if failure == "interrupt" else OSError("disk full")

    if failure == "replace":
        monkeypatch.setattr(storage.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("EXDEV")))
    else:
        monkeypatch.setattr(storage, "save_file", partial_save)
    with pytest.raises((OSError, KeyboardInterrupt)):
        save_quantized(path, _quantized_mapping())
    assert path.read_bytes() == b"previous contents"
    assert leftovers(tmp_path, "out.safetensors") == []


def test_failed_first_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("EIO")))
    with pytest.raises(OSError, match="EIO"):
        save_quantized(tmp_path / "out.safetensors", _quantized_mapping())
    assert os.listdir(tmp_path) == []


def test_atomic_output_success_and_missing_directory(tmp_path):
    target = tmp_path / "a.txt"
    with atomic_output(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and not target.exists()
        with open(tmp, "w") as handle:
            handle.write("done")
    assert target.read_text() == "done" and os.listdir(tmp_path) == ["a.txt"]
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~_atomic._umask()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_quantized(tmp_path / "no" / "q.safetensors", _quantized_mapping())


# --------------------------------------------------------------------------- validation on load


def _set(field, value):
    def edit(document):
        document["tensors"]["w"][field] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), f"format_version {FORMAT_VERSION + 1}"),
        (lambda d: d.update(format="other"), "format is not"),
        (_set("bits", 9), "bits=9"),
        (_set("bits", 3), "corrupt codes"),
        (_set("method", "magic"), "unknown method 'magic'"),
        (_set("shape", [4, 17]), "codes shape"),
        (_set("codes", ["|u1", 2, 32]), "codes shape"),
        (_set("codes", ["|u1", 64]), "codes shape"),
        (_set("codes", ["<f4", 4, 16]), "codes dtype"),
        (_set("dtype", "int8"), "dtype 'int8'"),
        (_set("framework", "jax"), "unknown framework"),
        (_set("granularity", "group:0"), "granularity"),
        (_set("stored", []), "do not match its layout"),
        (_set("stored", ["scale"]), "do not match its layout"),
        (lambda d: d["tensors"].pop("step"), "do not match its layout"),
        (lambda d: d["tensors"]["step"].update(kept="jax"), "unknown framework 'jax'"),
        (lambda d: d.update(tensors=[]), "no tensor layout"),
    ],
)
def test_tampered_metadata_is_rejected(edit, message, tmp_path):
    good = tmp_path / "good.safetensors"
    save_quantized(good, _quantized_mapping() | {"step": torch.tensor(1)})
    bad = tmp_path / "bad.safetensors"
    rewrite_document(good, bad, edit)
    with pytest.raises(ValueError, match=message):
        load_quantized(bad)


def test_corrupt_quantized_files_are_rejected(tmp_path):
    good = tmp_path / "good.safetensors"
    save_quantized(good, _quantized_mapping())
    raw = good.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(raw[:-3])
    (tmp_path / "short.safetensors").write_bytes(raw[:5])
    (tmp_path / "header.safetensors").write_bytes(raw[:8] + b"\xff" * (len(raw) - 8))
    for name in ("trunc", "short", "header"):
        with pytest.raises(ValueError, match=f"{name}.safetensors"):
            load_quantized(tmp_path / f"{name}.safetensors")
    save_file({"w": torch.ones(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="not an fmq_theory quantized checkpoint"):
        load_quantized(tmp_path / "plain.safetensors")
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_quantized(tmp_path / "nothing.safetensors")
    # 5 codes of 3 bits use 15 of 16 bits: setting the last (padding) bit is corruption.
    odd = {"w": quantize(torch.randn(5), method="uniform_minmax", bits=3)}
    save_quantized(tmp_path / "odd.safetensors", odd)
    data = bytearray((tmp_path / "odd.safetensors").read_bytes())
    header_end = 8 + struct.unpack("<Q", bytes(data[:8]))[0]
    header = json.loads(bytes(data[8:header_end]))
    start, end = header["w::codes"]["data_offsets"]
    data[header_end + end - 1] |= 0x80
    (tmp_path / "odd.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="fails its SHA-256 check"):
        load_quantized(tmp_path / "odd.safetensors")
    # with its digest re-stamped, the padding check still refuses it
    digest = hashlib.sha256(bytes(data[header_end + start : header_end + end])).hexdigest()
    rewrite_document(tmp_path / "odd.safetensors", tmp_path / "odd2.safetensors",
                      lambda d: d["tensors"]["w"]["sha256"].update({"w::codes": digest}))
    with pytest.raises(ValueError, match="padding"):
        load_quantized(tmp_path / "odd2.safetensors")


def test_edge_entries_keep_order_dtype_and_values(tmp_path):
    sd = {
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 3),  # empty floating tensors pass through
        "bf16": torch.randn(3, 4, dtype=torch.bfloat16),
        "half": torch.randn(5).half(),
        "mask": torch.tensor([True, False]),
    }
    qsd = quantize_state_dict(sd, method="equal_mass", bits=2)
    save_quantized(tmp_path / "q.safetensors", qsd)
    loaded = load_quantized(tmp_path / "q.safetensors")
    assert loaded.keys == tuple(sd) and set(loaded.passthrough) == {"empty", "mask"}
    restored, expected = loaded.state_dict(), qsd.state_dict()
    assert list(restored) == list(sd)
    for key, value in expected.items():
        assert restored[key].dtype == value.dtype and torch.equal(restored[key], value)
