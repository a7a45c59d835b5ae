"""Float checkpoints: any state dict on disk, loaded without ever running pickled code.

A float checkpoint is what a training run leaves behind: a ``.safetensors`` file [1]_ (a flat
mapping of names to tensors, read by safetensors, which holds no code), or a torch pickle
(``.pt`` / ``.pth`` / ``.bin``).  Pickles are read only through
``torch.load(..., weights_only=True)`` [2]_, whose unpickler resolves tensors, containers and
plain values and refuses every other global, so that loading a hostile file raises instead of
executing it.  Training checkpoints often wrap the weights (``{"model": ..., "optimizer": ...,
"epoch": ...}``); :data:`STATE_DICT_KEYS` are the entries recognised as the state dict.

Quantized checkpoints are another format (:mod:`fmq_theory.io.quantized_file`); a reader of
one refuses the other.

Examples
--------
>>> import os, tempfile, torch
>>> folder = tempfile.mkdtemp()
>>> weights = {"layer.weight": torch.ones(2, 3), "layer.bias": torch.zeros(2)}
>>> torch.save({"model": weights, "epoch": 7}, os.path.join(folder, "train.pt"))
>>> state = load_state_dict_file(os.path.join(folder, "train.pt"))
>>> list(state), state["layer.weight"].shape
(['layer.weight', 'layer.bias'], torch.Size([2, 3]))

References
----------
.. [1] Hugging Face, "safetensors" file format,
   https://github.com/huggingface/safetensors#format
.. [2] PyTorch documentation, ``torch.load`` with ``weights_only=True``,
   https://pytorch.org/docs/stable/generated/torch.load.html
"""

from __future__ import annotations

import os
import pickle
import types
import zipfile
from typing import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from fmq_theory.io._files import METADATA_KEY, read_safetensors_header, require_file

__all__ = ["PICKLE_SUFFIXES", "STATE_DICT_KEYS", "TRAINING_GLOBALS", "load_state_dict_file"]

#: Entries of a pickled checkpoint dict that :func:`load_state_dict_file` accepts as the state dict.
STATE_DICT_KEYS = ("state_dict", "model", "ema")
#: Suffixes :func:`load_state_dict_file` reads with ``torch.load(weights_only=True)``.
PICKLE_SUFFIXES = (".pt", ".pth", ".bin")
#: What :func:`load_state_dict_file` rebuilds by default besides tensors and plain values:
#: the ``argparse.Namespace`` of training arguments that facebookresearch/flow_matching's
#: checkpoints keep under ``"args"``, read as a :class:`types.SimpleNamespace` (its
#: ``__dict__`` is set; no code of the file runs).
TRAINING_GLOBALS = ((types.SimpleNamespace, "argparse.Namespace"),)


def _is_state_dict(value) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()
    )


def _tensor_mapping(obj, path: str, key: str | None) -> dict[str, torch.Tensor]:
    """The state dict inside an unpickled object: ``obj[key]``, ``obj`` itself, or its one
    entry among :data:`STATE_DICT_KEYS` that is a dict of tensors."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path!r} holds a {type(obj).__name__}, not a dict of tensors")
    if key is not None:
        if key not in obj or not _is_state_dict(obj[key]):
            raise ValueError(f"key={key!r}: {path!r} has no entry {key!r} that is a dict of tensors")
        return dict(obj[key])
    if _is_state_dict(obj):
        return dict(obj)
    found = [k for k in STATE_DICT_KEYS if k in obj and _is_state_dict(obj[k])]
    if len(found) == 1:
        return dict(obj[found[0]])
    if len(found) > 1:
        raise ValueError(f"{path!r} has several state dicts {found}; choose one with key= (fmq quantize --key)")
    raise ValueError(
        f"{path!r} is neither a dict of tensors nor a dict with one of the entries "
        f"{list(STATE_DICT_KEYS)} holding a dict of tensors (top-level keys: {list(obj)[:10]})"
    )


def _load_safetensors(path: str) -> dict[str, torch.Tensor]:
    _, header = read_safetensors_header(path)
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{path!r} has a corrupt safetensors header: '__metadata__' is not a mapping")
    if METADATA_KEY in meta:
        raise ValueError(
            f"{path!r} is an fmq_theory quantized checkpoint, not a float one; "
            "read it with fmq_theory.io.quantized_file.load_quantized"
        )
    try:
        return dict(load_file(path, device="cpu"))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path!r} is not a readable safetensors file: {exc}") from exc


def _load_pickle(path: str, safe_globals: tuple = ()):
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path!r} holds objects that torch.load(weights_only=True) refuses to "
            f"unpickle; such files are never loaded with code execution: {exc}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path!r} is not a readable torch checkpoint: {exc}") from exc


def load_state_dict_file(path, *, key: str | None = None, safe_globals: tuple = TRAINING_GLOBALS,
                         argument: str = "path") -> dict[str, torch.Tensor]:
    """Load a float checkpoint as a state dict of CPU tensors, never running pickled code.

    Parameters
    ----------
    path : str or os.PathLike
        ``.safetensors`` (read with safetensors) or ``.pt`` / ``.pth`` / ``.bin`` (read
        only with ``torch.load(..., weights_only=True)``, which refuses any pickled object
        other than tensors, containers and plain values).
    key : str, optional
        Entry of a pickled dict that holds the state dict.  By default the file's top
        level is used when it is a dict of tensors, else its single entry among
        ``"state_dict"``, ``"model"``, ``"ema"`` that is a dict of tensors (training
        checkpoints often hold ``{"model": ..., "optimizer": ..., "epoch": ...}``).
    safe_globals : tuple
        Plain-data classes the ``weights_only`` unpickler may rebuild (through
        ``torch.serialization.safe_globals``: a class, or ``(class, "module.Name")`` to
        rebuild the pickled ``module.Name`` as ``class``); default :data:`TRAINING_GLOBALS`,
        so that facebookresearch/flow_matching's training checkpoints load.  Only classes
        whose unpickling cannot run code belong here.
    argument : str
        How the caller names ``path`` in error messages (a command-line flag, say).

    Returns
    -------
    dict of str to torch.Tensor
        In file order.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    IsADirectoryError
        ``path`` is a directory.
    ValueError
        Unknown suffix; corrupt or truncated file (a safetensors header whose ``__metadata__``
        is not a mapping included); a quantized checkpoint written by
        :func:`fmq_theory.io.quantized_file.save_quantized` (read those with
        :func:`~fmq_theory.io.quantized_file.load_quantized`); a pickle that holds anything
        ``weights_only`` refuses (for example an object whose unpickling would run code);
        no state dict found.  Every message names ``path`` (and ``argument``).
    """
    path = require_file(path, argument)
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".safetensors":
            if key is not None:
                raise ValueError(f"key={key!r}: a .safetensors file is a flat state dict; key= is for pickled ones")
            return _load_safetensors(path)
        if suffix in PICKLE_SUFFIXES:
            return _tensor_mapping(_load_pickle(path, safe_globals), path, key)
    except ValueError as exc:
        if argument == "path":
            raise
        raise ValueError(f"{argument}: {exc}") from exc
    raise ValueError(
        f"path={path!r} has suffix {suffix!r}; expected '.safetensors' or one of {list(PICKLE_SUFFIXES)}"
    )
