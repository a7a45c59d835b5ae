"""Quantized checkpoints in one file: save, load and inspect a bit-packed quantized state dict.

Quantized checkpoint format (``format_version`` 2)
--------------------------------------------------
One ``.safetensors`` file.  For every quantized tensor ``NAME`` it holds

* ``NAME::codes``: the codes of the ``n`` weights, row-major, bit-packed by
  :func:`fmq_theory.io.packing.pack_codes` (``ceil(bits * n / 8)`` bytes, uint8);
* ``NAME::KEY`` for every array ``KEY`` of :attr:`QuantizedTensor.stored` (codebooks,
  scales, offsets) at its storage dtype;

and every passthrough tensor (integer buffers, ...) under its own name, unchanged.  The
header's ``__metadata__`` entry ``"fmq_theory"`` is a JSON document with the format name
and version, the package version, the caller's metadata and, under ``"tensors"`` in
state-dict order, one entry per name: for a quantized tensor its method, bits,
granularity, shape, dtype, framework, codes dtype and shape (``[dtype, n_groups,
group_size]``), stored keys and the measured fields of the quantizer's report (MSE, W2;
the other report fields are rebuilt from the tensor); for a passthrough tensor
``{"kept": framework}``; and in both, ``"sha256"``: the SHA-256 digest of the data bytes of
each of its file keys, checked by :func:`load_quantized` and :func:`inspect_quantized`, so a
flipped or truncated data byte is an error, never a silently different weight (version 1
files, written before the digests, are read without that check).  The name
``__metadata__`` is reserved by safetensors and refused.  The reconstruction levels are not stored: they
are rebuilt by :func:`fmq_theory.quantizers.levels_from_stored`, so the data bytes of the
file are exactly what :attr:`QuantizedTensor.bits_per_weight` counts:

.. math::

    \\text{file bytes} - \\text{header bytes}
    = \\sum_{\\text{quantized}} \\Big(\\lceil b\\, n / 8 \\rceil + \\text{stored bytes}\\Big)
    + \\sum_{\\text{passthrough}} \\text{bytes},

where the header bytes are the 8-byte length prefix plus the JSON header of the
safetensors format [1]_.

Every file is written atomically (:func:`fmq_theory._util.atomic_output`): the temporary
file is read back and validated by :func:`load_quantized` before it replaces the target, so
a failed write leaves neither a partial file nor a temporary one, never clobbers an existing
file, and keeps its file mode.  Stored codebooks, scales and offsets that are not finite are
refused on load.
Float checkpoints (what a quantized file is made from) are read by
:mod:`fmq_theory.io.float_checkpoint`.

Examples
--------
>>> import os, tempfile, torch
>>> from fmq_theory.quantizers import quantize_state_dict
>>> qsd = quantize_state_dict({"w": torch.randn(4, 16)}, method="equal_mass", bits=2)
>>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
>>> save_quantized(path, qsd).tensor_bytes  # 64 codes of 2 bits + a 4 x 4 float32 codebook
{'w': 80}
>>> back = load_quantized(path)
>>> torch.equal(back.quantized["w"].dequantize(), qsd.quantized["w"].dequantize())
True

References
----------
.. [1] Hugging Face, "safetensors" file format,
   https://github.com/huggingface/safetensors#format
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from fmq_theory import __version__
from fmq_theory._util import atomic_output
from fmq_theory.io._files import METADATA_KEY, read_safetensors_header, require_file
from fmq_theory.io.packing import pack_codes, unpack_codes
from fmq_theory.quantizers import (
    QuantizedStateDict,
    QuantizedTensor,
    TensorReport,
    format_granularity,
    levels_from_stored,
    parse_granularity,
)
from fmq_theory.vocab import FLOAT_DTYPES, METHODS, PACKED_BITS

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "RESERVED_NAMES",
    "QuantizedFileInfo",
    "save_quantized",
    "load_quantized",
    "inspect_quantized",
]

#: Value of ``"format"`` in the metadata of a quantized checkpoint.
FORMAT = "fmq_theory.quantized_state_dict"
#: Newest quantized-checkpoint layout this version writes and reads (2: per-tensor SHA-256).
FORMAT_VERSION = 2
#: Tensor names a checkpoint cannot hold (safetensors keeps its own metadata under this key).
RESERVED_NAMES = ("__metadata__",)

_SEP = "::"
_MIN_BITS, _MAX_BITS = PACKED_BITS


@dataclass(frozen=True, eq=False)
class QuantizedFileInfo:
    """Size accounting and metadata of a quantized checkpoint file.

    Attributes
    ----------
    path : str
        The file.
    file_bytes : int
        Size of the file.
    header_bytes : int
        The safetensors header: 8-byte length prefix plus the JSON header (with its
        padding); ``file_bytes - header_bytes`` is the data.
    tensor_bytes : dict of str to int
        Data bytes of every state-dict entry, in state-dict order: for a quantized tensor
        ``ceil(bits * n / 8)`` plus its stored arrays, for a passthrough tensor its bytes.
    format_version : int
        Layout version of the file.
    package_version : str
        Version of fmq_theory that wrote the file.
    metadata : dict
        The caller's ``metadata`` given to :func:`save_quantized`.
    """

    path: str
    file_bytes: int
    header_bytes: int
    tensor_bytes: Mapping[str, int]
    format_version: int
    package_version: str
    metadata: Mapping[str, Any]

    @property
    def data_bytes(self) -> int:
        """Bytes of tensor data: ``file_bytes - header_bytes``."""
        return self.file_bytes - self.header_bytes


# --------------------------------------------------------------------------- writing


def _split(qsd_or_mapping) -> tuple[dict, dict, tuple, tuple]:
    """(quantized, passthrough, report, keys) of a QuantizedStateDict or a name -> tensor mapping."""
    if isinstance(qsd_or_mapping, QuantizedStateDict):
        quantized, passthrough = dict(qsd_or_mapping.quantized), dict(qsd_or_mapping.passthrough)
        keys = tuple(qsd_or_mapping.keys)
        if sorted(keys) != sorted([*quantized, *passthrough]):
            raise ValueError("qsd_or_mapping.keys does not list exactly its quantized and passthrough names")
        return quantized, passthrough, tuple(qsd_or_mapping.report), keys
    if not isinstance(qsd_or_mapping, Mapping):
        raise TypeError(
            "qsd_or_mapping must be a QuantizedStateDict or a mapping of names to "
            f"QuantizedTensor / tensors, got {type(qsd_or_mapping).__name__}"
        )
    quantized, passthrough = {}, {}
    for name, value in qsd_or_mapping.items():
        if isinstance(value, QuantizedTensor):
            quantized[name] = value
        elif isinstance(value, (torch.Tensor, np.ndarray)):
            passthrough[name] = value
        else:
            raise TypeError(
                f"qsd_or_mapping[{name!r}] is a {type(value).__name__}; expected a "
                "QuantizedTensor, torch.Tensor or numpy.ndarray"
            )
    return quantized, passthrough, (), tuple(qsd_or_mapping)


def _check_names(keys) -> None:
    for name in keys:
        if not isinstance(name, str) or not name:
            raise ValueError(f"tensor name {name!r} must be a non-empty string")
        if name in RESERVED_NAMES or any(name.startswith(f"{r}{_SEP}") for r in RESERVED_NAMES):
            raise ValueError(f"tensor name {name!r} is reserved by the safetensors format; rename the entry")


def _digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a CPU tensor's bytes as safetensors stores them (row-major, little-endian)."""
    return hashlib.sha256(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def _as_cpu_tensor(value) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    return value.detach().to("cpu").contiguous().clone()


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _derived_report_fields(name: str, qt: QuantizedTensor) -> dict:
    """The fields of a quantizer's TensorReport that follow from the QuantizedTensor."""
    return {
        "name": name,
        "shape": tuple(qt.shape),
        "n_weights": qt.n_weights,
        "method": qt.method,
        "bits": qt.bits,
        "granularity": format_granularity(parse_granularity(qt.granularity)),
        "bits_per_weight": qt.bits_per_weight,
    }


def _report_measurements(report: tuple, quantized: dict) -> dict[str, dict]:
    """Per tensor name, the report fields not derivable from the tensor (MSE, W2, ...).

    Only these are stored; the rest is rebuilt on load, so each row must agree with its
    tensor.
    """
    out = {}
    for row in report:
        if row.name not in quantized:
            raise ValueError(f"report row {row.name!r} names no quantized tensor")
        derived = _derived_report_fields(row.name, quantized[row.name])
        wrong = [k for k, v in derived.items() if k in row.__dataclass_fields__ and getattr(row, k) != v]
        if wrong:
            raise ValueError(f"report row {row.name!r} disagrees with its tensor on {wrong}")
        out[row.name] = {f.name: _jsonable(getattr(row, f.name)) for f in fields(row) if f.name not in derived}
    return out


def _report_row(name: str, qt: QuantizedTensor, measured: dict):
    if not isinstance(measured, dict):
        raise TypeError(f"the report of tensor {name!r} is not a mapping")
    names = set(TensorReport.__dataclass_fields__)
    derived = {k: v for k, v in _derived_report_fields(name, qt).items() if k in names}
    return TensorReport(**derived, **{k: tuple(v) if isinstance(v, list) else v for k, v in measured.items()})


def save_quantized(path, qsd_or_mapping, *, metadata: Mapping[str, Any] | None = None) -> QuantizedFileInfo:
    """Write a quantized state dict to one ``.safetensors`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; must end in ``.safetensors``.  Replaced only when the write succeeds.
    qsd_or_mapping : QuantizedStateDict or mapping of str to QuantizedTensor / tensor
        What :func:`fmq_theory.quantizers.quantize_state_dict` returns, or a mapping whose
        :class:`QuantizedTensor` values are stored quantized and whose ``torch.Tensor`` /
        ``numpy.ndarray`` values are stored unchanged.
    metadata : mapping, optional
        JSON-serializable caller metadata kept in the header (see :func:`inspect_quantized`).

    Returns
    -------
    QuantizedFileInfo
        Size accounting of the written file.

    Raises
    ------
    ValueError
        Wrong suffix, two entries that would share a file key, codes outside ``bits``.
    TypeError
        A value of an unsupported type, or metadata that is not JSON-serializable.
    """
    path = os.fspath(path)
    if not path.endswith(".safetensors"):
        raise ValueError(f"path={path!r} must end in '.safetensors'")
    quantized, passthrough, report, keys = _split(qsd_or_mapping)
    _check_names(keys)
    measured = _report_measurements(report, quantized)
    try:
        user = json.loads(json.dumps(dict(metadata or {}), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be a JSON-serializable mapping: {exc}") from exc

    tensors: dict[str, torch.Tensor] = {}
    layout: dict[str, dict] = {}

    def put(key: str, tensor: torch.Tensor) -> None:
        if key in tensors:
            raise ValueError(f"two entries map to the file key {key!r}; rename one of them")
        tensors[key] = tensor

    for name in keys:
        if name in passthrough:
            value = passthrough[name]
            put(name, _as_cpu_tensor(value))
            layout[name] = {"kept": "numpy" if isinstance(value, np.ndarray) else "torch",
                            "sha256": {name: _digest(tensors[name])}}
            continue
        qt = quantized[name]
        if not _MIN_BITS <= qt.bits <= _MAX_BITS:
            raise ValueError(
                f"quantized[{name!r}] has bits={qt.bits}; packed checkpoints hold "
                f"{_MIN_BITS}..{_MAX_BITS} bits per code"
            )
        n = qt.n_weights
        codes = np.asarray(qt.codes)
        flat = codes.reshape(-1)
        if codes.ndim != 2 or flat.size < n:
            raise ValueError(f"quantized[{name!r}].codes has shape {codes.shape} for {n} weights")
        put(f"{name}{_SEP}codes", torch.from_numpy(pack_codes(flat[:n], qt.bits)))
        for skey, array in qt.stored.items():
            put(f"{name}{_SEP}{skey}", _as_cpu_tensor(np.asarray(array)))
        layout[name] = {
            "method": qt.method,
            "bits": int(qt.bits),
            "granularity": format_granularity(parse_granularity(qt.granularity)),
            "shape": [int(s) for s in qt.shape],
            "dtype": str(qt.dtype),
            "framework": qt.framework,
            "codes": [codes.dtype.str, *map(int, codes.shape)],
            "stored": list(qt.stored),
        }
        layout[name]["sha256"] = {key: _digest(tensors[key]) for key in _file_keys(name, layout[name])}
        if name in measured:
            layout[name]["report"] = measured[name]

    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "metadata": user,
        "tensors": layout,
    }
    header_metadata = {METADATA_KEY: json.dumps(document, separators=(",", ":"))}
    with atomic_output(path, validate=load_quantized) as tmp:
        save_file(tensors, tmp, metadata=header_metadata)
    return inspect_quantized(path)


# --------------------------------------------------------------------------- reading


def _document(path: str, header: dict) -> dict:
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{path!r} has a corrupt safetensors header: '__metadata__' is not a mapping")
    if METADATA_KEY not in meta:
        raise ValueError(f"{path!r} is a safetensors file but not an fmq_theory quantized checkpoint")
    try:
        document = json.loads(meta[METADATA_KEY])
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path!r}: corrupt fmq_theory metadata: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path!r}: metadata format is not {FORMAT!r}")
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path!r}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} has format_version {version}, written by fmq_theory "
            f"{document.get('package_version')!r}; this version ({__version__}) reads up to "
            f"{FORMAT_VERSION}"
        )
    tensors = document.get("tensors")
    if not isinstance(tensors, dict) or not all(isinstance(e, dict) for e in tensors.values()):
        raise ValueError(f"{path!r}: metadata has no tensor layout")
    if not isinstance(document.get("metadata") or {}, dict):
        raise ValueError(f"{path!r}: the caller's metadata is not a mapping")
    return document


def _file_keys(name: str, entry: dict) -> list[str]:
    """The safetensors keys that hold state-dict entry ``name`` (layout ``entry``)."""
    if "kept" in entry:
        return [name]
    return [f"{name}{_SEP}codes", *(f"{name}{_SEP}{key}" for key in entry["stored"])]


def _entry_bytes(name: str, entry: dict, header: dict) -> int:
    total = 0
    for key in _file_keys(name, entry):
        start, end = header[key]["data_offsets"]
        total += int(end) - int(start)
    return total


def _verify_data(path: str, header_bytes: int, header: dict, document: dict) -> None:
    """Check that the data section is complete and that every file key's bytes have the
    SHA-256 digest recorded in the layout (format version 2 and later)."""
    size = os.path.getsize(path)
    try:
        end = max([int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"], default=0)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{path!r}: corrupt safetensors header ({exc!r})") from exc
    if header_bytes + end != size:
        raise ValueError(f"{path!r} is truncated or padded: the header announces {header_bytes + end} bytes, "
                         f"the file has {size}")
    if document["format_version"] < 2:
        return
    with open(path, "rb") as handle:
        for name, entry in document["tensors"].items():
            digests = entry.get("sha256")
            keys = _file_keys(name, entry)
            if not isinstance(digests, dict) or sorted(digests) != sorted(keys):
                raise ValueError(f"{path!r}: tensor {name!r} has no SHA-256 digest for each of {keys}")
            for key in keys:
                start, stop = (int(v) for v in header[key]["data_offsets"])
                handle.seek(header_bytes + start)
                h = hashlib.sha256()
                remaining = stop - start
                while remaining > 0:
                    chunk = handle.read(min(remaining, 1 << 24))
                    if not chunk:
                        break
                    h.update(chunk)
                    remaining -= len(chunk)
                if h.hexdigest() != digests[key]:
                    raise ValueError(f"{path!r}: tensor {name!r} fails its SHA-256 check ({key!r}): "
                                     "the data bytes were changed or damaged after writing")


def inspect_quantized(path) -> QuantizedFileInfo:
    """Read the metadata and size accounting of a quantized checkpoint, verifying its data.

    The tensors are not decoded, but every data byte is read once: the file must be complete
    and every tensor must match its SHA-256 digest.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; not a (supported) fmq_theory quantized checkpoint (a header whose
        ``__metadata__`` or caller metadata is not a mapping included); truncated file or a
        tensor whose bytes fail their checksum.
    """
    path = require_file(path, "path")
    header_bytes, header = read_safetensors_header(path)
    document = _document(path, header)
    try:
        tensor_bytes = {name: _entry_bytes(name, e, header) for name, e in document["tensors"].items()}
        _verify_data(path, header_bytes, header, document)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path!r}: tensor layout does not match the file's tensors ({exc!r})") from exc
    except ValueError as exc:
        if path in str(exc):
            raise
        raise ValueError(f"{path!r}: tensor layout does not match the file's tensors ({exc!r})") from exc
    return QuantizedFileInfo(
        path=path,
        file_bytes=os.path.getsize(path),
        header_bytes=header_bytes,
        tensor_bytes=tensor_bytes,
        format_version=document["format_version"],
        package_version=str(document.get("package_version")),
        metadata=document.get("metadata") or {},
    )


def _check_int_list(path: str, name: str, field_name: str, value, length: int | None = None) -> tuple:
    if (
        not isinstance(value, list)
        or (length is not None and len(value) != length)
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        raise ValueError(f"{path!r}: tensor {name!r} has invalid {field_name} {value!r}")
    return tuple(value)


def _group_layout_ok(granularity: tuple, shape: tuple, n: int, codes_shape: tuple) -> bool:
    n_groups, group_size = codes_shape
    if n == 0:
        return n_groups * group_size == 0
    if group_size == 0 or not 0 <= n_groups * group_size - n < group_size:
        return False
    if granularity[0] == "tensor":
        return n_groups == 1
    if granularity[0] == "group":
        # A tensor shorter than one group may keep its codes unpadded: shape (1, n).
        return group_size == granularity[1] or (n_groups == 1 and group_size == n < granularity[1])
    return len(shape) >= 2 and n_groups == shape[0] and n_groups * group_size == n


def _load_entry(path: str, name: str, entry: dict, handle, device: str) -> QuantizedTensor:
    method, bits = entry.get("method"), entry.get("bits")
    if method not in METHODS:
        raise ValueError(f"{path!r}: tensor {name!r} has unknown method {method!r}")
    if not isinstance(bits, int) or isinstance(bits, bool) or not _MIN_BITS <= bits <= _MAX_BITS:
        raise ValueError(f"{path!r}: tensor {name!r} has bits={bits!r}, outside {_MIN_BITS}..{_MAX_BITS}")
    try:
        granularity = parse_granularity(entry.get("granularity"))
        codes_dtype = np.dtype(entry["codes"][0])
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"{path!r}: tensor {name!r}: {exc}") from exc
    if codes_dtype.kind != "u" or (1 << bits) - 1 > np.iinfo(codes_dtype).max:
        raise ValueError(f"{path!r}: tensor {name!r} has codes dtype {codes_dtype} for bits={bits}")
    shape = _check_int_list(path, name, "shape", entry.get("shape"))
    codes_shape = _check_int_list(path, name, "codes shape", entry["codes"][1:], 2)
    n = int(np.prod(shape, dtype=np.int64))
    if not _group_layout_ok(granularity, shape, n, codes_shape):
        raise ValueError(
            f"{path!r}: tensor {name!r} has codes shape {list(codes_shape)} inconsistent with "
            f"shape {list(shape)} and granularity {format_granularity(granularity)!r}"
        )
    packed = handle.get_tensor(f"{name}{_SEP}codes").numpy()
    try:
        flat = unpack_codes(packed, bits, n)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path!r}: tensor {name!r} has corrupt codes: {exc}") from exc
    codes = np.zeros(codes_shape[0] * codes_shape[1], dtype=codes_dtype)
    codes[:n] = flat
    codes = codes.reshape(codes_shape)
    stored = {skey: handle.get_tensor(f"{name}{_SEP}{skey}").numpy() for skey in entry["stored"]}
    for skey, array in stored.items():
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"{path!r}: tensor {name!r} has non-finite values in its stored {skey!r}")
    try:
        levels = levels_from_stored(method, bits, stored)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path!r}: tensor {name!r} has invalid side information: {exc!r}") from exc
    if not np.all(np.isfinite(levels)):
        raise ValueError(f"{path!r}: tensor {name!r}: the levels rebuilt from the stored arrays are not finite")
    if np.shape(levels) != (codes_shape[0], 1 << bits):
        raise ValueError(
            f"{path!r}: tensor {name!r}: levels of shape {np.shape(levels)} rebuilt from the "
            f"stored arrays, expected {(codes_shape[0], 1 << bits)}"
        )
    framework, dtype = entry.get("framework"), entry.get("dtype")
    if framework not in ("numpy", "torch"):
        raise ValueError(f"{path!r}: tensor {name!r} has unknown framework {framework!r}")
    if dtype not in FLOAT_DTYPES or (framework == "numpy" and dtype == "bfloat16"):
        raise ValueError(f"{path!r}: tensor {name!r} has dtype {dtype!r}, not a {framework} float dtype")
    return QuantizedTensor(
        method=method,
        bits=bits,
        granularity=granularity,
        shape=shape,
        dtype=dtype,
        codes=codes,
        levels=levels,
        stored=stored,
        framework=framework,
        device=device if framework == "torch" else "cpu",
    )


def load_quantized(path, *, device: str = "cpu") -> QuantizedStateDict:
    """Load and validate a quantized checkpoint written by :func:`save_quantized`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file written by :func:`save_quantized`.
    device : str
        Device recorded in the torch-framework :class:`QuantizedTensor` objects (so that
        ``dequantize()`` lands there) and of the passthrough torch tensors; a name
        :class:`torch.device` accepts.

    Returns
    -------
    QuantizedStateDict
        Codes, stored arrays and levels identical to the saved ones, so ``dequantize()``
        is bit-identical; the report is the one saved with the file (empty when a plain
        mapping was saved).  The quantizers' diagnostics (:attr:`QuantizedTensor.info`)
        are not part of a checkpoint: loaded tensors have ``info == {}``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``device`` is not a device name; truncated or corrupt file (a header whose
        ``__metadata__``, caller metadata or report is not a mapping included), a tensor whose
        bytes fail their SHA-256 digest,
        non-finite stored codebooks/scales, unsupported format version, or a layout that fails
        validation (unknown method, bits outside 1..8, inconsistent shapes, a packed
        stream of the wrong length or with non-zero padding, stored arrays that do not
        rebuild ``2**bits`` levels per group, tensors missing from or extra in the file).
    """
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a device name: {exc}") from exc
    path = require_file(path, "path")
    header_bytes, header = read_safetensors_header(path)
    document = _document(path, header)
    quantized, passthrough = {}, {}
    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            layout = document["tensors"]
            expected = {key for name, entry in layout.items() for key in _file_keys(name, entry)}
            present = set(handle.keys())
            if present != expected:
                raise ValueError(
                    f"{path!r}: tensors in the file do not match its layout (missing "
                    f"{sorted(expected - present)[:5]}, unexpected {sorted(present - expected)[:5]})"
                )
            _verify_data(path, header_bytes, header, document)
            for name, entry in layout.items():
                if "kept" not in entry:
                    quantized[name] = _load_entry(path, name, entry, handle, device)
                elif entry["kept"] in ("numpy", "torch"):
                    tensor = handle.get_tensor(name)
                    passthrough[name] = tensor.numpy() if entry["kept"] == "numpy" else tensor.to(device)
                else:
                    raise ValueError(f"{path!r}: tensor {name!r} kept as unknown framework {entry['kept']!r}")
            report = tuple(
                _report_row(name, quantized[name], e["report"]) for name, e in layout.items() if "report" in e
            )
    except SafetensorError as exc:
        raise ValueError(f"{path!r} is a corrupt safetensors file: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path!r}: invalid tensor layout ({exc!r})") from exc
    return QuantizedStateDict(
        quantized=quantized,
        passthrough=passthrough,
        report=report,
        keys=tuple(document["tensors"]),
    )
