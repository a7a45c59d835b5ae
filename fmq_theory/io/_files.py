"""What the two file readers of :mod:`fmq_theory.io` share: the existence check and the
safetensors header.

A safetensors file [1]_ starts with an 8-byte little-endian length ``N`` followed by ``N``
bytes of JSON: one entry per tensor (dtype, shape, data offsets) and an optional
``__metadata__`` mapping of strings.  fmq_theory's quantized checkpoints keep their layout
under :data:`METADATA_KEY` there, which is also how a float-checkpoint reader recognises
(and refuses) them.

References
----------
.. [1] Hugging Face, "safetensors" file format,
   https://github.com/huggingface/safetensors#format
"""

from __future__ import annotations

import json
import os
import struct

__all__ = ["METADATA_KEY", "read_safetensors_header", "require_file"]

#: Key of the safetensors ``__metadata__`` entry that holds fmq_theory's JSON metadata.
METADATA_KEY = "fmq_theory"


def require_file(path, argument: str) -> str:
    """``path`` as a string, after checking that it names a regular file.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist (the message names ``argument``).
    IsADirectoryError
        ``path`` is a directory.
    ValueError
        ``path`` is another non-regular file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{argument}={path!r}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{argument}={path!r} is a directory, not a file")
    if not os.path.isfile(path):
        raise ValueError(f"{argument}={path!r} is not a regular file")
    return path


def read_safetensors_header(path: str) -> tuple[int, dict]:
    """(header bytes, parsed JSON header) of a safetensors file, with clear errors.

    The header bytes count the 8-byte length prefix and the JSON (with its padding), so
    the tensor data of the file is its size minus them.

    Raises
    ------
    ValueError
        The file is shorter than its announced header, or the header is not a JSON object;
        every message names ``path``.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path!r} is not a safetensors file: only {size} bytes")
        (length,) = struct.unpack("<Q", prefix)
        if length > size - 8:
            raise ValueError(
                f"{path!r} is truncated or not a safetensors file: header of {length} bytes "
                f"announced, {size - 8} available"
            )
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path!r} has a corrupt safetensors header: {exc}") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{path!r} has a corrupt safetensors header (not a JSON object)")
    return 8 + length, header
