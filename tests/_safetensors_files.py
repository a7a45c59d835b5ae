"""Edits of a quantized safetensors file's header, shared by the storage and bad-input tests."""

import json
import struct


def rewrite_document(src, dst, edit) -> None:
    """Copy the quantized file ``src`` to ``dst`` with its ``fmq_theory`` metadata document edited in
    place by ``edit(document)``; the header is padded to 8 bytes as safetensors writes it, the data
    are copied unchanged."""
    with open(src, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    document = json.loads(header["__metadata__"]["fmq_theory"])
    edit(document)
    header["__metadata__"]["fmq_theory"] = json.dumps(document)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + raw[8 + length :])
